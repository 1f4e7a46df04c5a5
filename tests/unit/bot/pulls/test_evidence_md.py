"""The evidence markdown of one recommendation: content, redaction, size cap."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from app.bot.memory.feedback import MemoryHit, memory_adjustment
from app.bot.memory.recall import remember
from app.bot.pulls.evidence_md import MAX_CHARS, evidence_markdown
from app.engine.model import Query, QueryEffect, Recommendation, RelKind, recommendation_id
from app.engine.proof.confidence import CREATE_WEIGHTS, DROP_WEIGHTS, Assessment, Confidence
from app.engine.proof.evidence import Evidence, Failed, PlanCheck, StatementEvidence, Timing
from app.engine.proof.method import Cause, Measurement, Method
from app.engine.proof.twin import HIDDEN, PLANS_ONLY
from app.engine.report import Report
from tests.fakes import column, snapshot, table

SNAP = snapshot(
    table(
        "orders", 1e6, column("id"), column("customer_id", distinct=5000), column("email", "text")
    )
)
CREATE = Recommendation(
    action="create_index",
    table="public.orders",
    columns=("customer_id",),
    index_name="orders_customer_id_idx",
    ddl="CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_id_idx "
    "ON public.orders USING btree (customer_id)",
    reasons=("serves 2 statements of the workload",),
    size_bytes=22 << 20,
)
DROP = Recommendation(
    action="drop_index",
    table="public.orders",
    columns=("email",),
    index_name="orders_email_idx",
    ddl="DROP INDEX CONCURRENTLY IF EXISTS public.orders_email_idx",
    reasons=("unused for 45 days",),
    rule="unused_index",
    size_bytes=8 << 20,
    definition="CREATE UNIQUE INDEX orders_email_idx ON public.orders USING btree (email)",
)


def plan(node: str, ms: float, *, index: str | None = None, cond: str = "", kids: int = 0) -> Any:
    """An EXPLAIN (ANALYZE, FORMAT JSON) top object with ``kids`` nested child nodes."""
    top: dict[str, Any] = {
        "Node Type": node,
        "Relation Name": "orders",
        "Actual Rows": 12,
        "Actual Loops": 1,
        "Actual Total Time": ms,
    }
    if index:
        top["Index Name"] = index
        top["Index Cond"] = cond
    elif cond:
        top["Filter"] = cond
    leaf = top
    for _ in range(kids):
        child = {"Node Type": "Seq Scan", "Relation Name": "orders", "Filter": "(id > 7)"}
        leaf["Plans"] = [child]
        leaf = child
    return {"Plan": top, "Execution Time": ms}


def timing(label: str, ms: float, buffers: int, the_plan: Any) -> Timing:
    return Timing(label, (ms, ms * 1.1, ms * 0.9, ms * 1.3, ms), buffers, 0, 12, the_plan)


def statement(
    text: str, before_ms: float, after_ms: float, *, kids: int = 0, calls: int = 100
) -> StatementEvidence:
    """A read that turns from a sequential scan into an index scan (common and rare values)."""
    cond = "(customer_id = '42'::bigint)"
    after = plan("Index Scan", after_ms, index="orders_customer_id_idx", cond=cond)
    return StatementEvidence(
        Query(text, calls=calls),
        False,
        cost_before=20_000.0,
        cost_after=12.5,
        before=tuple(
            timing(label, before_ms, 5000, plan("Seq Scan", before_ms, cond=cond, kids=kids))
            for label in ("common", "rare")
        ),
        after=tuple(timing(label, after_ms, 4, after) for label in ("common", "rare")),
    )


def update(before_ms: float, after_ms: float) -> StatementEvidence:
    """A write by primary key that now also maintains the new index."""
    return StatementEvidence(
        Query("UPDATE orders SET customer_id = $1 WHERE id = $2", calls=40),
        True,
        cost_before=8.4,
        cost_after=8.4,
        before=(
            timing(
                "typical",
                before_ms,
                6,
                plan("Index Scan", before_ms, index="orders_pkey", cond="(id = 7)"),
            ),
        ),
        after=(
            timing(
                "typical",
                after_ms,
                9,
                plan("Index Scan", after_ms, index="orders_pkey", cond="(id = 7)"),
            ),
        ),
    )


def report_for(
    rec: Recommendation, evidence: Evidence | None, score: float = 0.86, *, assessed: bool = True
) -> Report:
    assessments = {}
    if assessed:
        if rec.action == "create_index":
            parts = (0.35, 0.15, 0.15, 0.11, 0.1, 0.0)
            breakdown = dict(zip(CREATE_WEIGHTS, parts, strict=True))
        else:
            breakdown = dict(zip(DROP_WEIGHTS, (0.5, 0.3, 0.0), strict=True))
        assessments[recommendation_id(rec)] = Assessment(Confidence(score, breakdown), evidence)
    return Report(SNAP, 3, (), (), (rec,), (), "fake", 0, assessments=assessments)


def create_evidence() -> Evidence:
    return Evidence(
        "target",
        (
            statement("SELECT * FROM orders WHERE customer_id = $1", 12.4, 0.05),
            statement("SELECT id FROM orders WHERE customer_id = $1 ORDER BY id", 8.0, 0.2),
            update(0.1, 0.12),
        ),
        change_ms=850.0,
        index_bytes=21 << 20,
        used_by_plans=True,
    )


def test_content_of_a_create() -> None:
    md = evidence_markdown(report_for(CREATE, create_evidence()), CREATE, revision_file="ab_x.py")
    assert md.startswith("### Add index on `public.orders` (`customer_id`)\n")
    assert "```sql\n" + CREATE.ddl + ";\n```" in md
    assert "- serves 2 statements of the workload" in md
    assert "**86%**" in md and "eligible for a pull request" in md
    assert "| measured speedup | 100% | 0.35 | 0.350 |" in md
    rows = [line for line in md.splitlines() if re.match(r"\| Q\d \|", line)]
    assert len(rows) == 3
    assert "| read | 100 | 20,000.0 → 12.5 | 12.4 → 0.050 | 16.1 → 0.065 | 5,000 → 4 |" in rows[0]
    assert rows[0].endswith("| 248.0× faster |")
    assert "| write | 40 | 8.4 → 8.4 | 0.100 → 0.120 |" in rows[2]
    assert rows[2].endswith("| 6 → 9 | 20% slower |")
    chart = md[md.index("```mermaid") : md.index("```", md.index("```mermaid") + 3)]
    assert "xychart-beta" in chart and "x-axis [Q1, Q2, Q3]" in chart
    assert re.findall(r"^    bar \[(.*)\]$", chart, re.M) == ["12.4, 8, 0.1", "0.05, 0.2, 0.12"]
    assert "21.0 MB, measured" in md and "850.000 ms" not in md and "850.0 ms" in md
    assert "SHARE UPDATE EXCLUSIVE" in md and "lock_timeout = '5s'" in md
    assert "% of the" in md  # write overhead weighed against the read time saved
    assert "<details><summary>Plans</summary>" in md and md.count("**Q1 · `common` values**") == 1
    assert md.count("values**: before") == 5  # two sets for each read, one for the write
    assert "Index Scan using orders_customer_id_idx on orders (rows 12, 0.050 ms)" in md
    assert "`alembic downgrade -1` (reverts `ab_x.py`)" in md
    assert "DROP INDEX CONCURRENTLY IF EXISTS public.orders_customer_id_idx;" in md
    assert md.rstrip().endswith("</sub>") and "rolled back" in md.splitlines()[-1]


def test_reviewer_memory_is_cited_after_the_breakdown() -> None:
    base = report_for(CREATE, create_evidence())
    rid = recommendation_id(CREATE)
    hit = MemoryHit(
        0.9, "reject", True, "public.orders", "create_index", "orders is write-heavy", "closed"
    )
    moved = remember(base, {rid: memory_adjustment([hit])})
    md = evidence_markdown(moved, CREATE)
    assert "**69%**, below the 80% threshold: held back" in md
    assert "| reviewer memory | — | — | -0.167 | similar past reviews: rejections lower" in md
    assert "| **total** | | | **0.693** | |" in md
    section = md[md.index("| **total** |") : md.index("#### Measured evidence")]
    assert section.splitlines()[1:] == [
        "",
        "Reviewer memory moved the confidence by −0.17 (bounded to −0.25 … +0.10):",
        "",
        "- a similar index on `orders` in this repository was rejected (closed): "
        '"orders is write-heavy" (similarity 0.90)',
        "",
    ]
    assert "Reviewer memory" not in evidence_markdown(base, CREATE)


def test_held_back_and_unassessed() -> None:
    held = evidence_markdown(report_for(CREATE, create_evidence(), 0.5), CREATE)
    assert "**50%**, below the 80% threshold: held back" in held
    bare = evidence_markdown(report_for(CREATE, None, assessed=False), CREATE)
    assert "Not assessed" in bare and "```mermaid" not in bare and "<details>" not in bare


def test_literal_values_never_shown() -> None:
    stmt = statement("SELECT * FROM orders WHERE email = 'bob@example.com' AND id > 99", 3, 1)
    failed = StatementEvidence(
        Query("DELETE FROM orders WHERE email = 'eve@example.com'"),
        True,
        before=(Failed("common", 'invalid input syntax for type bigint: "eve@example.com"'),),
        after=(Failed("bob@example.com", "Key (email)=(bob@example.com) already exists"),),
        notes=("not measured: cannot prepare it (near 'bob@example.com')",),
    )
    evidence = Evidence("sandbox", (stmt, failed))
    md = evidence_markdown(report_for(CREATE, evidence), CREATE)
    assert "example.com" not in md and "99" not in md and "42" not in md
    assert "email = $1 AND id > $2" in md  # redacted like pg_stat_statements
    assert "Filter: (customer_id = $1::bigint)" in md
    assert "Q2 `common` values, before: failed" in md and "set 1 values, after" in md


def test_size_cap_cuts_plans_first() -> None:
    stmts = tuple(
        statement(f"SELECT * FROM orders WHERE customer_id = $1 AND n{i} = $2", 5.0 + i, 1, kids=39)
        for i in range(12)
    )
    md = evidence_markdown(report_for(CREATE, Evidence("target", stmts)), CREATE)
    assert len(md) <= MAX_CHARS
    assert "plans omitted to stay within the size limit" in md
    assert len([line for line in md.splitlines() if re.match(r"\| Q\d+ \|", line)]) == 12
    assert "more statements not shown" not in md
    assert "#### Rolling back" in md and md.rstrip().endswith("</sub>")
    kept = md.count("values**: before")
    assert 0 < kept < 24
    assert f"… {24 - kept} plans omitted" in md


def test_size_cap_cuts_rows_when_plans_are_not_enough() -> None:
    stmts = tuple(
        statement(f"SELECT * FROM orders WHERE customer_id = $1 /* {'x' * 90} {i} */", 2, 1)
        for i in range(600)
    )
    md = evidence_markdown(report_for(CREATE, Evidence("target", stmts)), CREATE)
    assert len(md) <= MAX_CHARS
    assert "… 1200 plans omitted" in md and "more statements not shown" in md
    assert md.rstrip().endswith("</sub>")


def test_skipped_evidence_shows_the_reason() -> None:
    evidence = Evidence("target", skipped="lock wait: another session holds a conflicting lock")
    md = evidence_markdown(report_for(CREATE, evidence, 0.3), CREATE)
    assert "**Not measured**: lock wait: another session holds a conflicting lock." in md
    assert "Nothing was changed on the database." in md
    assert "≈ 22.0 MB, estimated" in md and "<details>" not in md
    budget = Evidence("target", skipped="not measured: the 60 s budget ran out")
    md = evidence_markdown(report_for(CREATE, budget, 0.3), CREATE)
    assert "**Not measured**: the 60 s budget ran out. Nothing was changed" in md


def test_drop_shows_the_recreate_sql() -> None:
    evidence = Evidence("sandbox", (statement("SELECT * FROM orders WHERE id = $1", 1, 1),))
    md = evidence_markdown(report_for(DROP, evidence), DROP, revision_file="cd_drop.py")
    assert md.startswith("### Drop index `orders_email_idx` on `public.orders`\n")
    assert "DROP INDEX CONCURRENTLY" in md and "(its current size), freed" in md
    assert (
        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS orders_email_idx "
        "ON public.orders USING btree (email);"
    ) in md
    assert "recreates it exactly as it was" in md and "no change" in md
    assert "| measured safety | 100% | 0.30 | 0.300 |" in md


def test_estimates_only_when_not_validated() -> None:
    rec = dataclasses.replace(
        CREATE,
        effects=(QueryEffect(Query("SELECT a || 'x@y.z' FROM orders", calls=7), 900.0, 4.0),),
    )
    md = evidence_markdown(report_for(rec, None), rec)
    assert "**Not measured**: validation did not run for it." in md and "x@y.z" not in md
    assert "| Q1 | `SELECT a \\|\\| $1 FROM orders` | read | 7 | 900.0 → 4.0 | — | — | — |" in md
    assert "not measured |" in md and "```mermaid" not in md
    many = dataclasses.replace(rec, effects=rec.effects * 1000)  # no plans to cut: rows go
    md = evidence_markdown(report_for(many, None), many)
    assert len(md) <= MAX_CHARS and "more statements not shown" in md


def test_partitioned_table_and_reindex() -> None:
    parted = snapshot(table("events", 1e6, column("tenant_id"), kind=RelKind.partitioned))
    rec = dataclasses.replace(
        CREATE, table="public.events", index_name="events_tenant_id_idx", ddl="CREATE INDEX …"
    )
    report = dataclasses.replace(report_for(rec, None), snapshot=parted)
    md = evidence_markdown(report, rec)
    assert "is partitioned" in md and "`ON ONLY`" in md
    assert "DROP INDEX IF EXISTS public.events_tenant_id_idx;" in md
    reindex = dataclasses.replace(
        DROP, action="reindex", rule="invalid_index", ddl="REINDEX INDEX CONCURRENTLY x"
    )
    md = evidence_markdown(report_for(reindex, None), reindex)
    assert md.startswith("### Rebuild index `orders_email_idx` on `public.orders`\n")
    assert "REINDEX INDEX CONCURRENTLY" in md and "Nothing to undo" in md


def test_a_name_holding_concurrently_does_not_make_a_statement_concurrent() -> None:
    parted = snapshot(table("events", 1e6, column("tenant_id"), kind=RelKind.partitioned))
    rec = dataclasses.replace(
        DROP,
        table="public.events",
        index_name="x CONCURRENTLY y",
        ddl='DROP INDEX IF EXISTS public."x CONCURRENTLY y"',
        definition='CREATE INDEX "x CONCURRENTLY y" ON public.events USING btree (tenant_id)',
    )
    report = dataclasses.replace(report_for(rec, None), snapshot=parted)
    md = evidence_markdown(report, rec)
    assert "Recreate it by hand with its original definition" in md
    assert "recreates it exactly as it was" not in md


def test_a_drop_checked_by_its_plans_says_so_and_shows_them() -> None:
    query = Query("SELECT * FROM orders WHERE email = 'x@y.z'", calls=30)
    checks = tuple(
        PlanCheck(query, label, frozenset({"orders_email_idx"}), twin, 8.4, 8.4)
        for label, twin in (("common", frozenset({"orders_email_key"})), ("rare", frozenset()))
    )
    for method, how in (
        (HIDDEN, "hidden from this session's planner (hidden index"),
        (PLANS_ONLY, "dropped inside a transaction that was rolled back, for the planning only"),
    ):
        evidence = Evidence(
            "target",
            (StatementEvidence(query, False, notes=("planned only",)),),
            drop_method=method,
            plans=checks,
        )
        md = evidence_markdown(report_for(DROP, evidence), DROP)
        assert "Checked on the target database by its plans" in md and how in md
        assert "There are no timings." in md and "while the statements below ran" not in md
        assert "`orders_email_idx` → `orders_email_key`, est. cost 8.4 → 8.4" in md
        assert "`orders_email_idx` → no index" in md
        assert "x@y.z" not in md  # statements are redacted there too


# ---------------------------------------------------------------------- every sentence true

HYPOPG = Measurement(
    Method.estimate_only,
    Cause.mode,
    "the repository's validation mode, hypopg, measures nothing (planner estimates only)",
)


def with_measurement(report: Report, rec: Recommendation, m: Measurement) -> Report:
    rid = recommendation_id(rec)
    moved = dataclasses.replace(report.assessments[rid], measured=m)
    return dataclasses.replace(report, assessments={rid: moved})


def test_an_unmeasured_recommendation_says_so_and_why() -> None:
    rec = dataclasses.replace(
        CREATE, effects=(QueryEffect(Query("SELECT * FROM orders WHERE customer_id = $1"), 9, 1),)
    )
    report = with_measurement(report_for(rec, None, 0.3), rec, HYPOPG)
    md = evidence_markdown(report, rec)
    assert "#### Evidence\n" in md and "#### Measured evidence" not in md
    assert (
        "**Method: `estimate-only`** (`mode`). **Not measured**: the repository's validation "
        "mode, hypopg, measures nothing (planner estimates only). The costs below are the "
        "planner's estimates."
    ) in md
    assert "Nothing was timed, so the measured columns are empty." in md
    # Nothing claims a measurement or a migration that does not exist.
    assert "rolled back" not in md and "Times are the mean" not in md
    assert "- **No migration was drafted**: its confidence, 30%, is below the 80% bar." in md
    assert "alembic" not in md and "**Timeouts**" not in md and "the migration drops" not in md
    assert "there is none to downgrade. Were it created by hand, this drops the index again:" in md
    assert md.rstrip().endswith(
        "Nothing was timed for this recommendation, and nothing was changed on the database.</sub>"
    )


def test_a_measured_recommendation_names_its_method() -> None:
    md = evidence_markdown(report_for(CREATE, create_evidence()), CREATE, revision_file="a.py")
    assert "**Method: `rolled-back-build`**. Measured on the target database, inside a " in md
    assert "All timings were taken inside a transaction that was rolled back" in md
    assert "No migration was drafted" not in md and "**Timeouts**" in md
    sandbox = dataclasses.replace(create_evidence(), where="sandbox")
    md = evidence_markdown(report_for(CREATE, sandbox), CREATE, revision_file="a.py")
    assert "**Method: `sandbox`**. Measured on the sandbox copy of the database" in md
    assert "--validate-dsn" not in md  # the App's sandbox is the operator's, not a flag
    hidden = dataclasses.replace(create_evidence(), method=Method.hidden_index)
    md = evidence_markdown(report_for(DROP, hidden), DROP, revision_file="d.py")
    assert "**Method: `hidden-index`**. Measured on the target database with the index hidden" in md
    assert "hidden from the planner in one session (`hypopg_hide_index`); nothing was" in md


def test_a_stopped_validation_is_only_partly_measured() -> None:
    stopped = dataclasses.replace(
        create_evidence(), skipped="validation stopped: boom", cause=Cause.failed
    )
    md = evidence_markdown(report_for(CREATE, stopped, 0.3), CREATE)
    assert "**Method: `estimate-only`** (`failed`). **Only partly measured**: validation " in md
    assert "the confidence does not count them" in md
    assert "Validation stopped before it finished" in md.splitlines()[-1]


def test_an_eligible_recommendation_whose_draft_was_refused() -> None:
    evidence = Evidence("sandbox", (statement("SELECT * FROM orders WHERE id = $1", 1, 1),))
    refused = "the draft was refused: an index of a partitioned table; drop it by hand"
    md = evidence_markdown(report_for(DROP, evidence), DROP, no_migration=refused)
    assert f"- **No migration was drafted**: {refused}." in md
    assert "alembic" not in md and "**Timeouts**" not in md
    assert "Were it dropped by hand, this recreates it exactly as it was:" in md
    # Without a file name, an eligible recommendation is still one a migration is drafted for.
    assert "`alembic downgrade -1` recreates it" in evidence_markdown(
        report_for(DROP, evidence), DROP
    )


def test_an_invalid_index_has_nothing_to_measure() -> None:
    reindex = dataclasses.replace(
        DROP, action="reindex", rule="invalid_index", ddl="REINDEX INDEX CONCURRENTLY x"
    )
    md = evidence_markdown(report_for(reindex, None, 0.9), reindex, revision_file="r.py")
    assert "(`nothing-to-measure`). **Not measured**: the planner never uses an invalid" in md
    assert "planner's estimates" not in md  # there are none for a rebuild


def test_a_statement_judged_on_its_worst_representative_set_is_said_to_be() -> None:
    plain = evidence_markdown(report_for(CREATE, create_evidence()), CREATE, revision_file="x.py")
    assert "the worst of them" not in plain
    first, *rest = create_evidence().statements
    judged = dataclasses.replace(first, reproduced=True, representative=("common", "rare"))
    ev = dataclasses.replace(create_evidence(), statements=(judged, *rest))
    md = evidence_markdown(report_for(CREATE, ev), CREATE, revision_file="x.py")
    assert "those of the worst of them: the one the index helps least" in md
