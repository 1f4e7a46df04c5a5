"""Slow statements remembered per target in our store, between the minute samples and audits."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import LiteralString

from app.adapters.store import Store
from app.engine.advisor.sightings import Running
from app.engine.model import Query, QuerySource

__all__ = ["KEEP_S", "SlowStatements"]

#: Sightings older than a week are forgotten.
KEEP_S = 7 * 24 * 3600.0
#: An audit adds at most this many remembered statements, heaviest first.
MAX_PER_AUDIT = 100

Q_RECORD: LiteralString = (
    "INSERT INTO slow_statements (target, fingerprint, query, pid, started, running_ms) "
    "VALUES (%s, %s, %s, %s, %s::timestamptz, %s) "
    "ON CONFLICT ON CONSTRAINT slow_statements_execution_key DO UPDATE SET "
    "running_ms = greatest(slow_statements.running_ms, excluded.running_ms), seen_at = now()"
)
# One row per statement: its executions, and the sum of their lower bounds.
Q_RECENT: LiteralString = (
    "SELECT min(query), count(*), sum(running_ms)::float8 FROM slow_statements "
    "WHERE target = %(target)s AND seen_at > now() - make_interval(secs => %(age)s) "
    "GROUP BY fingerprint ORDER BY sum(running_ms) DESC, fingerprint LIMIT %(limit)s"
)
Q_PRUNE: LiteralString = (
    "DELETE FROM slow_statements WHERE seen_at < now() - make_interval(secs => %s)"
)


def fingerprint(text: str) -> str:
    """The statement's key in the store: sha256 of its normalised text."""
    return hashlib.sha256(text.encode()).hexdigest()


class SlowStatements:
    """The ``slow_statements`` table (texts are normalised before they get here)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def record(self, target: str, rows: Sequence[Running]) -> int:
        """Remember executions seen running (each once, with the longest time seen)."""
        if not rows:
            return 0
        params = [
            (target, fingerprint(r.text), r.text, r.pid, r.started, r.running_ms) for r in rows
        ]
        async with self._store.pool.connection() as conn, conn.cursor() as cur:
            await cur.executemany(Q_RECORD, params)
        return len(rows)

    async def recent(
        self, target: str, *, max_age_s: float = KEEP_S, limit: int = MAX_PER_AUDIT
    ) -> tuple[Query, ...]:
        """The target's statements seen within ``max_age_s``, as workload entries."""
        async with self._store.pool.connection() as conn:
            cur = await conn.execute(
                Q_RECENT, {"target": target, "age": float(max_age_s), "limit": int(limit)}
            )
            rows = await cur.fetchall()
        return tuple(
            Query(text=str(q), calls=int(n), total_ms=float(ms), source=QuerySource.activity)
            for q, n, ms in rows
        )

    async def prune(self, older_than_s: float = KEEP_S) -> int:
        """Forget sightings older than ``older_than_s``; how many."""
        async with self._store.pool.connection() as conn:
            cur = await conn.execute(Q_PRUNE, (float(older_than_s),))
            return cur.rowcount
