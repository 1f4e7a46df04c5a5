"""A target session: the gate plus what it reads through it (catalog snapshot, workload)."""

from __future__ import annotations

from datetime import datetime

from app.adapters.target_pg.activity import read_activity, statement_timeout_ms
from app.adapters.target_pg.gate import Session
from app.adapters.target_pg.snapshot import read_snapshot
from app.adapters.target_pg.workload import read_workload, stat_statements_reset_time
from app.engine.advisor.sightings import Running
from app.engine.model import Query, Snapshot


class Target(Session):
    """A session on the target database. Not thread-safe: one caller at a time."""

    def snapshot(self) -> Snapshot:
        """Catalog, statistics and activity counters of the current database, in five queries."""
        return read_snapshot(self)

    def workload(
        self, *, min_calls: int = 1, min_total_ms: float = 0.0, limit: int = 1000
    ) -> list[Query]:
        """Top statements of this database by total execution time, from pg_stat_statements.

        Excludes our own tagged statements, utility statements and catalog-only housekeeping.
        """
        return read_workload(self, min_calls=min_calls, min_total_ms=min_total_ms, limit=limit)

    def activity(self, *, min_ms: float) -> list[Running]:
        """Statements of other sessions of this database running for at least ``min_ms``."""
        return read_activity(self, min_ms=min_ms)

    def statement_timeout_ms(self) -> float:
        """The configured ``statement_timeout`` (ms) a new session of our role gets; 0: none."""
        return statement_timeout_ms(self)

    def stat_statements_reset_time(self) -> datetime | None:
        """When pg_stat_statements was last reset (PostgreSQL 14+, extension 1.9+), else None."""
        return stat_statements_reset_time(self)


#: Open a read-only, time-limited :class:`Target` session; see :meth:`Session.open`.
connect = Target.open
