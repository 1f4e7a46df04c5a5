"""What the store remembers, read for people: audits, recommendations, feedback, speed-ups.

The admin API and the dashboard read through here. Lists are keyset-paginated (``before`` an
id) and bounded, so a store with years of audits answers as fast as a new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, LiteralString

from app.adapters.store import Store

__all__ = [
    "MAX_LIMIT",
    "AuditDetail",
    "AuditSummary",
    "FeedbackItem",
    "History",
    "IgnoreRow",
    "Learned",
    "RecommendationRow",
    "Speedup",
]

MAX_LIMIT = 500
#: Reviewer text shown in lists is cut to this many characters.
BODY_CHARS = 500

_AUDIT_COLUMNS: LiteralString = (
    "a.id, a.repository, a.trigger, a.requested_by, a.status, a.dry_run, a.created_at, "
    "a.started_at, a.finished_at, "
    "extract(epoch FROM a.finished_at - a.started_at)::float8, "
    "a.summary->>'title', a.summary->>'conclusion', "
    "coalesce(jsonb_array_length(a.report->'recommendations'), 0)"
)
Q_AUDITS: LiteralString = (
    f"SELECT {_AUDIT_COLUMNS} FROM audits a "
    "WHERE (%(before)s::bigint IS NULL OR a.id < %(before)s) "
    "AND (%(repository)s::text IS NULL OR a.repository = %(repository)s) "
    "ORDER BY a.id DESC LIMIT %(limit)s"
)
Q_AUDIT: LiteralString = (
    f"SELECT {_AUDIT_COLUMNS}, a.summary, a.report FROM audits a WHERE a.id = %s"
)
Q_RECOMMENDATIONS: LiteralString = (
    "SELECT id, repository, fingerprint, rec_id, action, table_name, state, confidence, "
    "breakdown, pr_number, descriptor, first_seen, updated_at FROM recommendations "
    "WHERE (%(repository)s::text IS NULL OR repository = %(repository)s) "
    "AND (%(state)s::text IS NULL OR state = %(state)s) "
    "AND (%(before)s::bigint IS NULL OR id < %(before)s) "
    "ORDER BY id DESC LIMIT %(limit)s"
)
Q_FEEDBACK: LiteralString = (
    "SELECT id, repository, fingerprint, source, author, classification, reason, "
    "left(body, %(chars)s), table_name, action, created_at, embedding IS NOT NULL "
    "FROM feedback WHERE (%(repository)s::text IS NULL OR repository = %(repository)s) "
    "AND (%(before)s::bigint IS NULL OR id < %(before)s) "
    "ORDER BY id DESC LIMIT %(limit)s"
)
# Measured reads only (writes pay for an index; they are not its speed-up), summed per
# recommendation over the statements measured on both sides, from the latest audits' reports.
Q_SPEEDUPS: LiteralString = """
WITH recent AS (
    SELECT id, repository, finished_at, report FROM audits
    WHERE report IS NOT NULL AND (%(repository)s::text IS NULL OR repository = %(repository)s)
    ORDER BY id DESC LIMIT %(audits)s
)
SELECT a.id, a.repository, a.finished_at, r->>'id', r->>'action', r->>'table',
       (r->>'confidence')::float8, m.before_ms, m.after_ms
FROM recent a
CROSS JOIN LATERAL jsonb_array_elements(a.report->'recommendations') AS r
CROSS JOIN LATERAL (
    SELECT sum((q->'before'->>'ms_p50')::float8) AS before_ms,
           sum((q->'after'->>'ms_p50')::float8) AS after_ms
    FROM jsonb_array_elements(r->'queries') AS q
    WHERE NOT coalesce((q->>'write')::boolean, false)
      AND q->'before'->>'ms_p50' IS NOT NULL AND q->'after'->>'ms_p50' IS NOT NULL
) AS m
WHERE m.before_ms IS NOT NULL AND m.after_ms > 0
ORDER BY a.id DESC, m.before_ms / m.after_ms DESC
LIMIT %(limit)s
"""
Q_LEARNED: LiteralString = """
SELECT classification, count(*), count(*) FILTER (WHERE embedding IS NOT NULL),
       (array_agg(reason ORDER BY id DESC) FILTER (WHERE reason IS NOT NULL))[1:3]
FROM feedback
WHERE classification IS NOT NULL AND (%(repository)s::text IS NULL OR repository = %(repository)s)
GROUP BY classification ORDER BY count(*) DESC
"""
Q_IGNORES: LiteralString = (
    "SELECT repository, kind, value, author, created_at FROM ignores "
    "WHERE (%(repository)s::text IS NULL OR repository = %(repository)s) "
    "ORDER BY created_at DESC LIMIT %(limit)s"
)


@dataclass(frozen=True, slots=True)
class AuditSummary:
    """One audit as a list shows it."""

    id: int
    repository: str
    trigger: str
    requested_by: str | None
    status: str
    dry_run: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None
    title: str | None
    conclusion: str | None
    recommendations: int


@dataclass(frozen=True, slots=True)
class AuditDetail:
    """One audit with its summary (results per recommendation) and its JSON report."""

    audit: AuditSummary
    summary: dict[str, Any]
    report: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class RecommendationRow:
    """A recommendation in the ledger: where it stands, how confident, which PR."""

    id: int
    repository: str
    fingerprint: str
    rec_id: str
    action: str
    table_name: str
    state: str
    confidence: float | None
    breakdown: dict[str, float]
    pr_number: int | None
    descriptor: str | None
    first_seen: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class FeedbackItem:
    """What a reviewer said, as memory keeps it (the text cut for lists)."""

    id: int
    repository: str
    fingerprint: str | None
    source: str
    author: str | None
    classification: str | None
    reason: str | None
    body: str | None
    table_name: str | None
    action: str | None
    created_at: datetime
    embedded: bool


@dataclass(frozen=True, slots=True)
class Speedup:
    """A recommendation's measured read time before and after, from one audit's report."""

    audit_id: int
    repository: str
    finished_at: datetime | None
    rec_id: str
    action: str
    table: str
    confidence: float | None
    before_ms: float
    after_ms: float

    @property
    def ratio(self) -> float:
        """How many times faster the measured reads got."""
        return self.before_ms / self.after_ms


@dataclass(frozen=True, slots=True)
class Learned:
    """Memory by verdict: how many, how many searchable, the latest reasons."""

    classification: str
    count: int
    embedded: int
    recent_reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class IgnoreRow:
    """An explicit ``@db-architect ignore``."""

    repository: str
    kind: str
    value: str
    author: str | None
    created_at: datetime


def _limit(limit: int) -> int:
    return max(1, min(MAX_LIMIT, limit))


def _summary(row: tuple[Any, ...]) -> AuditSummary:
    return AuditSummary(*row[:13])


def _recommendation(row: tuple[Any, ...]) -> RecommendationRow:
    id_, repository, fp, rec_id, action, table, state, confidence, breakdown, *rest = row
    pr_number, descriptor, first_seen, updated_at = rest
    return RecommendationRow(
        id=id_,
        repository=repository,
        fingerprint=fp,
        rec_id=rec_id,
        action=action,
        table_name=table,
        state=state,
        confidence=confidence,
        breakdown={str(k): float(v) for k, v in (breakdown or {}).items()},
        pr_number=pr_number,
        descriptor=descriptor,
        first_seen=first_seen,
        updated_at=updated_at,
    )


class History:
    """Read-only views over the :class:`Store`'s pool (raises ``psycopg.Error`` like it)."""

    def __init__(self, store: Store) -> None:
        self.pool = store.pool

    async def _rows(self, query: LiteralString, params: Any) -> list[tuple[Any, ...]]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchall()

    async def audits(
        self, *, limit: int = 50, before: int | None = None, repository: str | None = None
    ) -> list[AuditSummary]:
        """Audits newest first; ``before`` (an id) pages on."""
        params = {"before": before, "repository": repository, "limit": _limit(limit)}
        return [_summary(row) for row in await self._rows(Q_AUDITS, params)]

    async def audit(self, audit_id: int) -> AuditDetail | None:
        """One audit with its summary and report, or None."""
        rows = await self._rows(Q_AUDIT, (audit_id,))
        if not rows:
            return None
        row = rows[0]
        return AuditDetail(_summary(row), dict(row[13] or {}), row[14])

    async def recommendations(
        self,
        *,
        repository: str | None = None,
        state: str | None = None,
        limit: int = 200,
        before: int | None = None,
    ) -> list[RecommendationRow]:
        """The ledger, most recently recorded first."""
        params = {"repository": repository, "state": state, "limit": _limit(limit)}
        rows = await self._rows(Q_RECOMMENDATIONS, params | {"before": before})
        return [_recommendation(row) for row in rows]

    async def feedback(
        self, *, repository: str | None = None, limit: int = 100, before: int | None = None
    ) -> list[FeedbackItem]:
        """Feedback newest first, bodies cut to :data:`BODY_CHARS`."""
        params = {"repository": repository, "limit": _limit(limit), "before": before}
        rows = await self._rows(Q_FEEDBACK, params | {"chars": BODY_CHARS})
        return [FeedbackItem(*row) for row in rows]

    async def speedups(
        self, *, repository: str | None = None, audits: int = 20, limit: int = 100
    ) -> list[Speedup]:
        """Measured speed-ups of the recommendations in the latest ``audits`` reports."""
        params = {"repository": repository, "audits": _limit(audits), "limit": _limit(limit)}
        return [Speedup(*row) for row in await self._rows(Q_SPEEDUPS, params)]

    async def learned(self, *, repository: str | None = None) -> list[Learned]:
        """What memory holds, by verdict."""
        rows = await self._rows(Q_LEARNED, {"repository": repository})
        return [Learned(str(c), int(n), int(e), tuple(r or ())) for c, n, e, r in rows]

    async def ignores(self, *, repository: str | None = None, limit: int = 200) -> list[IgnoreRow]:
        """Explicit ignores, newest first."""
        params = {"repository": repository, "limit": _limit(limit)}
        return [IgnoreRow(*row) for row in await self._rows(Q_IGNORES, params)]
