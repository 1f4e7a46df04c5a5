"""Indexes no query has scanned over a long enough observation window: drop candidates."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from app.engine.advisor.rules.common import (
    attached_parent,
    covers_foreign_key,
    drop_recommendation,
    format_bytes,
    usage,
)

if TYPE_CHECKING:
    from app.engine.advisor.rules.config import RuleConfig
    from app.engine.model import Index, Recommendation, Snapshot

__all__ = ["RULE_ID", "unused_index"]

RULE_ID = "unused_index"

REPLICA_NOTE = (
    "scans on standby servers are not counted here: check pg_stat_user_indexes on every "
    "replica that serves reads before merging"
)


def unused_index(
    snapshot: Snapshot, /, *, now: datetime, config: RuleConfig
) -> Iterator[Recommendation]:
    """Propose dropping indexes with no scans since the statistics were last reset.

    The window runs from ``snapshot.stats_reset`` to when the counters were read
    (``snapshot.taken_at``, capped at ``now`` in case the target's clock runs ahead). It
    must last at least ``config.unused_min_days``. When the statistics were never reset
    the window is unknown, and nothing is reported unless ``config.unused_unknown_window``
    says so (then the reasons say the window is unknown and ``extra["window_known"]`` is 0).

    Never proposed: primary-key, unique or constraint-backed indexes (their job is not
    reads), invalid ones (``invalid_index`` handles them), indexes below
    ``config.unused_min_size_bytes``, indexes on a partition that belong to the parent's
    index (which counts its partitions' scans and sizes), and the only index that serves a
    foreign key's checks (dropping it would make ``fk_without_index`` fire). Expression and
    partial indexes are reported like any other.

    Args:
        snapshot: the target's catalog and counters.
        now: the current time (timezone-aware, like the snapshot's times).
        config: thresholds.

    Returns:
        ``drop_index`` recommendations ordered by table, then index name.
    """
    if snapshot.stats_reset is None:
        if not config.unused_unknown_window:
            return
        window: timedelta | None = None
    else:
        window = min(now, snapshot.taken_at) - snapshot.stats_reset
        if window < timedelta(days=config.unused_min_days):
            return
    for index in sorted(snapshot.indexes, key=lambda i: (i.table, i.name)):
        if not _droppable(snapshot, index, config):
            continue
        yield drop_recommendation(
            snapshot,
            index,
            rule=RULE_ID,
            reasons=_reasons(snapshot, index, window),
            extra=_evidence(window),
        )


def _droppable(snapshot: Snapshot, index: Index, config: RuleConfig) -> bool:
    if index.primary or index.unique or index.constraint or not index.valid:
        return False
    scans, size = usage(snapshot, index)
    if scans or size < config.unused_min_size_bytes:
        return False
    return attached_parent(snapshot, index) is None and not _only_fk_cover(snapshot, index)


def _only_fk_cover(snapshot: Snapshot, index: Index) -> bool:
    """The index is the one index that serves some foreign key's checks."""
    others = [i for i in snapshot.indexes_on(index.table) if i.name != index.name]
    return any(
        covers_foreign_key(index, fk) and not any(covers_foreign_key(o, fk) for o in others)
        for fk in snapshot.foreign_keys
        if fk.table == index.table
    )


def _reasons(snapshot: Snapshot, index: Index, window: timedelta | None) -> tuple[str, ...]:
    size = format_bytes(usage(snapshot, index)[1])
    if window is None or snapshot.stats_reset is None:
        first = (
            f"{index.name} ({size}) has 0 scans, but the statistics were never reset, so how "
            "long they cover is unknown"
        )
    else:
        first = (
            f"{index.name} ({size}) has had 0 scans since "
            f"{snapshot.stats_reset:%Y-%m-%d} ({window.days} days)"
        )
    reasons = [first]
    table = snapshot.table(index.table)
    if table is not None:
        writes = table.n_tup_ins + table.n_tup_upd - table.n_tup_hot_upd
        if writes > 0:
            each = "each of which" if index.where is None else "each matching row of which"
            reasons.append(
                f"{index.table} took {writes} row inserts and non-HOT updates in the same "
                f"period, {each} had to add an entry to this index"
            )
    reasons.append(REPLICA_NOTE)
    return tuple(reasons)


def _evidence(window: timedelta | None) -> dict[str, float]:
    evidence = {"scans": 0.0, "window_known": float(window is not None)}
    if window is not None:
        evidence["window_days"] = window.total_seconds() / 86400
    return evidence
