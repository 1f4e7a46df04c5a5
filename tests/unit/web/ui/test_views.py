"""What the dashboard pages show, built from History rows and stored (possibly odd) reports."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from app.adapters.history import AuditSummary, RecommendationRow, Speedup
from app.web.ui.views import (
    audit_recommendations,
    fmt_duration,
    fmt_when,
    merge_newest_first,
    pull_url,
    speedup_bars,
    states_for,
    status_counts,
)

NOW = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def summary(id_: int, status: str) -> AuditSummary:
    return AuditSummary(
        id_, "acme/shop", "comment", "alice", status, False, NOW, NOW, None, None, None, None, 0
    )


def ledger(id_: int, state: str) -> RecommendationRow:
    return RecommendationRow(
        id_, "acme/shop", f"fp{id_}", f"create_index:{id_}", "create_index", "public.t", state,
        0.9, {}, None, None, NOW, NOW,
    )  # fmt: skip


def speedup(audit_id: int, rec_id: str, before: float, after: float) -> Speedup:
    return Speedup(
        audit_id, "acme/shop", NOW, rec_id, "create_index", "public.accounts", 0.9, before, after
    )


def test_a_full_recommendation_with_its_result() -> None:
    report: dict[str, Any] = {
        "recommendations": [
            {
                "id": "create_index:aa",
                "action": "create_index",
                "table": "public.accounts",
                "columns": ["email"],
                "ddl": "CREATE INDEX …",
                "confidence": 0.91,
                "eligible": True,
                "confidence_breakdown": {"measured_speedup": 0.35, "reviewer_memory": -0.04},
                "reviewer_memory": ["Reviewer memory moved the confidence by −0.04:", "- one"],
                "queries": [
                    {"query": "SELECT 1", "calls": 40, "write": False,
                     "before": {"ms_p50": 12.0}, "after": {"ms_p50": 0.3}, "notes": ["n"]},
                    {"query": "UPDATE t", "calls": 5, "write": True,
                     "before": {"ms_p50": None}, "after": {"ms_p50": None}},
                ],
                "reasons": ["seq scan"],
            }
        ]
    }  # fmt: skip
    (rec,) = audit_recommendations(report, {"results": {"create_index:aa": "opened PR #12"}})
    assert (rec.id, rec.action, rec.table, rec.columns) == (
        "create_index:aa",
        "create_index",
        "public.accounts",
        ("email",),
    )
    assert rec.confidence == 0.91 and rec.eligible and rec.result == "opened PR #12"
    assert rec.breakdown == (("measured_speedup", 0.35), ("reviewer_memory", -0.04))
    assert rec.memory_header == "Reviewer memory moved the confidence by −0.04:"
    assert rec.memory == ("one",)
    read, write = rec.statements
    assert (read.before_ms, read.after_ms, read.calls, read.notes) == (12.0, 0.3, 40, ("n",))
    assert read.ratio == pytest.approx(40.0)
    assert write.write and write.ratio is None


def test_odd_reports_show_as_blanks_not_errors() -> None:
    report: dict[str, Any] = {
        "recommendations": [
            {},
            "not a mapping",
            {
                "id": 7,
                "confidence": True,
                "columns": "email",
                "confidence_breakdown": {"a": "x", "b": math.nan, "c": 1},
                "reviewer_memory": ["- only bullets", 3],
                "queries": [{"before": "fast", "after": {"ms_p50": 0}, "calls": True}, 5],
                "eligible": "yes",
            },
        ]
    }
    empty, odd = audit_recommendations(report, {"results": ["not", "a", "mapping"]})
    assert (empty.id, empty.action, empty.table, empty.confidence) == ("—", "—", "—", None)
    assert empty.statements == () and empty.result is None
    assert odd.id == "—" and odd.confidence is None and odd.columns == () and not odd.eligible
    assert odd.breakdown == (("c", 1.0),)
    assert odd.memory_header is None and odd.memory == ("only bullets",)
    (statement,) = odd.statements
    assert statement.before_ms is None and statement.after_ms == 0 and statement.calls is None
    assert statement.query == "—" and statement.ratio is None
    assert audit_recommendations(None, {}) == []
    assert audit_recommendations({"recommendations": "none"}, {}) == []


def test_one_bar_per_recommendation_from_its_newest_measurement() -> None:
    rows = [
        speedup(9, "create_index:aa", 12.0, 0.3),
        speedup(9, "create_index:bb", 6.0, 1.5),
        speedup(8, "create_index:aa", 11.0, 0.5),  # older: left out
        speedup(8, "create_index:cc", 3.0, 1.0),
    ]
    bars = speedup_bars(rows, limit=10)
    assert [(b.before_ms, b.after_ms, b.href) for b in bars] == [
        (12.0, 0.3, "/ui/audits/9"),
        (6.0, 1.5, "/ui/audits/9"),
        (3.0, 1.0, "/ui/audits/8"),
    ]
    assert bars[0].label == "accounts · create index"
    assert len(speedup_bars(rows, limit=2)) == 2


def test_state_choices() -> None:
    assert states_for("open") == ("pr_open", "proposed")
    assert states_for("closed") == ("merged", "ignored", "superseded")
    assert states_for("merged") == ("merged",)
    with pytest.raises(ValueError, match="unknown state 'bogus': use one of open, closed"):
        states_for("bogus")


def test_merging_state_pages_keeps_newest_first_and_the_limit() -> None:
    merged = merge_newest_first([[ledger(9, "pr_open"), ledger(4, "pr_open")],
                                 [ledger(7, "proposed"), ledger(2, "proposed")]], 3)  # fmt: skip
    assert [r.id for r in merged] == [9, 7, 4]


def test_status_counts_in_lifecycle_order() -> None:
    audits = [summary(n, s) for n, s in enumerate(["done", "failed", "done", "running", "odd"])]
    assert status_counts(audits) == [("running", 1), ("done", 2), ("failed", 1), ("odd", 1)]
    assert status_counts([]) == []


def test_formats() -> None:
    assert [fmt_duration(s) for s in (None, math.inf, 0.84, 42.4, 185, 7440)] == [
        "—",
        "—",
        "0.8 s",
        "42 s",
        "3 min 05 s",
        "2 h 04 min",
    ]
    plus_two = NOW.astimezone(timezone(timedelta(hours=2)))
    assert fmt_when(plus_two) == fmt_when(NOW) == "2026-03-01 12:30 UTC"
    assert fmt_when(None) == "—"
    assert pull_url("acme/shop", 12) == "https://github.com/acme/shop/pull/12"
    assert pull_url('a"b/c d', 1) == "https://github.com/a%22b/c%20d/pull/1"
    assert pull_url("acme/shop", 3, web="https://ghe.corp/") == "https://ghe.corp/acme/shop/pull/3"


def test_descending_keys_show_as_the_ddl_spells_them() -> None:
    rec = {
        "id": "create_index:bb",
        "columns": ["user_id", "blog_id"],
        "descending": [False, True],
        "measurement": {"method": "estimate-only", "reason": "the 600 s budget ran out"},
    }
    (view,) = audit_recommendations({"recommendations": [rec]}, {})
    assert view.columns == ("user_id", "blog_id DESC")
    assert view.measured == "estimate-only: the 600 s budget ran out"
    v1 = {"id": "create_index:cc", "columns": ["user_id"]}  # a version 1 report has no flags
    (old,) = audit_recommendations({"recommendations": [v1]}, {})
    assert old.columns == ("user_id",) and old.measured is None
