"""The pure audit end to end on the toy planner, its three renderings, and assessments."""

from __future__ import annotations

import dataclasses
import json

from app.engine.advisor.audit import audit
from app.engine.model import (
    Index,
    Query,
    QueryEffect,
    QuerySource,
    Recommendation,
    recommendation_id,
)
from app.engine.proof.confidence import Assessment, Confidence
from app.engine.proof.evidence import Evidence, Failed, StatementEvidence, Timing
from app.engine.proof.method import Cause, Measurement, Method
from app.engine.render import confidence_line, to_json, to_markdown, to_text
from app.engine.report import Report
from tests.fakes import NOW, FakeOracle, column, snapshot, table

SNAP = snapshot(
    table("posts", 2e5, column("id"), column("user_id", distinct=200), column("email", "text")),
    indexes=[
        Index("public", "posts_user_id_idx", "public.posts", ("user_id",), size_bytes=4 << 20),
        Index("public", "posts_user_id_2", "public.posts", ("user_id",), size_bytes=4 << 20),
    ],
)
QUERIES = [
    Query("SELECT * FROM posts WHERE id = 42", calls=30),
    Query("SELECT * FROM posts WHERE email = 'ann@example.com'", calls=5),
    Query("SELECT 1"),
]


def run() -> dict[str, object]:
    return to_json(audit(SNAP, QUERIES, FakeOracle(SNAP), now=NOW))


def test_report_contract_and_redaction() -> None:
    report = run()
    assert report["version"] == 2
    assert report["workload"] == {
        "statements": 3,
        "analyzed": 2,
        "skipped": 1,
        "sources": {"file": 3},
    }
    assert report["slow_statements"] == []
    recs = report["recommendations"]
    assert isinstance(recs, list)
    creates = {tuple(r["columns"]) for r in recs if r["action"] == "create_index"}
    assert creates == {("id",), ("email",)}
    drops = [r for r in recs if r["action"] == "drop_index"]
    assert [r["index_name"] for r in drops] == ["posts_user_id_idx"]  # the shorter name stays
    text = str(report)
    assert "ann@example.com" not in text and "42" not in text  # literal values never shown


def test_ids_are_stable_and_distinct() -> None:
    first, second = run(), run()
    ids = [r["id"] for r in first["recommendations"]]  # type: ignore[index]
    assert ids == [r["id"] for r in second["recommendations"]]  # type: ignore[index]
    assert len(set(ids)) == len(ids)


def test_text_and_markdown_name_every_recommendation_and_skip() -> None:
    report = audit(SNAP, QUERIES, FakeOracle(SNAP), now=NOW)
    text, markdown = to_text(report), to_markdown(report)
    for rec in report.recommendations:
        assert rec.ddl in text and rec.ddl in markdown
        assert recommendation_id(rec) in text
    assert "reads no table" in text and "reads no table" in markdown


# ---------------------------------------------------------------------- assessments

ORDERS = snapshot(table("orders", 1e6, column("id"), column("email", "text")))
READ = Query("SELECT * FROM orders WHERE email = 'bob@example.com'", calls=100)
GUESS = Query("SELECT id FROM orders WHERE email = 'eve@example.com' LIMIT 10", calls=3)
INSERT = Query("INSERT INTO orders (id, email) VALUES (7, 'carol@example.com')", calls=40)
CREATE = Recommendation(
    "create_index",
    "public.orders",
    ("email",),
    "orders_email_idx",
    "CREATE INDEX CONCURRENTLY orders_email_idx ON public.orders USING btree (email)",
    effects=(QueryEffect(READ, 5000.0, 12.5), QueryEffect(GUESS, 300.0, 8.0)),
    reasons=("serves 2 statements of the workload",),
)
LOCKED = "another session holds a conflicting lock beyond the lock budget: skipped"
EVIDENCE = Evidence(
    "sandbox",
    (
        StatementEvidence(
            READ,
            False,
            5000.0,
            12.5,
            before=(Timing("common", (10, 10, 12), 40, 10, 1), Timing("rare", (30,), 60, 0, 1)),
            after=(Timing("common", (1, 1, 1.2), 4, 0, 1), Timing("rare", (3,), 6, 0, 1)),
        ),
        StatementEvidence(
            INSERT,
            True,
            before=(Timing("common", (1.0,), 3, 0, 1),),
            after=(Timing("common", (1.25,), 4, 0, 1), Failed("rare", LOCKED)),
            notes=("$2 has no sample value",),
        ),
    ),
    change_ms=1234.56,
    index_bytes=8 << 20,
    used_by_plans=True,
)
BREAKDOWN = {"measured_speedup": 0.35, "noise_margin": 0.15, "workload_share": 0.15}
CONF = Confidence(0.92, BREAKDOWN, threshold=0.9)
MEASURED_LINE = (
    "confidence 92% (≥ 90%: eligible for a pull request); measured on the sandbox copy, the "
    "index built in a transaction that was rolled back; 2 of 2 affected statements timed; "
    "reads 2,000.0 ms → 200.0 ms per workload cycle, writes 40.0 ms → 50.0 ms"
)


def assessed(assessment: Assessment | None) -> Report:
    found = {recommendation_id(CREATE): assessment} if assessment else {}
    return Report(
        ORDERS, 3, (), (), (CREATE,), (), "fake", 0, assessments=found, min_confidence=0.9
    )


def test_json_of_a_measured_recommendation() -> None:
    doc = to_json(assessed(Assessment(CONF, EVIDENCE)))
    assert doc["min_confidence"] == 0.9
    (rec,) = doc["recommendations"]
    assert (rec["confidence"], rec["confidence_breakdown"], rec["eligible"]) == (
        0.92,
        BREAKDOWN,
        True,
    )
    assert rec["validation"] == {
        "where": "sandbox",
        "skipped": None,
        "change_ms": 1234.6,
        "index_bytes": 8 << 20,
        "used_by_plans": True,
        "drop_method": None,
        "plans": [],
    }
    read, insert, guess = rec["queries"]
    assert read == {
        "query": "SELECT * FROM orders WHERE email = $1",
        "source": "file",
        "calls": 100,
        "write": False,
        "before": {"cost": 5000.0, "ms_p50": 20.0, "ms_p95": 21.0, "buffers": 55},
        "after": {"cost": 12.5, "ms_p50": 2.0, "ms_p95": 2.1, "buffers": 5},
        "parameter_sets": ["common", "rare"],
        "notes": [],
    }
    assert insert["query"] == "INSERT INTO orders (id, email) VALUES ($1, $2)"
    assert insert["write"] is True and insert["parameter_sets"] == ["common"]
    assert (insert["before"]["ms_p50"], insert["after"]["ms_p50"]) == (1.0, 1.25)
    assert insert["notes"] == ["$2 has no sample value", f"rare: {LOCKED}"]
    assert guess["query"] == "SELECT id FROM orders WHERE email = $1 LIMIT $2"
    assert guess["before"] == {"cost": 300.0, "ms_p50": None, "ms_p95": None, "buffers": None}
    assert (guess["parameter_sets"], guess["notes"]) == ([], ["not measured"])


def test_json_carries_reviewer_memory() -> None:
    memory = (
        "Reviewer memory moved the confidence by −0.17 (bounded to −0.25 … +0.10):",
        "- a similar index on `orders` in this repository was rejected (similarity 0.90)",
    )
    breakdown = {**BREAKDOWN, "reviewer_memory": -0.1667}
    conf = Confidence(0.4833, breakdown, threshold=0.9)
    (rec,) = to_json(assessed(Assessment(conf, EVIDENCE, memory)))["recommendations"]
    assert rec["reviewer_memory"] == list(memory)
    assert rec["confidence_breakdown"]["reviewer_memory"] == -0.1667
    (plain,) = to_json(assessed(Assessment(CONF, EVIDENCE)))["recommendations"]
    assert plain["reviewer_memory"] == []
    (bare,) = to_json(assessed(None))["recommendations"]
    assert bare["reviewer_memory"] == []
    json.dumps(rec)  # still plain JSON


def test_json_never_holds_literal_values() -> None:
    text = json.dumps(to_json(assessed(Assessment(CONF, EVIDENCE))))
    for literal in ("bob@example.com", "eve@example.com", "carol@example.com"):
        assert literal not in text


def test_json_without_an_assessment() -> None:
    doc = to_json(assessed(None))
    assert doc["min_confidence"] == 0.9  # the configured bar, even with nothing scored
    (rec,) = doc["recommendations"]
    assert (rec["confidence"], rec["confidence_breakdown"], rec["eligible"]) == (None, {}, False)
    assert rec["validation"] is None
    assert [q["notes"] for q in rec["queries"]] == [[], []]  # nothing was asked of a sandbox
    assert [q["before"]["cost"] for q in rec["queries"]] == [5000.0, 300.0]


def test_confidence_lines() -> None:
    low = Confidence(0.25)
    assert confidence_line(CREATE, None) is None
    assert confidence_line(CREATE, Assessment(CONF, EVIDENCE)) == MEASURED_LINE
    why = Measurement(Method.estimate_only, Cause.mode, "the repository chose hypopg")
    assert confidence_line(CREATE, Assessment(low, measured=why)) == (
        "confidence 25% (below 80%: held back); not measured (estimate only): "
        "the repository chose hypopg"
    )
    skipped = Evidence("target", skipped="lock wait beyond the budget", cause=Cause.lock_wait)
    assert confidence_line(CREATE, Assessment(low, skipped)) == (
        "confidence 25% (below 80%: held back); not measured (estimate only): "
        "lock wait beyond the budget"
    )


def test_text_and_markdown_show_the_confidence_line() -> None:
    report = assessed(Assessment(CONF, EVIDENCE))
    assert f"\n   {MEASURED_LINE}\n" in to_text(report)
    assert f"\n- **{MEASURED_LINE}**\n" in to_markdown(report)
    bare = to_text(assessed(None))
    assert "confidence" not in bare
    # Even a report that was never assessed says how each recommendation was measured.
    assert "\n   not measured (estimate only): no validation was run for this report\n" in bare


def test_json_before_and_after_cover_the_same_parameter_sets() -> None:
    failed_after = StatementEvidence(
        READ,
        False,
        before=(Timing("common", (10,), 0, 0, 1), Timing("rare", (30,), 0, 0, 1)),
        after=(Timing("common", (1,), 0, 0, 1), Failed("rare", LOCKED)),
    )
    evidence = Evidence("sandbox", (failed_after,))
    (rec,) = to_json(assessed(Assessment(CONF, evidence)))["recommendations"]
    read = rec["queries"][0]
    assert read["parameter_sets"] == ["common"]
    assert (read["before"]["ms_p50"], read["after"]["ms_p50"]) == (10.0, 1.0)  # actual: 20 → 1


def test_json_keeps_the_configured_threshold_when_nothing_was_scored() -> None:
    report = dataclasses.replace(assessed(None), assessments={}, min_confidence=0.95)
    assert to_json(report)["min_confidence"] == 0.95


def test_json_notes_never_carry_values_quoted_by_the_server() -> None:
    failed = StatementEvidence(
        READ,
        False,
        before=(Failed("common", 'invalid input syntax for type integer: "4242"'),),
    )
    report = assessed(Assessment(CONF, Evidence("sandbox", (failed,))))
    assert "4242" not in json.dumps(to_json(report))


def test_every_statement_says_where_it_came_from() -> None:
    queries = [
        Query("SELECT * FROM posts WHERE id = $1", calls=30, source=QuerySource.pg_stat_statements),
        Query("SELECT * FROM posts WHERE email = $1", calls=2, total_ms=9000.0,
              source=QuerySource.activity),
        Query("SELECT * FROM posts WHERE id > $1 AND email = $2", calls=1, total_ms=30000.0,
              source=QuerySource.timeout_log),
        Query("SELECT version()", calls=1, source=QuerySource.timeout_log),
    ]  # fmt: skip
    report = audit(SNAP, queries, FakeOracle(SNAP), now=NOW)
    doc = to_json(report)
    assert doc["workload"]["sources"] == {
        "pg_stat_statements": 1,
        "activity": 1,
        "timeout log": 2,
    }
    slow = {(s["source"], s["query"]): s for s in doc["slow_statements"]}
    assert set(slow) == {
        ("activity", "SELECT * FROM posts WHERE email = $1"),
        ("timeout log", "SELECT * FROM posts WHERE id > $1 AND email = $2"),
        ("timeout log", "SELECT version()"),
    }
    email = slow["activity", "SELECT * FROM posts WHERE email = $1"]
    assert (email["executions"], email["at_least_ms"], email["analyzed"]) == (2, 4500.0, True)
    assert slow["timeout log", "SELECT version()"]["analyzed"] is False
    sources = {q["query"]: q["source"] for r in doc["recommendations"] for q in r["queries"]}
    assert sources["SELECT * FROM posts WHERE email = $1"] == "activity"
    assert sources["SELECT * FROM posts WHERE id = $1"] == "pg_stat_statements"
    text = to_text(report)
    assert "Slow statements pg_stat_statements lacks (3):" in text
    assert "×2       [activity] SELECT * FROM posts WHERE email = $1" in text
    assert "seen running in pg_stat_activity, ×2, each ≥ 4,500.0 ms: SELECT" in text
    assert "cancelled by statement_timeout (log), ×1, each ≥ 30,000.0 ms: SELECT" in text
    markdown = to_markdown(report)
    assert "<summary>Slow statements pg_stat_statements lacks</summary>" in markdown
    assert "`SELECT * FROM posts WHERE email = $1`" in markdown


# ---------------------------------------------------------------------- what the JSON says


def test_json_keys_carry_the_sort_direction_of_the_ddl() -> None:
    rec = dataclasses.replace(
        CREATE,
        columns=("user_id", "blog_id"),
        descending=(False, True),
        ddl="CREATE INDEX CONCURRENTLY posts_x ON public.posts USING btree (user_id, blog_id DESC)",
    )
    (doc,) = to_json(dataclasses.replace(assessed(None), recommendations=(rec,)))["recommendations"]
    assert (doc["columns"], doc["descending"]) == (["user_id", "blog_id"], [False, True])
    pairs = zip(doc["columns"], doc["descending"], strict=True)
    keys = ", ".join(k + (" DESC" if d else "") for k, d in pairs)
    assert f"({keys})" in doc["ddl"]
    # A recommendation built without directions (a finding's index) still has one flag per key.
    (plain,) = to_json(assessed(None))["recommendations"]
    assert plain["descending"] == [False]


def test_json_says_how_each_recommendation_was_measured() -> None:
    (measured,) = to_json(assessed(Assessment(CONF, EVIDENCE)))["recommendations"]
    assert measured["measurement"] == {
        "method": "sandbox",
        "cause": None,
        "reason": None,
        "statements": 2,
        "statements_measured": 2,
    }
    why = Measurement(Method.estimate_only, Cause.budget, "the 600 s budget ran out")
    (budget,) = to_json(assessed(Assessment(Confidence(0.2), measured=why)))["recommendations"]
    assert budget["measurement"]["method"] == "estimate-only"
    assert (budget["measurement"]["cause"], budget["measurement"]["reason"]) == (
        "budget",
        "the 600 s budget ran out",
    )
    (bare,) = to_json(assessed(None))["recommendations"]
    assert bare["measurement"]["method"] == "estimate-only"
    assert bare["measurement"]["cause"] == "not-assessed"
    on_target = Evidence("target", EVIDENCE.statements)
    (target,) = to_json(assessed(Assessment(CONF, on_target)))["recommendations"]
    assert target["measurement"]["method"] == "rolled-back-build"
    hidden = Evidence("target", EVIDENCE.statements, method=Method.hidden_index)
    (hid,) = to_json(assessed(Assessment(CONF, hidden)))["recommendations"]
    assert hid["measurement"]["method"] == "hidden-index"


def test_a_mixed_direction_sort_keeps_its_desc_in_the_json() -> None:
    posts = snapshot(
        table(
            "posts",
            5e5,
            column("id"),
            column("user_id", distinct=5000),
            column("blog_id", distinct=-1),
            column("created_at", distinct=-1),
        )
    )
    sql = "SELECT * FROM posts WHERE user_id = $1 ORDER BY created_at, blog_id DESC LIMIT 20"
    doc = to_json(audit(posts, [Query(sql, calls=3000)], FakeOracle(posts), now=NOW))
    (rec,) = doc["recommendations"]
    assert rec["ddl"].endswith("(user_id, created_at, blog_id DESC)")
    assert (rec["columns"], rec["descending"]) == (
        ["user_id", "created_at", "blog_id"],
        [False, False, True],
    )
