"""The admin API's documents: pages, the audit view of a stored report, body and error checks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, get_args

import msgspec
import pytest

from app.adapters.history import AuditDetail, AuditSummary
from app.adapters.memory import RECOMMENDATION_STATES
from app.web.api_models import (
    PAGE_MAX,
    AuditPage,
    AuditStart,
    LedgerState,
    audit_view,
    page,
    start_problem,
    validation_problem,
)

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def summary_row(audit_id: int, recommendations: int = 1) -> AuditSummary:
    return AuditSummary(
        id=audit_id,
        repository="acme/shop",
        trigger="api",
        requested_by="admin-api",
        status="done",
        dry_run=True,
        created_at=T0,
        started_at=T0,
        finished_at=T0,
        duration_s=4.25,
        title="1 pull request would open",
        conclusion="neutral",
        recommendations=recommendations,
    )


def stored_rec(rec_id: str = "create_index:3f9a1c2b") -> dict[str, Any]:
    """A recommendation as ``app.engine.render.to_json`` writes it."""
    side = {"cost": 2041.0, "ms_p50": 12.4, "ms_p95": 15.0, "buffers": 900}
    return {
        "id": rec_id,
        "action": "create_index",
        "rule": "missing_index",
        "table": "public.orders",
        "columns": ["customer_id", "created_at"],
        "descending": [False, True],
        "include": [],
        "where": None,
        "using": "btree",
        "index_name": "orders_customer_id_created_at_idx",
        "ddl": "CREATE INDEX CONCURRENTLY orders_customer_id_created_at_idx ON …",
        "size_bytes": 8192,
        "confidence": 0.91,
        "confidence_breakdown": {"measured_speedup": 0.6, "reviewer_memory": -0.02},
        "reviewer_memory": ["- @carol on #12: write load (reject)"],
        "eligible": True,
        "measurement": {
            "method": "sandbox",
            "cause": None,
            "reason": None,
            "statements": 1,
            "statements_measured": 1,
        },
        "validation": {
            "where": "sandbox",
            "skipped": None,
            "change_ms": 120.5,
            "index_bytes": 16384,
            "used_by_plans": True,
        },
        "queries": [
            {
                "query": "SELECT * FROM orders WHERE customer_id = $1 ORDER BY created_at",
                "calls": 1200,
                "write": False,
                "before": side,
                "after": side | {"cost": 40.2, "ms_p50": 0.3, "ms_p95": 0.4, "buffers": 4},
                "parameter_sets": ["common", "rare"],
                "notes": [],
            }
        ],
        "reasons": ["serves 1 statement"],
    }


def test_a_page_of_limit_plus_one_rows_points_at_the_next() -> None:
    rows = [summary_row(n) for n in (9, 8, 7)]

    assert page(rows, 2) == (rows[:2], 8)
    assert page(rows, 3) == (rows, None)
    assert page([], 5) == ([], None)


def test_a_page_encodes_times_as_iso_8601() -> None:
    encoded = msgspec.json.decode(msgspec.json.encode(AuditPage([summary_row(3)], None)))

    item = encoded["audits"][0]
    assert item["created_at"] == "2026-11-28T09:00:00Z"
    assert datetime.fromisoformat(item["finished_at"]) == T0
    assert item["duration_s"] == 4.25 and encoded["next_before"] is None


def test_the_audit_view_carries_evidence_and_what_happened() -> None:
    report = {
        "version": 1,
        "target": {"server_version": "18.1", "database": "shop", "hypopg": False},
        "workload": {"statements": 12, "analyzed": 10, "skipped": 2},
        "recommendations": [stored_rec(), stored_rec("drop_index:aa") | {"action": "drop_index"}],
        "rejected": [{"candidate": "public.orders (status)", "reason": "covered"}],
    }
    summary = {
        "title": "1 pull request would open",
        "conclusion": "neutral",
        "outcome": "done",
        "dry_run": True,
        "results": {"create_index:3f9a1c2b": "would open"},
    }

    view = audit_view(AuditDetail(summary_row(5, 2), summary, report))

    first, second = view.recommendations
    assert first.breakdown == {"measured_speedup": 0.6, "reviewer_memory": -0.02}
    assert first.reviewer_memory == ["- @carol on #12: write load (reject)"]
    assert first.validation is not None and first.validation.used_by_plans is True
    assert first.descending == [False, True]
    assert first.measurement is not None and first.measurement.method == "sandbox"
    assert (first.queries[0].before.ms_p50, first.queries[0].after.ms_p50) == (12.4, 0.3)
    assert first.result == "would open" and second.result is None
    assert second.action == "drop_index"
    assert view.summary.outcome == "done" and view.summary.dry_run is True
    assert view.rejected[0].reason == "covered"
    assert view.workload == {"statements": 12, "analyzed": 10, "skipped": 2}
    assert view.target["database"] == "shop"
    encoded = msgspec.json.decode(msgspec.json.encode(view))
    assert "confidence_breakdown" not in encoded["recommendations"][0]


def test_an_audit_without_a_report_has_no_recommendations() -> None:
    view = audit_view(AuditDetail(summary_row(6, 0), {"title": "failed"}, None))

    assert view.recommendations == [] and view.rejected == []
    assert view.workload == {} and view.target == {}
    assert view.summary.results == {} and view.summary.dry_run is None


def test_an_unreadable_stored_recommendation_says_so_instead_of_failing() -> None:
    broken = stored_rec() | {"queries": "not a list"}
    report = {"recommendations": [broken, "junk"], "workload": "junk", "rejected": None}

    view = audit_view(AuditDetail(summary_row(7), {"results": ["junk"]}, report))

    [rec] = view.recommendations
    assert rec.id == "create_index:3f9a1c2b" and rec.table == "public.orders"
    assert "could not be read" in rec.reasons[0]
    assert view.workload == {}


def test_the_body_is_typed_and_closed() -> None:
    decode = msgspec.json.Decoder(AuditStart).decode

    start = decode(b'{"repository": "acme/shop", "tables": ["orders"], "min_confidence": 1}')
    assert (start.tables, start.dry_run, start.min_confidence) == (["orders"], None, 1.0)
    for body, word in [
        (b'{"repository": "acme"}', "regex"),
        (b'{"repository": "acme/shop", "min_confidence": 0.79}', ">= 0.8"),
        (b'{"repository": "acme/shop", "min_confidence": true}', "bool"),
        (b'{"repository": "acme/shop", "dryrun": true}', "unknown field `dryrun`"),
        (b"{}", "missing required field `repository`"),
    ]:
        with pytest.raises(msgspec.ValidationError, match=word):
            decode(body)


@pytest.mark.parametrize(
    ("tables", "problem"),
    [
        (["a.b.c"], "must be `table` or `schema.table`"),
        ([" orders"], "must be `table` or `schema.table`"),
        ([f"t{n}" for n in range(51)], "names 51 tables; at most 50"),
    ],
)
def test_table_names_are_checked_like_the_audit_command(tables: list[str], problem: str) -> None:
    found = start_problem(AuditStart(repository="acme/shop", tables=tables))

    assert found is not None and found[0] == "tables" and problem in found[1]


def test_good_tables_pass() -> None:
    assert start_problem(AuditStart("acme/shop", tables=["orders", "sales.events"])) is None


@pytest.mark.parametrize(
    ("extra", "field", "words"),
    [
        (
            [{"message": "Expected `int` >= 1", "key": "limit", "source": "query"}],
            "limit",
            ["`limit` in the query", ">= 1", f"from 1 to {PAGE_MAX}"],
        ),
        (
            [{"message": "Invalid enum value 'nope'", "key": "ledger_state", "source": "query"}],
            "state",
            ["'nope'", "pr_open"],
        ),
        (
            [{"message": "Object missing required field `repository`", "key": "data"}],
            "repository",
            ["`repository`", "owner/name"],
        ),
        (
            [{"message": "Expected `str`, got `int`", "key": "tables[0]", "source": "body"}],
            "tables",
            ["`tables[0]` in the body", "list of table names"],
        ),
        (
            [{"message": "Object contains unknown field `dryrun`", "key": "data"}],
            "dryrun",
            ["unknown field `dryrun`"],
        ),
    ],
)
def test_a_refused_value_is_named_with_what_to_give(
    extra: list[dict[str, str]], field: str, words: list[str]
) -> None:
    named, message = validation_problem(extra)

    assert named == field
    for word in words:
        assert word in message


def test_a_validation_error_without_details_still_reads() -> None:
    assert validation_problem(None) == ("", "the request is not valid")


def test_ledger_states_are_the_stores() -> None:
    assert set(get_args(LedgerState)) == RECOMMENDATION_STATES
