"""Thresholds for the finding rules, and the signature every rule has."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from app.engine.model import Recommendation, Snapshot

__all__ = ["Rule", "RuleConfig"]


@dataclass(frozen=True, slots=True)
class RuleConfig:
    """Thresholds for the finding rules; the defaults are what an audit uses unless told."""

    #: Shortest observation window (days since the statistics were reset) before an index
    #: with no scans counts as unused. Azure's index tuning waits 35 days; 14 covers two
    #: weekly cycles, and monthly jobs are why a repository may want 35.
    unused_min_days: int = 14
    #: Unused indexes smaller than this are not reported: 256 kB, about a 10k-row table's
    #: bigint index (pganalyze ignores < 32 kB). Below it the table is usually small enough
    #: that 0 scans says little (the planner may prefer a sequential scan), and the saving is
    #: negligible. Not 1 MiB: B-tree deduplication (PG 13+) makes a low-cardinality index
    #: (status, flags; the classic unused index) ~7 bytes per row, so a 1 MiB floor would
    #: hide one on a 100k-row table.
    unused_min_size_bytes: int = 256 * 1024
    #: Report unused indexes when the statistics were never reset (window unknown). Off:
    #: counters that may be minutes old must not drive a DROP.
    unused_unknown_window: bool = False
    #: Foreign keys on referencing tables with fewer rows than this are not reported.
    fk_min_rows: int = 1000
    #: Rule ids to skip (the repository config's ``ignore.rules``).
    skip: frozenset[str] = frozenset()


class Rule(Protocol):
    """A finding rule: a pure function from a snapshot to recommendations."""

    __name__: str

    def __call__(
        self, snapshot: Snapshot, /, *, now: datetime, config: RuleConfig
    ) -> Iterator[Recommendation]:
        """Recommendations for ``snapshot``, in a deterministic order."""
        ...
