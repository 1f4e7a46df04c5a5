"""Equality + sort on PostgreSQL 15 + HypoPG, skewed data: one composite, not (customer_id)."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from app.engine.model import recommendation_id
from app.engine.report import Report
from app.flows.audit_target import ValidationSpec, WorkloadSpec, audit_target

#: 100,000 customers with 4 orders each, and customer 0 with 8,000 more.
SCHEMA = """
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL,
                     created_at timestamptz NOT NULL, total numeric NOT NULL);
INSERT INTO orders
SELECT g, g % 100000, timestamptz '2025-01-01' + g * interval '1 minute', g % 1000
FROM generate_series(1, 400000) g;
INSERT INTO orders
SELECT 400000 + g, 0, timestamptz '2024-01-01' + g * interval '1 hour', g % 1000
FROM generate_series(1, 8000) g;
"""
LATEST = "SELECT id, total FROM orders WHERE customer_id = $1 ORDER BY created_at DESC LIMIT $2"
WORKLOAD = f"""
{LATEST};
SELECT count(*) FROM orders WHERE customer_id = $1;
SELECT count(*) FROM orders WHERE created_at >= $1 AND created_at < $2;
"""
HEAVY = "SELECT id, total FROM orders WHERE customer_id = 0 ORDER BY created_at DESC LIMIT 20"


@pytest.fixture
def orders_db(fresh_db15: str) -> str:
    with psycopg.connect(fresh_db15, autocommit=True) as conn:
        conn.execute(b"CREATE EXTENSION hypopg")
        conn.execute(SCHEMA.encode())
        conn.execute(b"VACUUM ANALYZE orders")
    return fresh_db15


def _created(report: Report) -> list[str]:
    return [f"{r.table} ({', '.join(r.columns)})" for r in report.recommendations]


def _heavy_plan(dsn: str, ddl: str) -> dict[str, Any]:
    """The heavy customer's latest orders with ``ddl`` built, in a transaction rolled back."""
    with psycopg.connect(dsn) as conn:
        conn.execute(ddl.encode())
        row = conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {HEAVY}".encode()).fetchone()
        conn.rollback()
    assert row is not None
    plan: dict[str, Any] = json.loads(row[0])[0] if isinstance(row[0], str) else row[0][0]
    return plan


def _rows_read(node: dict[str, Any]) -> float:
    """Rows the index scans under ``node`` returned (actual, all loops)."""
    scan = node["Node Type"] in ("Index Scan", "Index Only Scan", "Bitmap Index Scan")
    own = node["Actual Rows"] * node["Actual Loops"] if scan else 0
    return own + sum(_rows_read(child) for child in node.get("Plans", ()))


def test_the_composite_reads_the_top_rows_where_customer_id_reads_them_all(orders_db: str) -> None:
    narrow = _heavy_plan(orders_db, "CREATE INDEX ON orders (customer_id)")
    composite = _heavy_plan(orders_db, "CREATE INDEX ON orders (customer_id, created_at)")
    assert _rows_read(narrow["Plan"]) == 8004  # every order of the customer, then a top-N sort
    assert _rows_read(composite["Plan"]) == 20  # a top-N index scan
    print(
        f"heavy customer: (customer_id) {narrow['Execution Time']:.2f} ms, "
        f"(customer_id, created_at) {composite['Execution Time']:.2f} ms"
    )


def test_estimates_choose_the_composite_and_keep_created_at_for_the_range(orders_db: str) -> None:
    report = audit_target(orders_db, WorkloadSpec(queries_text=WORKLOAD))
    assert report.whatif == "hypopg"
    # Before the comparison: (customer_id) and (created_at), the composite "served well enough".
    assert sorted(_created(report)) == [
        "public.orders (created_at)",
        "public.orders (customer_id, created_at)",
    ]
    reasons = {r.candidate: r.reason for r in report.rejected}
    replaced = reasons["public.orders (customer_id)"]
    assert replaced.startswith("replaced by the composite public.orders (customer_id, created_at)")
    assert "public.orders (created_at) kept either way" in replaced
    assert "a top-N index scan instead of a sort for 1 statement" in replaced
    assert replaced.count("saves") == 2 and replaced.count("write cost of") == 2
    (composite,) = [r for r in report.recommendations if r.columns == ("customer_id", "created_at")]
    assert any(
        line.startswith("chosen instead of public.orders (customer_id)")
        for line in composite.reasons
    )


def test_measured_the_composite_is_proposed_and_proven(orders_db: str) -> None:
    report = audit_target(
        orders_db, WorkloadSpec(queries_text=WORKLOAD), validation=ValidationSpec(on_target=True)
    )
    creates = _created(report)
    assert "public.orders (customer_id)" not in creates
    (composite,) = [r for r in report.recommendations if r.columns == ("customer_id", "created_at")]
    assessment = report.assessments[recommendation_id(composite)]
    assert assessment.evidence is not None and assessment.evidence.skipped is None
    assert assessment.confidence.eligible, assessment.confidence.breakdown
