"""Outside text read within bounds: pg_stat_statements entries that are huge or nested deep.

Any role that can connect writes pg_stat_statements. A megabyte of SQL or a statement nested
a hundred parentheses deep must be skipped with its reason, in bounded time, and the rest
of the audit must go on.
"""

from __future__ import annotations

import json
import time

import psycopg

from app.adapters.target_pg import connect
from app.engine.render import to_json
from app.engine.sql import MAX_NESTING, MAX_STATEMENT_CHARS
from app.flows.audit_target import WorkloadSpec, audit_target

#: About 1.2 MB of statement text once pg_stat_statements has normalised the constants.
HUGE = "SELECT id FROM t WHERE " + " OR ".join(f"id = {i}" for i in range(60_000))
DEEP = "SELECT " + "(" * 120 + "id" + ")" * 120 + " FROM t WHERE v = 3"


def test_huge_and_deeply_nested_statements_are_skipped_with_a_reason(fresh_db18: str) -> None:
    with psycopg.connect(fresh_db18, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        conn.execute(
            "CREATE TABLE t AS SELECT g AS id, g % 1000 AS v FROM generate_series(1, 50000) g"
        )
        conn.execute("ANALYZE t")
        conn.execute("SELECT pg_stat_statements_reset()")
        conn.execute(HUGE.encode())
        conn.execute(DEEP.encode())
        for i in range(20):
            conn.execute("SELECT * FROM t WHERE id = %s", (i,))
    with connect(fresh_db18) as target:
        texts = [q.text for q in target.workload()]
    assert max(len(t) for t in texts) == MAX_STATEMENT_CHARS + 1  # the rest never left the server
    started = time.monotonic()
    report = audit_target(fresh_db18, WorkloadSpec(), allow_build=True)
    took = time.monotonic() - started
    reasons = {s.query.text[:30]: s.reason for s in report.skipped}
    huge = next(r for t, r in reasons.items() if t.startswith("SELECT id FROM t WHERE id = $"))
    assert f"over {MAX_STATEMENT_CHARS:,} characters" in huge
    deep = next(r for t, r in reasons.items() if t.startswith("SELECT (((("))
    assert f"nests parentheses 120 deep; statements nested over {MAX_NESTING}" in deep
    assert [r.columns for r in report.recommendations if r.action == "create_index"] == [("id",)]
    assert took < 20, f"the audit took {took:.1f} s"
    print(f"audit of a 1.2 MB and a 120-deep statement: {took:.2f} s")


def test_a_plan_nested_too_deep_for_json_is_a_skip_not_a_crash(fresh_db18: str) -> None:
    """A 600-way join (20 KB of SQL) plans 1,200 JSON levels deep: Python's json gives up."""
    with psycopg.connect(fresh_db18, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE t AS SELECT g AS id, g % 1000 AS v FROM generate_series(1, 50000) g"
        )
        conn.execute("ANALYZE t")
    joins = " ".join(f"JOIN t t{i} ON t{i}.id = t{i - 1}.id" for i in range(2, 600))
    deep = f"SELECT t1.id FROM t t1 {joins} WHERE t1.v = $1"
    workload = f"{deep};\nSELECT * FROM t WHERE id = $1;\n"
    report = audit_target(fresh_db18, WorkloadSpec(queries_text=workload), allow_build=True)
    assert [r.columns for r in report.recommendations if r.action == "create_index"] == [("id",)]
    assert "nests too deeply to read" in json.dumps(to_json(report))
