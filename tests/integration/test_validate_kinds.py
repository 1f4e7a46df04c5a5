"""Every kind of index the advisor proposes is measured: expression and partial on PostgreSQL 15."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import psycopg

from app.adapters.drop_plans import hypopg
from app.adapters.target_pg import connect
from app.adapters.validate import Budget
from app.engine.model import recommendation_id
from app.engine.proof.twin import PLANS_ONLY, can_hide, drop_method
from app.engine.verdict import assess
from app.flows.audit_target import ValidationSpec, WorkloadSpec, audit_target
from tests.integration.test_validate import catalog_state

# 200k customers with distinct e-mails in mixed case; four in five soft-deleted (archived
# accounts), the live ones read through "deleted_at IS NULL" (a constant of every statement).
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


# An exact duplicate of an index the workload uses, and the unique constraint's index with a
# duplicate of its own: the constraint's index always stays.
DUPLICATES = """
CREATE EXTENSION hypopg;
CREATE TABLE sessions (
    id bigint PRIMARY KEY, user_id int NOT NULL, token text NOT NULL UNIQUE,
    started_at timestamptz NOT NULL
);
INSERT INTO sessions
SELECT g, g % 5000, md5(g::text), timestamptz '2025-01-01' + g * interval '1 minute'
FROM generate_series(1, 100000) AS g;
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_user_id_again ON sessions (user_id);
CREATE INDEX sessions_token_copy ON sessions (token);
ALTER TABLE sessions SET (autovacuum_enabled = off);
VACUUM ANALYZE sessions;
SELECT count(*) FROM sessions WHERE user_id = 7;
"""

SESSION_WORKLOAD = """
SELECT id, started_at FROM sessions WHERE user_id = $1;
SELECT id FROM sessions WHERE token = $1;
SELECT count(*) FROM sessions WHERE user_id = abs($1::int);
"""


def test_hypopg_1_3_is_detected_and_drops_fall_back_to_plans(fresh_db15: str) -> None:
    seed(fresh_db15, DUPLICATES)
    with connect(fresh_db15) as target:
        found = hypopg(target)
    assert found is not None and found.version == "1.3.1"  # Debian bookworm's HypoPG
    assert not can_hide(found.version)
    assert drop_method(on_sandbox=False, hypopg_version=found.version, exact=True) == PLANS_ONLY
    assert drop_method(on_sandbox=False, hypopg_version=found.version, exact=False) is None


def test_an_exact_duplicate_reaches_the_bar_with_plans_showing_its_twin(fresh_db15: str) -> None:
    seed(fresh_db15, DUPLICATES)
    before = catalog_state(fresh_db15)
    report = audit_target(
        fresh_db15,
        WorkloadSpec(queries_text=SESSION_WORKLOAD),
        validation=ValidationSpec(on_target=True, budget=Budget(runs=3)),
    )
    drops = {r.index_name: r for r in report.recommendations if r.action == "drop_index"}
    # The constraint's index (sessions_token_key) is the twin that stays, never the drop.
    assert set(drops) == {"sessions_user_id_again", "sessions_token_copy"}, report.rejected
    for name, twin in (
        ("sessions_user_id_again", "sessions_user_idx"),
        ("sessions_token_copy", "sessions_token_key"),
    ):
        rec = drops[name]
        assessment = report.assessments[recommendation_id(rec)]
        ev = assessment.evidence
        assert ev is not None and ev.skipped is None and ev.drop_method == PLANS_ONLY, ev
        assert ev.plans and all(name not in c.after for c in ev.plans)
        assert any(twin in c.after for c in ev.plans), ev.plans  # the twin serves the plans
        if twin == "sessions_user_idx":  # abs($1) has no value to synthesise: generic plan
            assert any(c.label == "generic" and twin in c.after for c in ev.plans), ev.plans
        assert assessment.confidence.eligible, assessment.confidence
        assert assessment.confidence.breakdown["measured_safety"] == 0.3
        assert any("for the planning only" in r and twin in r for r in rec.reasons), rec.reasons
    assert catalog_state(fresh_db15) == before  # every drop was rolled back


def test_a_twin_that_does_not_serve_holds_the_drop_back(fresh_db15: str) -> None:
    """The plans decide: a duplicate whose statements plan elsewhere without it stays held."""
    seed(fresh_db15, DUPLICATES)
    report = audit_target(
        fresh_db15,
        WorkloadSpec(queries_text=SESSION_WORKLOAD),
        validation=ValidationSpec(on_target=True, budget=Budget(runs=3)),
    )
    rec = next(r for r in report.recommendations if r.index_name == "sessions_user_id_again")
    ev = report.assessments[recommendation_id(rec)].evidence
    assert ev is not None
    # The same evidence with the twin's name swapped out of the plans without the duplicate.
    broken = dataclasses.replace(
        ev,
        plans=tuple(
            dataclasses.replace(c, after=c.after - {"sessions_user_idx"}) for c in ev.plans
        ),
    )
    held = assess(
        dataclasses.replace(report, rejected=(), assessments={}),
        {recommendation_id(rec): broken},
        now=datetime.now(UTC),
    )
    assert held.assessments[recommendation_id(rec)].confidence.breakdown["measured_safety"] == 0
