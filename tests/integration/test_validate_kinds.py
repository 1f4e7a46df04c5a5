"""Every kind of index the advisor proposes is measured: expression and partial on PostgreSQL 15."""

from __future__ import annotations

import psycopg

from app.adapters.validate import Budget
from app.engine.advisor.audit import recommendation_id
from app.flows.audit_target import ValidationSpec, WorkloadSpec, audit_target

# 200k customers with distinct e-mails in mixed case; four in five soft-deleted (archived accounts); orders of
# the live customers read through "deleted_at IS NULL" (a constant of every statement).
CUSTOMERS = """
CREATE EXTENSION hypopg;
CREATE TABLE customers (
    id bigint PRIMARY KEY, email text NOT NULL, name text NOT NULL, org_id int NOT NULL,
    deleted_at timestamptz
);
INSERT INTO customers
SELECT g, CASE WHEN g % 2 = 0 THEN 'User' ELSE 'user' END || g || '@Example.com',
       md5(g::text), g % 4000,
       CASE WHEN g % 5 <> 0 THEN timestamptz '2025-01-01' END
FROM generate_series(1, 200000) AS g;
ALTER TABLE customers SET (autovacuum_enabled = off);
VACUUM ANALYZE customers;
"""

WORKLOAD = """
SELECT id, email FROM customers WHERE lower(email) = lower($1);
SELECT id, name FROM customers WHERE org_id = $1 AND deleted_at IS NULL;
"""


def seed(dsn: str, script: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in script.split(";\n"):
            if statement.strip():
                conn.execute(statement.encode())


def test_expression_and_partial_indexes_are_measured_and_can_reach_the_bar(
    fresh_db15: str,
) -> None:
    seed(fresh_db15, CUSTOMERS)
    report = audit_target(
        fresh_db15,
        WorkloadSpec(queries_text=WORKLOAD),
        validation=ValidationSpec(on_target=True, budget=Budget(runs=3)),
    )
    by_kind = {}
    for rec in report.recommendations:
        if rec.action != "create_index":
            continue
        kind = "partial" if rec.where else "expression" if "lower(" in rec.ddl else "plain"
        by_kind[kind] = rec
    assert {"expression", "partial"} <= set(by_kind), (report.recommendations, report.rejected)
    for kind in ("expression", "partial"):
        rec = by_kind[kind]
        assessment = report.assessments[recommendation_id(rec)]
        ev = assessment.evidence
        assert ev is not None and ev.skipped is None, (kind, ev)
        reads = ev.reads()
        assert reads and all(s.measured for s in reads), (kind, [s.notes for s in reads])
        assert ev.used_by_plans, kind  # the measured plans use the index built
        pair = reads[0].pairs()[0]
        assert pair.after.p50 * 5 < pair.before.p50, (kind, pair)
        conf = assessment.confidence
        assert conf.eligible, (kind, conf)
        assert conf.breakdown["measured_speedup"] > 0, (kind, conf)
    # Whatever else was proposed (INCLUDE, multi-column) was measured the same way.
    for rec in report.recommendations:
        ev = report.assessments[recommendation_id(rec)].evidence
        assert ev is not None and ev.skipped is None, rec
        assert all(s.measured for s in ev.reads()), rec
