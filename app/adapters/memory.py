"""Reviewer memory in the store: recommendations, feedback with embeddings, explicit ignores.

The tables come from migration 0002. Embeddings travel through pgvector's psycopg adapter
(registered once per pooled connection). Like :class:`~app.adapters.store.Store`, methods
raise ``psycopg.Error`` when the store cannot be reached or a statement fails.
"""
# Long module: one store table family (recommendations, feedback, ignores) and its SQL.

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, LiteralString

import structlog
from pgvector import Vector
from pgvector.psycopg import register_vector_async
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from app.adapters.store import Store

__all__ = [
    "CLASSIFICATIONS",
    "COPY_THRESHOLD",
    "DEFAULT_SAME_REPO_WEIGHT",
    "FEEDBACK_SOURCES",
    "IGNORE_KINDS",
    "RECOMMENDATION_STATES",
    "FeedbackRow",
    "LedgerEntry",
    "Memory",
    "Neighbour",
    "StoredFeedback",
    "StoredRecommendation",
    "Unembedded",
]

log = structlog.get_logger(__name__)

RECOMMENDATION_STATES = frozenset({"proposed", "pr_open", "merged", "ignored", "superseded"})
FEEDBACK_SOURCES = frozenset({"review", "review_comment", "comment", "merge", "close", "command"})
CLASSIFICATIONS = frozenset({"accept", "reject", "concern", "question"})
IGNORE_KINDS = frozenset({"fingerprint", "table"})
#: ``add_feedback`` switches from pipelined executemany to COPY at this many rows.
COPY_THRESHOLD = 50
#: A same-repository neighbour counts as if its cosine distance were this many times smaller.
DEFAULT_SAME_REPO_WEIGHT = 1.25
#: How many candidates the index returns per wanted neighbour, before re-ranking.
OVERFETCH = 4
#: pgvector's default ``hnsw.ef_search``: an HNSW scan returns at most this many rows.
EF_SEARCH_DEFAULT = 40

_FEEDBACK_COLUMNS: LiteralString = (
    "repository, recommendation_id, fingerprint, source, source_id, author, body, "
    "classification, reason, table_name, action, embedding"
)
Q_UPSERT_RECOMMENDATION: LiteralString = (
    "INSERT INTO recommendations (repository, fingerprint, rec_id, action, table_name, state, "
    "confidence, breakdown, pr_number, descriptor) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (repository, fingerprint) DO UPDATE SET rec_id = EXCLUDED.rec_id, "
    "action = EXCLUDED.action, table_name = EXCLUDED.table_name, "
    # A decision (merged, ignored) is not undone by an audit that only sees a proposal.
    "state = CASE WHEN EXCLUDED.state = 'proposed' "
    "AND recommendations.state IN ('merged', 'ignored') "
    "THEN recommendations.state ELSE EXCLUDED.state END, "
    "confidence = EXCLUDED.confidence, breakdown = EXCLUDED.breakdown, "
    "pr_number = coalesce(EXCLUDED.pr_number, recommendations.pr_number), "
    "descriptor = coalesce(EXCLUDED.descriptor, recommendations.descriptor), updated_at = now() "
    "RETURNING id"
)
Q_SET_STATE: LiteralString = (
    "UPDATE recommendations SET state = %s, pr_number = coalesce(%s, pr_number), "
    "updated_at = now() WHERE repository = %s AND fingerprint = %s"
)
# A retried job sends the same review again: its (repository, source, source_id) is taken.
Q_INSERT_FEEDBACK: LiteralString = (
    f"INSERT INTO feedback ({_FEEDBACK_COLUMNS}) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id"
)
# COPY cannot return ids: take them from the identity's sequence first, then COPY them in.
Q_RESERVE_IDS: LiteralString = (
    "SELECT nextval(pg_get_serial_sequence('feedback', 'id')) FROM generate_series(1, %s)"
)
Q_COPY_FEEDBACK: LiteralString = f"COPY feedback (id, {_FEEDBACK_COLUMNS}) FROM STDIN"
Q_EF_SEARCH: LiteralString = "SELECT set_config('hnsw.ef_search', %s, true)"
# ORDER BY the bare distance expression, so the planner can use the HNSW index.
# Only the same account's feedback (``owner/…``): one organisation's reviewers never inform
# (or are quoted to) another's. A LIKE prefix, not split_part(): the planner estimates it from
# the column's statistics and keeps the HNSW index (it guessed 0.5 % for the function and
# chose a sequential scan). pgvector 0.8+ keeps scanning the index until enough rows pass the
# filter (iterative scan); older versions ignore the setting.
Q_NEAREST: LiteralString = (
    "SELECT id, repository, recommendation_id, fingerprint, source, author, body, "
    "classification, reason, table_name, action, created_at, embedding <=> %(v)s "
    "FROM feedback WHERE embedding IS NOT NULL AND repository LIKE %(account)s "
    "ORDER BY embedding <=> %(v)s LIMIT %(limit)s"
)
Q_ITERATIVE_SCAN: LiteralString = "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true)"
Q_RECOMMENDATION: LiteralString = (
    "SELECT id, rec_id, action, table_name, state, confidence, breakdown, pr_number, descriptor "
    "FROM recommendations WHERE repository = %s AND fingerprint = %s"
)
Q_FEEDBACK_ON: LiteralString = (
    "SELECT source, author, classification, reason, body, created_at FROM feedback "
    "WHERE repository = %s AND fingerprint = %s ORDER BY created_at DESC, id DESC LIMIT %s"
)
Q_UNEMBEDDED: LiteralString = (
    "SELECT f.id, coalesce(r.descriptor, f.table_name, ''), f.classification, "
    "coalesce(f.body, f.reason, '') FROM feedback f "
    "LEFT JOIN recommendations r ON r.id = f.recommendation_id "
    "WHERE f.embedding IS NULL AND f.classification IS NOT NULL AND f.repository LIKE %s "
    "ORDER BY f.id LIMIT %s"
)
Q_SET_EMBEDDING: LiteralString = "UPDATE feedback SET embedding = %s WHERE id = %s"
Q_HAS_FEEDBACK: LiteralString = (
    "SELECT EXISTS (SELECT 1 FROM feedback WHERE repository = %s AND source = %s "
    "AND source_id = %s)"
)
Q_ADD_IGNORE: LiteralString = (
    "INSERT INTO ignores (repository, kind, value, author) VALUES (%s, %s, %s, %s) "
    "ON CONFLICT (repository, kind, value) DO NOTHING"
)
Q_IGNORES: LiteralString = (
    "SELECT kind, value FROM ignores WHERE repository = %s ORDER BY kind, value"
)


@dataclass(frozen=True, slots=True)
class FeedbackRow:
    """One piece of feedback to store (``add_feedback``); ``embedding`` is 384-d or None."""

    repository: str
    source: str
    recommendation_id: int | None = None
    fingerprint: str | None = None
    #: The review, comment or pull request it came from (``review:123``): stored once.
    source_id: str | None = None
    author: str | None = None
    body: str | None = None
    classification: str | None = None
    reason: str | None = None
    table_name: str | None = None
    action: str | None = None
    embedding: Sequence[float] | None = None

    def row(self) -> tuple[Any, ...]:
        """The values in ``_FEEDBACK_COLUMNS`` order (the embedding as a pgvector value)."""
        return (
            self.repository,
            self.recommendation_id,
            self.fingerprint,
            self.source,
            self.source_id,
            self.author,
            self.body,
            self.classification,
            self.reason,
            self.table_name,
            self.action,
            None if self.embedding is None else Vector(list(self.embedding)),
        )


@dataclass(frozen=True, slots=True)
class Neighbour:
    """Stored feedback close to a query vector, with how close and how it ranked."""

    id: int
    repository: str
    recommendation_id: int | None
    fingerprint: str | None
    source: str
    author: str | None
    body: str | None
    classification: str | None
    reason: str | None
    table_name: str | None
    action: str | None
    created_at: datetime
    similarity: float
    """Cosine similarity, ``1 - cosine distance`` (1 = same direction)."""
    score: float
    """What the ranking used: the similarity, with a same-repository distance shrunk."""


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One recommendation as an audit records it in the ledger (the row it upserts)."""

    repository: str
    fingerprint: str
    rec_id: str
    action: str
    table_name: str
    #: One of :data:`RECOMMENDATION_STATES`.
    state: str
    confidence: float | None
    breakdown: Mapping[str, Any] | None
    pr_number: int | None
    descriptor: str | None = None


@dataclass(frozen=True, slots=True)
class StoredRecommendation:
    """A recommendation as the store remembers it (for feedback and ``explain``)."""

    id: int
    rec_id: str
    action: str
    table_name: str
    state: str
    confidence: float | None
    breakdown: Mapping[str, float]
    pr_number: int | None
    descriptor: str | None


@dataclass(frozen=True, slots=True)
class Unembedded:
    """A feedback row still without a vector, and what to embed for it."""

    id: int
    descriptor: str
    classification: str
    text: str


@dataclass(frozen=True, slots=True)
class StoredFeedback:
    """One piece of feedback on a recommendation, newest first in ``feedback_on``."""

    source: str
    author: str | None
    classification: str | None
    reason: str | None
    body: str | None
    created_at: datetime


class Memory:
    """Recommendations, feedback and ignores, over the :class:`Store`'s pool."""

    def __init__(self, store: Store) -> None:
        self.pool = store.pool

    # ------------------------------------------------------------------ recommendations

    async def upsert_recommendation(self, entry: LedgerEntry) -> int:
        """Record a recommendation, or refresh the one with this fingerprint; returns its id.

        A known PR number (and descriptor) is kept when the new one is None.
        """
        _check(entry.state, RECOMMENDATION_STATES, "state")
        breakdown = entry.breakdown
        params = (
            entry.repository,
            entry.fingerprint,
            entry.rec_id,
            entry.action,
            entry.table_name,
            entry.state,
            entry.confidence,
            None if breakdown is None else Jsonb(dict(breakdown)),
            entry.pr_number,
            entry.descriptor,
        )
        async with self.pool.connection() as conn:
            cur = await conn.execute(Q_UPSERT_RECOMMENDATION, params)
            row = await cur.fetchone()
        if row is None:  # pragma: no cover - INSERT … RETURNING always returns the row
            raise RuntimeError("INSERT INTO recommendations returned no id")
        return int(row[0])

    async def recommendation(
        self, repository: str, fingerprint: str
    ) -> StoredRecommendation | None:
        """The stored recommendation with this fingerprint, or None."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(Q_RECOMMENDATION, (repository, fingerprint))
            row = await cur.fetchone()
        if row is None:
            return None
        id_, rec_id, action, table, state, confidence, breakdown, pr_number, descriptor = row
        return StoredRecommendation(
            id=int(id_),
            rec_id=str(rec_id),
            action=str(action),
            table_name=str(table),
            state=str(state),
            confidence=None if confidence is None else float(confidence),
            breakdown={str(k): float(v) for k, v in (breakdown or {}).items()},
            pr_number=pr_number,
            descriptor=descriptor,
        )

    async def set_state(
        self, repository: str, fingerprint: str, state: str, pr_number: int | None = None
    ) -> bool:
        """Move a recommendation to ``state`` (and PR); False when there is no such one."""
        _check(state, RECOMMENDATION_STATES, "state")
        async with self.pool.connection() as conn:
            cur = await conn.execute(Q_SET_STATE, (state, pr_number, repository, fingerprint))
            return cur.rowcount == 1

    # ------------------------------------------------------------------ feedback

    async def add_feedback(self, rows: Sequence[FeedbackRow]) -> list[int]:
        """Store feedback rows in one transaction; returns the new rows' ids in order.

        A row whose ``source_id`` is already stored for its repository and source is skipped
        (its id is not returned), so a retried job adds nothing. Many rows
        (``COPY_THRESHOLD`` or more, for bulk loads of new rows: COPY has no ON CONFLICT) go
        through COPY, fewer through pipelined executemany: COPY wins on bulk loads, and a few
        rows do not pay for its set-up.
        """
        for feedback in rows:
            _check(feedback.source, FEEDBACK_SOURCES, "source")
            if feedback.classification is not None:
                _check(feedback.classification, CLASSIFICATIONS, "classification")
        if not rows:
            return []
        async with self.pool.connection() as conn:
            await _vectors(conn)
            async with conn.transaction():
                if len(rows) >= COPY_THRESHOLD:
                    ids = await _copy_feedback(conn, rows)
                else:
                    ids = await _insert_feedback(conn, rows)
        log.info("memory.feedback_added", rows=len(ids))
        return ids

    async def nearest_feedback(
        self,
        embedding: Sequence[float],
        *,
        repository: str,
        k: int = 5,
        same_repo_weight: float = DEFAULT_SAME_REPO_WEIGHT,
    ) -> list[Neighbour]:
        """The ``k`` stored feedback rows of ``repository``'s account nearest to ``embedding``.

        The HNSW index returns ``k × OVERFETCH`` candidates by cosine distance; they are
        re-ranked with feedback from ``repository`` counted as closer: its distance is
        divided by ``same_repo_weight`` (≥ 1), so at equal similarity it comes first.
        """
        if k < 1:
            return []
        if same_repo_weight < 1:
            raise ValueError(f"same_repo_weight must be at least 1, not {same_repo_weight}")
        limit = k * OVERFETCH
        params = {"v": Vector(list(embedding)), "limit": limit, "account": _account(repository)}
        async with self.pool.connection() as conn:
            await _vectors(conn)
            async with conn.transaction():
                await conn.execute(Q_ITERATIVE_SCAN)
                if limit > EF_SEARCH_DEFAULT:  # else the index would stop short of `limit`
                    await conn.execute(Q_EF_SEARCH, (str(limit),))
                cur = await conn.execute(Q_NEAREST, params)
                rows = await cur.fetchall()
        found = [_neighbour(row, repository, same_repo_weight) for row in rows]
        found.sort(key=lambda n: (-n.score, -n.similarity, n.id))
        return found[:k]

    async def feedback_on(
        self, repository: str, fingerprint: str, limit: int = 10
    ) -> list[StoredFeedback]:
        """What reviewers said about one recommendation, newest first."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(Q_FEEDBACK_ON, (repository, fingerprint, limit))
            rows = await cur.fetchall()
        return [StoredFeedback(*row) for row in rows]

    async def has_feedback(self, repository: str, source: str, source_id: str) -> bool:
        """Whether this review or comment is stored already (a retried or redelivered job)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(Q_HAS_FEEDBACK, (repository, source, source_id))
            row = await cur.fetchone()
        return bool(row and row[0])

    async def unembedded(self, repository: str, limit: int = 100) -> list[Unembedded]:
        """Feedback of ``repository``'s account stored without a vector (no model then)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(Q_UNEMBEDDED, (_account(repository), limit))
            rows = await cur.fetchall()
        return [Unembedded(int(i), str(d), str(c), str(t)) for i, d, c, t in rows]

    async def set_embeddings(self, vectors: Mapping[int, Sequence[float]]) -> None:
        """Store the vectors of feedback rows by id, in one transaction."""
        if not vectors:
            return
        params = [(Vector(list(v)), feedback_id) for feedback_id, v in vectors.items()]
        async with self.pool.connection() as conn:
            await _vectors(conn)
            async with conn.transaction(), conn.cursor() as cur:
                await cur.executemany(Q_SET_EMBEDDING, params)

    # ------------------------------------------------------------------ ignores

    async def add_ignore(self, repository: str, kind: str, value: str, author: str | None) -> None:
        """Never propose ``value`` (a fingerprint or a table) again here; idempotent."""
        _check(kind, IGNORE_KINDS, "kind")
        async with self.pool.connection() as conn:
            await conn.execute(Q_ADD_IGNORE, (repository, kind, value, author))

    async def ignores(self, repository: str) -> list[tuple[str, str]]:
        """The repository's ignores as ``(kind, value)``, sorted."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(Q_IGNORES, (repository,))
            return [(str(kind), str(value)) for kind, value in await cur.fetchall()]


def _account(repository: str) -> str:
    """The LIKE pattern of ``repository``'s account: ``acme/%`` (wildcards escaped)."""
    owner = repository.split("/", 1)[0]
    escaped = owner.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}/%"


def _check(value: str, allowed: frozenset[str], what: str) -> None:
    """Fail before the round trip (the table's CHECK would too, less readably)."""
    if value not in allowed:
        raise ValueError(f"{what} must be one of {sorted(allowed)}, not {value!r}")


async def _vectors(conn: AsyncConnection[TupleRow]) -> None:
    """Teach this connection the ``vector`` type, once (pooled connections keep it)."""
    if conn.adapters.types.get("vector") is None:
        await register_vector_async(conn)


async def _insert_feedback(
    conn: AsyncConnection[TupleRow], rows: Sequence[FeedbackRow]
) -> list[int]:
    """Pipelined executemany with RETURNING: one result set per row."""
    ids: list[int] = []
    async with conn.cursor() as cur:
        await cur.executemany(Q_INSERT_FEEDBACK, [f.row() for f in rows], returning=True)
        while True:
            row = await cur.fetchone()
            if row is not None:
                ids.append(int(row[0]))
            if not cur.nextset():
                break
    return ids


async def _copy_feedback(conn: AsyncConnection[TupleRow], rows: Sequence[FeedbackRow]) -> list[int]:
    """Reserve ids from the identity sequence, then COPY the rows with them."""
    cur = await conn.execute(Q_RESERVE_IDS, (len(rows),))
    ids = [int(row[0]) for row in await cur.fetchall()]
    async with conn.cursor() as copy_cur, copy_cur.copy(Q_COPY_FEEDBACK) as copy:
        for feedback_id, feedback in zip(ids, rows, strict=True):
            await copy.write_row((feedback_id, *feedback.row()))
    return ids


def _neighbour(row: Sequence[Any], repository: str, same_repo_weight: float) -> Neighbour:
    """A Neighbour from a ``Q_NEAREST`` row; the score shrinks a same-repo distance."""
    (
        id_,
        repo,
        rec_id,
        fingerprint,
        source,
        author,
        body,
        classification,
        reason,
        table,
        action,
        created_at,
        raw_distance,
    ) = row
    distance = float(raw_distance)
    weight = same_repo_weight if repo == repository else 1.0
    return Neighbour(
        id=id_,
        repository=repo,
        recommendation_id=rec_id,
        fingerprint=fingerprint,
        source=source,
        author=author,
        body=body,
        classification=classification,
        reason=reason,
        table_name=table,
        action=action,
        created_at=created_at,
        similarity=1.0 - distance,
        score=1.0 - distance / weight,
    )
