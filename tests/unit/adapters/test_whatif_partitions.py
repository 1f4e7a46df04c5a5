"""Which tables a hypothetical index on a partitioned table must really be made on."""

from __future__ import annotations

from datetime import UTC, datetime

from app.adapters.whatif import leaf_partitions
from app.engine.model import RelKind, Snapshot, Table


def _snapshot(*tables: Table) -> Snapshot:
    return Snapshot("18.0", 180000, "app", datetime(2025, 1, 1, tzinfo=UTC), tables=tables)


def test_leaf_partitions_at_any_depth_without_foreign_ones() -> None:
    snapshot = _snapshot(
        Table("public", "ev", RelKind.partitioned),
        Table("public", "ev1", partition_of="public.ev"),
        Table("public", "ev2", RelKind.partitioned, partition_of="public.ev"),
        Table("archive", "ev2a", partition_of="public.ev2"),
        Table("public", "ev2b", partition_of="public.ev2"),
        Table("public", "ev_remote", RelKind.foreign, partition_of="public.ev"),
        Table("public", "empty", RelKind.partitioned),
        Table("public", "plain"),
    )
    assert leaf_partitions(snapshot) == {
        "public.ev": ("public.ev1", "archive.ev2a", "public.ev2b"),
        "public.ev2": ("archive.ev2a", "public.ev2b"),
        "public.empty": (),
    }
