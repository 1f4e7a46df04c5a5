"""Every renderer of GitHub Markdown, fed a target and users that name things with hostile text.

Each output is parsed as GitHub would (``tests.markdown_check``): no mention, image, HTML or
foreign link comes from the data, tables keep their columns, and the hostile names are
shown whole inside code.
"""

from __future__ import annotations

from typing import Any

import pytest

from app.bot.memory.feedback import MemoryHit, cite, memory_adjustment
from app.bot.memory.recall import remember, stored_ignores
from app.bot.pulls.evidence_md import MAX_CHARS, evidence_markdown
from app.bot.pulls.fixpr import PrMeta, pr_body, pr_title
from app.bot.pulls.plan import Candidate, Decision
from app.bot.replies.ask import answer_markdown, refusal_markdown
from app.bot.replies.checkrun import audit_output, comment_body, config_error_output
from app.bot.replies.pr import PastFeedback, explain_reply
from app.bot.repo_config import ConfigError
from app.engine import markdown as md
from app.engine.model import (
    Query,
    QueryEffect,
    Recommendation,
    Rejection,
    Skipped,
    Table,
    recommendation_id,
)
from app.engine.proof.confidence import CREATE_WEIGHTS, Assessment, Confidence
from app.engine.proof.evidence import Evidence, Failed, StatementEvidence, Timing
from app.engine.render import to_markdown
from app.engine.report import Report
from tests.fakes import column, snapshot
from tests.markdown_check import HOSTILE, assert_inert, in_code

H = HOSTILE
QUOTED = '"' + H.replace('"', '""') + '"'
TABLE = Table("public", H, columns=(column(H), column("id")), rows=1e6)
SNAP = snapshot(TABLE)
STATEMENT = f"SELECT * FROM {QUOTED} WHERE {QUOTED} = $1 -- {H}\n# {H}\n```\n{H}"
REC = Recommendation(
    "create_index",
    f"public.{H}",
    (H,),
    f"{H}_idx",
    f"CREATE INDEX CONCURRENTLY {QUOTED} ON public.{QUOTED} USING btree ({QUOTED})",
    include=(H,),
    where=f"{QUOTED} <> '{H}'",
    effects=(QueryEffect(Query(STATEMENT, 10), 100.0, 1.0),),
    reasons=(f"serves {QUOTED} | and `{H}`", f"# {H}"),
    size_bytes=1 << 20,
)
PLAN: dict[str, Any] = {
    "Plan": {
        "Node Type": "Index Scan",
        "Index Name": H,
        "Relation Name": H,
        "Alias": H + "```",
        "Index Cond": f"({QUOTED} = '{H}')\n```\n{H}",
        "Actual Rows": 1,
        "Actual Loops": 1,
        "Actual Total Time": 0.1,
    }
}


def timing(label: str, ms: float) -> Timing:
    return Timing(label, (ms, ms, ms, ms, ms), 4, 0, 1, PLAN)


EVIDENCE = Evidence(
    "target",
    (
        StatementEvidence(
            Query(STATEMENT, 10),
            False,
            100.0,
            1.0,
            before=(timing("common", 5.0), Failed(H, f"error at {H}")),
            after=(timing("common", 0.1), Failed(H, f"error at {H}")),
            notes=(f"note about {H}",),
        ),
    ),
    change_ms=12.0,
    index_bytes=1 << 20,
    used_by_plans=True,
)
HIT = MemoryHit(0.95, "reject", True, f"public.{H}", "create_index", H, H, frozenset({"size"}))


def report(evidence: Evidence | None = EVIDENCE) -> Report:
    breakdown = dict(zip(CREATE_WEIGHTS, (0.35, 0.15, 0.15, 0.11, 0.1, 0.0), strict=True))
    assessment = Assessment(Confidence(0.86, breakdown), evidence)
    base = Report(
        SNAP,
        3,
        (),
        (Skipped(Query(STATEMENT, 3), f"could not parse {H}"),),
        (REC,),
        (Rejection(H, f"rejected: {H}"),),
        "fake",
        0,
        assessments={recommendation_id(REC): assessment},
    )
    return remember(base, {recommendation_id(REC): memory_adjustment([HIT])})


def decisions(rep: Report) -> list[Decision]:
    cand = Candidate(recommendation_id(REC), "abcd1234", "b", REC.table, 0.86, True)
    return [Decision(cand, "hold", f"ignored: table {H}")]


def test_memory_citations_are_inert() -> None:
    lines = cite(memory_adjustment([HIT]))
    assert_inert("\n".join(lines))


def test_evidence_markdown_is_inert() -> None:
    text = evidence_markdown(report(), REC, revision_file=f"migrations/{H}.py")
    assert_inert(text)
    assert in_code(text, H)
    assert len(text) <= MAX_CHARS


def test_evidence_markdown_of_an_unmeasured_recommendation_is_inert() -> None:
    skipped = Evidence("target", (), skipped=f"not measured: lock on {H}")
    assert_inert(evidence_markdown(report(skipped), REC))
    assert_inert(evidence_markdown(report(None), REC))


def test_evidence_markdown_cut_to_size_stays_inert() -> None:
    many = Evidence("target", EVIDENCE.statements * 400, used_by_plans=True)
    text = evidence_markdown(report(many), REC)
    assert len(text) <= MAX_CHARS
    assert_inert(text)


def test_pr_body_is_inert_and_within_limits() -> None:
    meta = PrMeta("abcd1234", recommendation_id(REC), REC.action, REC.table, "r1", 0.86, None)
    huge = evidence_markdown(report(), REC) + "\n" + md.fence(H * 3000) + "\n"
    for evidence in (evidence_markdown(report(), REC), huge):
        body = pr_body(evidence, meta, dry_run_note=True)
        assert len(body) <= MAX_CHARS
        assert_inert(body)
        assert body.rstrip().endswith("-->")


def test_titles_mention_nobody() -> None:
    title = pr_title(REC)
    assert "@octocat" not in title and "@\u200boctocat" in title and "\n" not in title
    drop = Recommendation("drop_index", f"public.{H}", (H,), f"{H}@x", "DROP INDEX x")
    assert "@x" not in pr_title(drop)


def test_check_run_output_is_inert() -> None:
    rep = report()
    output = audit_output(
        rep,
        decisions(rep),
        {recommendation_id(REC): f"failed: {H}"},
        dry_run=True,
        min_confidence=0.8,
        target=H,
        trigger=H,
    )
    for part in (output.summary, output.text or ""):
        assert_inert(part)
        assert len(part) <= 65_535
    assert in_code(output.summary, H)


def test_audit_comment_is_inert_apart_from_the_requester() -> None:
    rep = report()
    output = audit_output(
        rep, decisions(rep), {}, dry_run=False, min_confidence=0.8, target=H, trigger="x"
    )
    body = comment_body(output, check_url="https://github.com/o/r/runs/1", requested_by="alice")
    assert_inert(body.replace("@alice", "alice"), links=("https://github.com/o/r/runs/",))


def test_config_error_output_is_inert() -> None:
    output = config_error_output(ConfigError(H, f"{H} is not allowed", more=[(H, H)]))
    assert_inert(output.summary)


def test_to_markdown_is_inert() -> None:
    text = to_markdown(report())
    assert_inert(text)
    assert in_code(text, H)


def test_explain_reply_is_inert_apart_from_the_asker() -> None:
    said = PastFeedback(H, "reject", H, f"{H}\n\n> {H}\n\n{H} is write-heavy")
    reply = explain_reply(
        "alice",
        title=H,
        confidence=0.9,
        breakdown={"finding": 0.5},
        descriptor=H,
        feedback=[said],
        prose=f"{H}\n\n[docs](https://www.postgresql.org/docs/) {H}",
    )
    assert_inert(reply.replace("@alice", "alice"), links=("https://www.postgresql.org/",))


def test_ask_answer_and_refusal_are_inert() -> None:
    answer = answer_markdown(
        H,
        f"SELECT {QUOTED} FROM {QUOTED}\n```\n{H}",
        [H, "b"],
        [[H, H], ["1", H * 3]],
        truncated=True,
        row_cap=50,
        elapsed_ms=3.0,
        drafted_by=H,
    )
    assert_inert(answer)
    refusal = refusal_markdown(H, f"SELECT {H}\n````\n{H}", f"`{H}` is {H}", f"do {H}")
    assert_inert(refusal)


def test_stored_ignore_reasons_are_inert() -> None:
    found = stored_ignores([REC], [("table", f"public.{H}")])
    assert_inert(md.inline(found[recommendation_id(REC)]))


@pytest.mark.parametrize("login", ["alice", "a-b-1"])
def test_command_replies_quote_nothing_live(login: str) -> None:
    from app.bot.replies.pr import ignore_table_reply, queued_reply

    for reply in (
        ignore_table_reply(login, f"public.{H}", closed=True),
        queued_reply(login, "recheck", H),
    ):
        assert_inert(reply.replace(f"@{login}", login))
