"""unused_index: idle indexes over a long enough window, and everything it must never propose."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from app.engine.advisor.rules import RuleConfig
from app.engine.advisor.rules.unused_index import RULE_ID, unused_index
from app.engine.model import ForeignKey, Index, RelKind, Snapshot, Table

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)
MIB = 1 << 20
ORDERS = Table("public", "orders", rows=100_000, n_tup_ins=5000, n_tup_upd=300, n_tup_hot_upd=100)


def _index(name: str, *columns: str, **kw: Any) -> Index:
    return Index("public", name, "public.orders", columns, **({"size_bytes": 2 * MIB} | kw))


def _snapshot(*indexes: Index, days: float | None = 40, **kw: Any) -> Snapshot:
    reset = None if days is None else NOW - timedelta(days=days)
    values = {"tables": (ORDERS,)} | kw
    return Snapshot("18.6", 180006, "shop", NOW, indexes=indexes, stats_reset=reset, **values)


def _names(snapshot: Snapshot, config: RuleConfig | None = None) -> list[str]:
    recs = unused_index(snapshot, now=NOW, config=config or RuleConfig())
    return [r.index_name for r in recs]


def test_unused_index_proposes_drop_with_numbers_and_definition() -> None:
    definition = "CREATE INDEX orders_status_idx ON public.orders USING btree (status)"
    idx = _index("orders_status_idx", "status", definition=definition, size_bytes=3 * MIB)

    [rec] = unused_index(_snapshot(idx), now=NOW, config=RuleConfig())

    assert rec.action == "drop_index"
    assert rec.rule == RULE_ID
    assert rec.table == "public.orders"
    assert rec.columns == ("status",)
    assert rec.ddl == "DROP INDEX CONCURRENTLY IF EXISTS public.orders_status_idx"
    assert rec.definition == definition
    assert rec.size_bytes == 3 * MIB
    assert rec.reasons[0] == "orders_status_idx (3.0 MB) has had 0 scans since 2025-04-22 (40 days)"
    assert "5200 row inserts and non-HOT updates" in rec.reasons[1]
    assert "standby" in rec.reasons[-1]
    assert rec.extra["window_days"] == 40
    assert rec.extra["window_known"] == 1


def test_unused_index_never_proposes_primary_unique_constraint_or_invalid() -> None:
    snapshot = _snapshot(
        _index("orders_pkey", "id", primary=True, unique=True, constraint="orders_pkey"),
        _index("orders_number_key", "number", unique=True, constraint="orders_number_key"),
        _index("orders_ref_uidx", "ref", unique=True),
        _index("orders_no_overlap", "period", using="gist", constraint="orders_no_overlap"),
        _index("orders_broken_idx", "x", valid=False),
    )

    assert _names(snapshot) == []


def test_unused_index_ignores_scanned_indexes() -> None:
    assert _names(_snapshot(_index("orders_status_idx", "status", scans=1))) == []


def test_unused_index_waits_for_min_days_since_stats_reset() -> None:
    idx = _index("orders_status_idx", "status")

    assert _names(_snapshot(idx, days=13.9)) == []
    assert _names(_snapshot(idx, days=14)) == ["orders_status_idx"]
    assert _names(_snapshot(idx, days=20), RuleConfig(unused_min_days=35)) == []


def test_unused_index_window_ends_when_the_snapshot_was_taken() -> None:
    """A snapshot read 5 days after a reset and looked at 30 days later is a 5-day window."""
    idx = _index("orders_status_idx", "status")
    snapshot = _snapshot(idx, days=5)

    assert list(unused_index(snapshot, now=NOW + timedelta(days=30), config=RuleConfig())) == []


def test_unused_index_window_is_capped_by_now_when_snapshot_clock_runs_ahead() -> None:
    idx = _index("orders_status_idx", "status")
    snapshot = _snapshot(idx, days=20)

    recs = unused_index(snapshot, now=NOW - timedelta(days=10), config=RuleConfig())

    assert list(recs) == []


def test_unused_index_skips_unknown_window_unless_configured() -> None:
    snapshot = _snapshot(_index("orders_status_idx", "status"), days=None)

    assert _names(snapshot) == []
    [rec] = unused_index(snapshot, now=NOW, config=RuleConfig(unused_unknown_window=True))
    assert "never reset" in rec.reasons[0]
    assert rec.extra["window_known"] == 0
    assert "window_days" not in rec.extra


def test_unused_index_skips_indexes_below_size_floor() -> None:
    small = _index("orders_small_idx", "note", size_bytes=256 * 1024 - 1)

    assert _names(_snapshot(small)) == []
    assert _names(_snapshot(small), RuleConfig(unused_min_size_bytes=32 * 1024)) == [
        "orders_small_idx"
    ]


def test_unused_index_reports_expression_and_partial_indexes() -> None:
    snapshot = _snapshot(
        _index("orders_lower_note_idx", "lower(note)"),
        _index("orders_pending_idx", "placed_at", where="(status = 'pending'::text)"),
    )

    recs = list(unused_index(snapshot, now=NOW, config=RuleConfig()))

    assert [r.index_name for r in recs] == ["orders_lower_note_idx", "orders_pending_idx"]
    assert recs[1].where == "(status = 'pending'::text)"
    assert "each matching row of which" in recs[1].reasons[1]


def test_unused_index_on_partitioned_parent_drops_without_concurrently() -> None:
    events = Table("public", "events", kind=RelKind.partitioned)
    part = Table("public", "events_2025_01", partition_of="public.events")
    parent_idx = Index("public", "events_kind_idx", "public.events", ("kind",), size_bytes=4 * MIB)
    child_idx = Index(
        "public", "events_2025_01_kind_idx", "public.events_2025_01", ("kind",), size_bytes=MIB * 2
    )
    snapshot = _snapshot(parent_idx, child_idx, tables=(events, part))

    [rec] = unused_index(snapshot, now=NOW, config=RuleConfig())

    assert rec.index_name == "events_kind_idx"
    assert rec.ddl == "DROP INDEX IF EXISTS public.events_kind_idx"
    assert "every partition" in rec.reasons[-1]


def test_unused_index_reports_a_partition_index_of_its_own() -> None:
    part = Table("public", "events_2025_01", partition_of="public.events")
    local = Index(
        "public", "events_2025_01_note_idx", "public.events_2025_01", ("note",), size_bytes=MIB * 2
    )
    snapshot = _snapshot(local, tables=(Table("public", "events", kind=RelKind.partitioned), part))

    assert _names(snapshot) == ["events_2025_01_note_idx"]


def test_unused_index_keeps_the_only_index_serving_a_foreign_key() -> None:
    fk = ForeignKey(
        "orders_customer_fk", "public.orders", ("customer_id",), "public.users", ("id",)
    )
    only = _index("orders_customer_id_idx", "customer_id")

    assert _names(_snapshot(only, foreign_keys=(fk,))) == []

    wider = _index("orders_customer_id_placed_at_idx", "customer_id", "placed_at", scans=10)
    assert _names(_snapshot(only, wider, foreign_keys=(fk,))) == ["orders_customer_id_idx"]


def test_unused_index_quotes_mixed_case_names() -> None:
    idx = replace(_index("AuditLog_EventType_idx", '"EventType"'), table="public.AuditLog")

    [rec] = unused_index(_snapshot(idx), now=NOW, config=RuleConfig())

    assert rec.ddl == 'DROP INDEX CONCURRENTLY IF EXISTS public."AuditLog_EventType_idx"'
    assert rec.table == "public.AuditLog"


def test_unused_index_orders_output_by_table_then_name() -> None:
    a = replace(_index("b_idx", "x"), table="public.a")
    b = _index("a_idx", "y")
    c = _index("c_idx", "z")

    assert _names(_snapshot(c, b, a)) == ["b_idx", "a_idx", "c_idx"]


def _partitioned(*child_scans: int) -> Snapshot:
    """events partitioned in two; the parent's index has no counters of its own (as PG says)."""
    parts = [Table("public", f"events_p{i}", partition_of="public.events") for i in (1, 2)]
    tables = (Table("public", "events", kind=RelKind.partitioned), *parts)
    parent = Index("public", "events_kind_idx", "public.events", ("kind",))
    children = tuple(
        Index(
            "public",
            f"events_p{i}_kind_idx",
            f"public.events_p{i}",
            ("kind",),
            scans=scans,
            size_bytes=MIB,
        )
        for i, scans in zip((1, 2), child_scans, strict=True)
    )
    return _snapshot(parent, *children, tables=tables)


def test_unused_index_counts_partition_scans_for_a_partitioned_index() -> None:
    assert _names(_partitioned(0, 5)) == []


def test_unused_index_sums_partition_sizes_for_a_partitioned_index() -> None:
    [rec] = unused_index(_partitioned(0, 0), now=NOW, config=RuleConfig())

    assert rec.index_name == "events_kind_idx"
    assert rec.size_bytes == 2 * MIB
    assert rec.reasons[0].startswith("events_kind_idx (2.0 MB) has had 0 scans")
