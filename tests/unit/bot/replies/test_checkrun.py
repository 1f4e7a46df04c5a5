"""Check-run output and `/audit` comments: content, counts, redaction, and GitHub's limits."""

from __future__ import annotations

import dataclasses
import re

from app.bot.commands.audit import AuditCommand, CommandError
from app.bot.pulls.evidence_md import MAX_CHARS
from app.bot.pulls.fixpr import branch_name, fingerprint
from app.bot.pulls.plan import Candidate, Decision
from app.bot.replies.checkrun import (
    AUDIT_COMMENT_MARKER,
    CHECK_NAME,
    MAX_OUTPUT,
    REFUSAL_MARKER,
    Output,
    audit_output,
    command_error_comment,
    comment_body,
    conclusion,
    config_error_output,
    failure_output,
    queued_comment,
    refusal_comment,
)
from app.bot.repo_config import ConfigError
from app.engine.model import (
    Query,
    QueryEffect,
    Recommendation,
    Rejection,
    Skipped,
    recommendation_id,
)
from app.engine.proof.confidence import Assessment, Confidence
from app.engine.proof.evidence import Evidence, StatementEvidence, Timing
from app.engine.report import Report
from tests.fakes import column, snapshot, table

SNAP = snapshot(table("orders", 1e6, column("id"), column("customer_id"), column("status")))
READ = Query("SELECT * FROM orders WHERE customer_id = 4242 AND email = 'ann@example.com'", 100)
CREATE = Recommendation(
    "create_index",
    "public.orders",
    ("customer_id", "created_at"),
    "orders_customer_id_created_at_idx",
    "CREATE INDEX CONCURRENTLY orders_customer_id_created_at_idx ON public.orders (customer_id)",
    descending=(False, True),
    effects=(QueryEffect(READ, 20_000.0, 12.5),),
    reasons=("serves 1 statement of the workload",),
)
DROP = Recommendation(
    "drop_index",
    "public.orders",
    ("status",),
    "orders_status_idx",
    "DROP INDEX CONCURRENTLY public.orders_status_idx",
    rule="unused_index",
    reasons=("orders_status_idx has had 0 scans since 2026-10-01 (52 days)",),
)
WEAK = Recommendation(
    "create_index",
    "sales.events",
    ("kind",),
    "events_kind_idx",
    "CREATE INDEX CONCURRENTLY events_kind_idx ON sales.events (kind)",
)


def timing(ms: float) -> Timing:
    return Timing("common", (ms, ms, ms), 10, 0, 1.0)


def measured(before: float, after: float) -> Evidence:
    stmt = StatementEvidence(READ, False, 20_000.0, 12.5, (timing(before),), (timing(after),))
    return Evidence("sandbox", (stmt,))


def make_report(*recs: Recommendation, **kw: object) -> Report:
    scores = {CREATE: (0.91, measured(12.4, 0.5)), DROP: (0.86, None), WEAK: (0.74, None)}
    assessments = {}
    for rec in recs:
        score, evidence = scores.get(rec, (0.9, None))
        breakdown = {"measured_speedup": 0.35, "workload_share": round(score - 0.35, 4)}
        assessments[recommendation_id(rec)] = Assessment(Confidence(score, breakdown), evidence)
    fields: dict[str, object] = {
        "rejected": (Rejection("public.orders (status)", "covered by orders_status_idx"),),
        "skipped": (
            Skipped(Query("SELECT * FROM t WHERE x = 'secret-value' +"), "could not parse"),
        ),
        **kw,
    }
    return dataclasses.replace(
        Report(SNAP, 120, (), (), recs, (), "hypopg", 1234, assessments=assessments), **fields
    )


def decision(
    rec: Recommendation, verdict: str, reason: str = "", *, settled: bool = False
) -> Decision:
    report = make_report(rec)
    score = report.assessments[recommendation_id(rec)].confidence.score
    cand = Candidate(
        recommendation_id(rec), fingerprint(rec), branch_name(rec), rec.table, score, score >= 0.8
    )
    return Decision(cand, verdict, reason, settled=settled)  # type: ignore[arg-type]


def output_for(
    report: Report, decisions: list[Decision], results: dict[str, str], **kw: object
) -> Output:
    options: dict[str, object] = {
        "dry_run": False,
        "min_confidence": 0.8,
        "target": "shop",
        "trigger": "`/audit` by @alice",
        **kw,
    }
    return audit_output(report, decisions, results, **options)  # type: ignore[arg-type]


def table_rows(summary: str) -> list[str]:
    return [line for line in summary.splitlines() if re.match(r"\| \d+ \|", line)]


def test_check_name() -> None:
    assert CHECK_NAME == "DB Architect / audit"


def test_summary_of_a_mixed_audit() -> None:
    report = make_report(CREATE, DROP, WEAK)
    decisions = [
        decision(CREATE, "open"),
        decision(DROP, "open"),
        decision(WEAK, "hold", "confidence 0.74 is below the 0.80 bar"),
    ]
    results = {recommendation_id(CREATE): "opened #12", recommendation_id(DROP): "opened #13"}
    out = output_for(report, decisions, results)
    assert out.title == "2 pull requests opened · 1 held back"
    assert "**Target** `shop` (PostgreSQL 18.6, database `app`)" in out.summary
    assert "`/audit` by @\u200balice" in out.summary  # named, not pinged again
    assert "**Workload** 120 statements: 0 analysed, 1 skipped · what-if: hypopg (1,234 calls)" in (
        out.summary
    )
    rows = table_rows(out.summary)
    assert rows == [
        "| 1 | add index | `public.orders` | `(customer_id, created_at DESC)` | 91% | 24.8× faster "
        "| opened #12 |",
        "| 2 | drop index | `public.orders` | `orders_status_idx` | 86% | not measured "
        "| opened #13 |",
        "| 3 | add index | `sales.events` | `(kind)` | 74% | not measured "
        "| held back: confidence 0.74 is below the 0.80 bar |",
    ]
    assert "Pull requests open only at confidence ≥ 80% (" in out.summary
    assert "**Not recommended** 1 candidate · **Skipped** 1 statement" in out.summary
    assert "Dry run" not in out.summary


def test_text_has_the_confidence_breakdown_and_reasons() -> None:
    out = output_for(make_report(CREATE, DROP), [], {})
    assert out.text is not None
    assert "### 1. add index on `public.orders (customer_id, created_at DESC)`" in out.text
    assert "### 2. drop index `orders_status_idx` on `public.orders`" in out.text
    assert "not measured (estimate only): validation did not run for it" in out.text
    assert "--validate-dsn" not in out.text
    assert f"`{recommendation_id(CREATE)}` · rule `workload`" in out.text
    assert "- confidence 91% (≥ 80%: eligible for a pull request); measured on the sandbox" in (
        out.text
    )
    assert "- breakdown: measured speedup 0.350 · workload share 0.560" in out.text
    assert "- orders_status_idx has had 0 scans since 2026-10-01 (52 days)" in out.text
    assert "### Not recommended" in out.text and "covered by orders_status_idx" in out.text
    assert "### Skipped statements" in out.text and "could not parse" in out.text


def test_text_shows_reviewer_memory_signed_and_cited() -> None:
    report = make_report(CREATE)
    rid = recommendation_id(CREATE)
    memory = (
        "Reviewer memory moved the confidence by −0.17 (bounded to −0.25 … +0.10):",
        "- a similar index on `orders` in this repository was rejected (similarity 0.90)",
    )
    conf = Confidence(
        0.74, {"measured_speedup": 0.35, "workload_share": 0.56, "reviewer_memory": -0.17}
    )
    moved = dataclasses.replace(
        report, assessments={rid: Assessment(conf, measured(12.4, 0.5), memory)}
    )
    out = output_for(moved, [], {})
    assert out.text is not None
    assert (
        "- breakdown: measured speedup 0.350 · workload share 0.560 · reviewer memory −0.170\n"
        "- Reviewer memory moved the confidence by −0.17 (bounded to −0.25 … +0.10):\n"
        "  - a similar index on `orders` in this repository was rejected (similarity 0.90)\n"
    ) in out.text
    raised = Confidence(0.95, {"measured_speedup": 0.85, "reviewer_memory": 0.1})
    up = dataclasses.replace(report, assessments={rid: Assessment(raised)})
    assert "reviewer memory +0.100" in (output_for(up, [], {}).text or "")
    lowered = Confidence(0.5, {"measured_speedup": 1.0, "unreproduced": -0.5})
    down = dataclasses.replace(report, assessments={rid: Assessment(lowered)})
    assert "unreproduced −0.500" in (output_for(down, [], {}).text or "")


def test_no_literal_values_anywhere() -> None:
    out = output_for(make_report(CREATE), [decision(CREATE, "open")], {})
    shown = out.title + out.summary + (out.text or "")
    for literal in ("4242", "ann@example.com", "secret-value"):
        assert literal not in shown


def test_dry_run_and_raised_bar() -> None:
    report = make_report(CREATE, DROP)
    results = {
        recommendation_id(CREATE): "would open (dry run)",
        recommendation_id(DROP): "would update (dry run)",
    }
    out = output_for(report, [], results, dry_run=True, min_confidence=0.9)
    assert out.title == "1 pull request would open · 1 would update"
    assert "> **Dry run**: nothing was changed on GitHub" in out.summary
    assert "Pull requests open only at confidence ≥ 90% (" in out.summary


def test_titles() -> None:
    empty = make_report(rejected=(), skipped=())
    out = output_for(empty, [], {})
    assert out.title == "No changes proposed"
    assert "No recommendations: the workload is served by the existing indexes." in out.summary
    assert "(reasons" not in out.summary
    held = [decision(WEAK, "hold", "confidence 0.74 is below the 0.80 bar")]
    assert output_for(make_report(WEAK), held, {}).title == "1 recommendation held back"
    assert output_for(make_report(WEAK), [], {}).title == "1 recommendation, none proposed"
    mixed = {
        recommendation_id(CREATE): "updated #4",
        recommendation_id(DROP): "failed: GitHub said 422",
    }
    assert output_for(make_report(CREATE, DROP), [], mixed).title == (
        "1 pull request updated · 1 failed"
    )
    blocked = {recommendation_id(CREATE): "blocked #4: someone else pushed to the branch"}
    assert output_for(make_report(CREATE), [], blocked).title == "1 pull request blocked"


def test_outcome_without_a_result() -> None:
    out = output_for(make_report(CREATE, DROP), [decision(CREATE, "open")], {})
    rows = table_rows(out.summary)
    assert rows[0].endswith("| to open |") and rows[1].endswith("| not proposed |")


def test_rate_limit_reasons_are_shown_whole() -> None:
    reason = (
        "rate-limited: pr_hourly_limit 12 reached (12 in the last hour, 10 of them in this audit)"
    )
    out = output_for(make_report(CREATE), [decision(CREATE, "hold", reason)], {})
    assert table_rows(out.summary)[0].endswith(f"| held back: {reason} |")


def test_pipes_in_cells_are_escaped() -> None:
    expr = dataclasses.replace(CREATE, columns=("(a || b)",), descending=())
    row = table_rows(output_for(make_report(expr), [], {}).summary)[0]
    assert "`((a \\|\\| b))`" in row
    assert len(re.findall(r"(?<!\\)\|", row)) == 8  # still seven cells


def test_limits_are_kept() -> None:
    recs = [
        dataclasses.replace(
            CREATE,
            table=f"public.t{i}",
            reasons=("x" * 380,) * 3,
            index_name=f"t{i}_idx",
        )
        for i in range(400)
    ]
    report = make_report(*recs)
    long_title = output_for(report, [], {}, trigger="t" * 300)
    assert len(long_title.title) <= 255
    assert len(long_title.summary) <= MAX_OUTPUT and long_title.text is not None
    assert len(long_title.text) <= MAX_OUTPUT
    assert "more lines cut to stay within GitHub's size limit." in long_title.text
    assert long_title.text.splitlines()[-1].startswith("… ")


def test_conclusion() -> None:
    assert conclusion(make_report(), []) == "success"
    assert conclusion(make_report(CREATE), [decision(CREATE, "open")]) == "neutral"
    held = decision(WEAK, "hold", "confidence 0.74 is below the 0.80 bar")
    assert conclusion(make_report(WEAK), [held]) == "neutral"
    ignored = decision(CREATE, "hold", "ignored by config", settled=True)
    assert conclusion(make_report(CREATE), [ignored]) == "success"
    assert conclusion(make_report(CREATE, DROP), [ignored]) == "neutral"


def test_config_error_output() -> None:
    err = ConfigError(
        "pr_hourly_limit",
        "must be a whole number ≥ 0, got 'two'",
        more=[("labels[0]", "must be text, got 3")],
    )
    out = config_error_output(err)
    assert out.title == "Invalid .github/db-architect.yml"
    assert "| `pr_hourly_limit` | must be a whole number ≥ 0, got 'two' |" in out.summary
    assert "| `labels[0]` | must be text, got 3 |" in out.summary
    assert "```yaml\nversion: 1\ntarget: shop" in out.summary
    assert "did not audit" in out.summary and out.text is None


def test_failure_output() -> None:
    out = failure_output(
        "Target unreachable", "target `shop`: connection refused", "check DBARCH_TARGETS"
    )
    assert out.title == "Target unreachable"
    assert out.summary.startswith("**Problem**: target `shop`: connection refused\n\n")
    assert "**What to do**: check DBARCH_TARGETS" in out.summary
    assert len(failure_output("x" * 400, "p", "w").title) == 255


def test_comment_body() -> None:
    out = Output("1 pull request opened", "the summary\n", "long text")
    body = comment_body(out, check_url="https://github.com/o/r/runs/1", requested_by="alice")
    lines = body.splitlines()
    assert lines[:2] == ["### DB Architect audit", AUDIT_COMMENT_MARKER]
    assert "@alice: **1 pull request opened**" in body and "the summary" in body
    assert "[Details in the check run](https://github.com/o/r/runs/1)" in body
    assert "long text" not in body
    plain = comment_body(out, check_url=None, requested_by=None)
    assert "@" not in plain and "Details in the check run" not in plain


def test_comment_body_is_capped() -> None:
    out = Output("t", "\n".join(f"line {i} " + "y" * 90 for i in range(2000)))
    body = comment_body(out, check_url=None, requested_by="alice")
    assert len(body) <= MAX_CHARS and body.startswith("### DB Architect audit\n")
    assert "more lines cut" in body


def test_queued_comment() -> None:
    text = queued_comment(
        "alice", AuditCommand(dry_run=True, tables=("orders", "sales.events"), min_confidence=0.9)
    )
    assert text.splitlines()[:2] == ["### DB Architect audit", AUDIT_COMMENT_MARKER]
    assert (
        "@alice asked for an audit (dry run; tables `orders`, `sales.events`; "
        "min confidence 0.90): queued." in text
    )
    assert "asked for an audit: queued." in queued_comment("bob", AuditCommand())


def test_refusal_comment() -> None:
    text = refusal_comment("mallory", "read")
    assert text.splitlines()[:2] == ["### DB Architect audit", REFUSAL_MARKER]
    assert AUDIT_COMMENT_MARKER not in text  # never replaces the result of a real audit
    assert "@mallory" in text and "write access" in text and "`read` access" in text
    assert "you have no access" in refusal_comment("eve", "none")


def test_command_error_comment() -> None:
    text = command_error_comment("alice", CommandError("`--force` is not an option of `/audit`."))
    assert "@alice, `--force` is not an option of `/audit`." in text
    assert text.count("Usage: `/audit [--dry-run]") == 1 and "<details>" in text
