"""Our store database: the webhook inbox, installations, their repositories and schedules, audits.

The store is DB Architect's own PostgreSQL database, never an audited target. Its schema is
created only by the Alembic migrations: the helpers (``upgrade_store``, ``start_local_store``,
…) live in ``app.adapters.store_schema`` and are re-exported here. Methods raise
``psycopg.Error`` when the store cannot be reached or a statement fails
(``psycopg_pool.PoolTimeout``, a subclass, when no connection frees up in time).
"""
# Long module: the inbox and its leases are one transaction protocol; SQL text is most of it.

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, LiteralString, NamedTuple, Self

import msgspec
import structlog
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from app.adapters.store_schema import (
    downgrade_store,
    local_store,
    prepare_local_store,
    start_local_store,
    upgrade_store,
)

__all__ = [
    "AUDIT_END_STATUSES",
    "MAX_REQUEUES",
    "Delivery",
    "ScheduledRepository",
    "Store",
    "downgrade_store",
    "local_store",
    "open_store",
    "prepare_local_store",
    "start_local_store",
    "upgrade_store",
]

log = structlog.get_logger(__name__)

#: The recovery loop stops re-enqueueing a delivery after this many tries (the last one comes
#: about ``2**MAX_REQUEUES`` recovery intervals after it arrived).
MAX_REQUEUES = 10
#: Statuses an audit can finish with.
AUDIT_END_STATUSES = frozenset({"done", "failed", "timed_out"})

_INBOX_COLUMNS: LiteralString = (
    "delivery_id, event, action, installation_id, repository, sender, sender_type, payload"
)
Q_RECORD: LiteralString = (
    f"INSERT INTO webhook_inbox ({_INBOX_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %b) "
    "ON CONFLICT (delivery_id) DO NOTHING"
)
# Many deliveries in one statement (one round trip, one commit); RETURNING says which were new.
Q_RECORD_MANY: LiteralString = (
    f"INSERT INTO webhook_inbox ({_INBOX_COLUMNS}) "
    "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[], %s::text[], "
    "%s::text[], %s::text[], %s::bytea[]) "
    "ON CONFLICT (delivery_id) DO NOTHING RETURNING delivery_id"
)
# Backs off per delivery: due once it is older than interval × 2^attempts.
Q_UNFINISHED: LiteralString = (
    "SELECT 1 FROM webhook_inbox WHERE delivery_id = %s AND done_at IS NULL"
)
Q_PENDING: LiteralString = (
    f"SELECT {_INBOX_COLUMNS} FROM webhook_inbox "
    "WHERE done_at IS NULL AND attempts < %(max)s "
    "AND received_at < now() - make_interval(secs => %(age)s::float8 * power(2, attempts)) "
    "ORDER BY received_at LIMIT %(limit)s"
)
Q_REQUEUED: LiteralString = (
    "UPDATE webhook_inbox SET attempts = attempts + 1 WHERE delivery_id = ANY(%s)"
)
Q_FINISH_DELIVERY: LiteralString = (
    "UPDATE webhook_inbox SET done_at = now(), outcome = %s WHERE delivery_id = %s"
)
Q_PRUNE: LiteralString = (
    "DELETE FROM webhook_inbox WHERE done_at < now() - make_interval(secs => %s::float8)"
)
Q_PAYLOAD: LiteralString = "SELECT payload FROM webhook_inbox WHERE delivery_id = %s"
Q_UPSERT_INSTALLATION: LiteralString = (
    "INSERT INTO installations (id, account) VALUES (%s, %s) ON CONFLICT (id) DO UPDATE "
    "SET account = coalesce(EXCLUDED.account, installations.account), updated_at = now()"
)
Q_SUSPEND: LiteralString = (
    "INSERT INTO installations (id, suspended_at) "
    "VALUES (%(id)s, CASE WHEN %(suspended)s THEN now() END) ON CONFLICT (id) DO UPDATE "
    "SET suspended_at = CASE WHEN %(suspended)s "
    "THEN coalesce(installations.suspended_at, now()) END, updated_at = now()"
)
Q_ENSURE_INSTALLATION: LiteralString = (
    "INSERT INTO installations (id) VALUES (%s) ON CONFLICT (id) DO NOTHING"
)
# A name reused by another repository id (deleted and recreated, transferred) moves to it.
Q_FREE_NAMES: LiteralString = (
    "DELETE FROM repositories WHERE full_name = ANY(%s) AND NOT (id = ANY(%s))"
)
Q_ADD_REPOSITORY: LiteralString = (
    "INSERT INTO repositories (id, installation_id, full_name) VALUES (%s, %s, %s) "
    "ON CONFLICT (id) DO UPDATE SET installation_id = EXCLUDED.installation_id, "
    "full_name = EXCLUDED.full_name, removed_at = NULL"
)
Q_REMOVE_REPOSITORIES: LiteralString = (
    "UPDATE repositories SET removed_at = now() "
    "WHERE installation_id = %s AND id = ANY(%s) AND removed_at IS NULL"
)
Q_PAUSED: LiteralString = "SELECT suspended_at IS NOT NULL FROM installations WHERE id = %s"
# GitHub names are case-insensitive; a suspended installation is not one to audit for.
Q_INSTALLATION_OF: LiteralString = (
    "SELECT r.installation_id FROM repositories r JOIN installations i ON i.id = r.installation_id "
    "WHERE lower(r.full_name) = lower(%s) AND r.removed_at IS NULL AND i.suspended_at IS NULL"
)
# Repositories we may audit: still installed, on an installation that is not suspended.
_ACTIVE: LiteralString = (
    "FROM repositories r JOIN installations i ON i.id = r.installation_id "
    "WHERE r.removed_at IS NULL AND i.suspended_at IS NULL"
)
Q_SET_SCHEDULE: LiteralString = (
    "UPDATE repositories SET schedule = %s, timezone = %s, schedule_checked_at = now() "
    "WHERE full_name = %s"
)
Q_SCHEDULED: LiteralString = (
    "SELECT r.installation_id, r.full_name, r.schedule, coalesce(r.timezone, 'UTC') "
    f"{_ACTIVE} AND r.schedule IS NOT NULL ORDER BY r.full_name"
)
Q_SCHEDULE_CHECKS: LiteralString = (
    f"SELECT r.installation_id, r.full_name {_ACTIVE} AND (r.schedule_checked_at IS NULL "
    "OR r.schedule_checked_at < now() - make_interval(secs => %s::float8)) "
    "ORDER BY r.schedule_checked_at NULLS FIRST, r.full_name LIMIT %s"
)
# An installation belongs to one account: its repositories are ``account/…``, and so is
# what reviewers there said (reviewer memory is keyed by repository name).
_OF_ACCOUNT: LiteralString = (
    "WHERE split_part(repository, '/', 1) = (SELECT account FROM installations WHERE id = %s)"
)
Q_PURGE: tuple[LiteralString, ...] = (
    "DELETE FROM feedback " + _OF_ACCOUNT,
    "DELETE FROM recommendations " + _OF_ACCOUNT,
    "DELETE FROM ignores " + _OF_ACCOUNT,
    "DELETE FROM audits WHERE installation_id = %s",
    "DELETE FROM webhook_inbox WHERE installation_id = %s",
    "DELETE FROM installations WHERE id = %s",  # repositories go with it (ON DELETE CASCADE)
)
Q_START_AUDIT: LiteralString = (
    "INSERT INTO audits (repository, installation_id, trigger, requested_by, dry_run, "
    "status, started_at) VALUES (%s, %s, %s, %s, %s, 'running', coalesce(%s, now())) "
    "RETURNING id"
)
Q_FINISH_AUDIT: LiteralString = (
    "UPDATE audits SET status = %s, finished_at = now(), summary = %s, report = %s WHERE id = %s"
)


class ScheduledRepository(NamedTuple):
    """A repository whose config has a schedule (as the store last saw the config)."""

    installation_id: int
    full_name: str
    #: The 5-field cron text, as validated by ``app.bot.repo_config``.
    schedule: str
    #: The IANA time zone the schedule is read in.
    timezone: str


@dataclass(frozen=True, slots=True)
class Delivery:
    """One accepted webhook delivery: the inbox row, and the argument of the delivery job."""

    delivery_id: str
    event: str
    action: str | None
    installation_id: int | None
    repository: str | None
    sender: str | None
    sender_type: str | None
    payload: bytes
    """The body exactly as GitHub signed it (never re-serialised on the way in)."""

    def to_job(self) -> dict[str, Any]:
        """The JSON-safe job argument: these fields, and the payload as a decoded JSON object."""
        return {
            "delivery_id": self.delivery_id,
            "event": self.event,
            "action": self.action,
            "installation_id": self.installation_id,
            "repository": self.repository,
            "sender": self.sender,
            "sender_type": self.sender_type,
            "payload": msgspec.json.decode(self.payload),
        }

    @classmethod
    def from_job(cls, job: Mapping[str, Any]) -> Delivery:
        """The inverse of :meth:`to_job` (the payload comes back as compact JSON bytes)."""
        return cls(
            delivery_id=str(job["delivery_id"]),
            event=str(job["event"]),
            action=job.get("action"),
            installation_id=job.get("installation_id"),
            repository=job.get("repository"),
            sender=job.get("sender"),
            sender_type=job.get("sender_type"),
            payload=msgspec.json.encode(job["payload"]),
        )

    def row(self) -> tuple[Any, ...]:
        """The values of an inbox row, in ``_INBOX_COLUMNS`` order."""
        return (
            self.delivery_id,
            self.event,
            self.action,
            self.installation_id,
            self.repository,
            self.sender,
            self.sender_type,
            self.payload,
        )


class Store:
    """Async access to the store over a psycopg connection pool (autocommit sessions)."""

    def __init__(self, pool: AsyncConnectionPool[AsyncConnection[TupleRow]]) -> None:
        self.pool = pool

    async def close(self) -> None:
        """Close every connection (idempotent)."""
        await self.pool.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def ping(self) -> None:
        """One round trip (health checks); raises when the store is unreachable."""
        async with self.pool.connection() as conn:
            await conn.execute("SELECT 1")

    # ------------------------------------------------------------------ webhook inbox

    async def record_delivery(self, delivery: Delivery) -> bool:
        """Write ``delivery`` to the inbox; False when its id is there already (a redelivery)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(Q_RECORD, delivery.row())
            return cur.rowcount == 1

    async def record_deliveries(self, deliveries: Sequence[Delivery]) -> list[bool]:
        """Write many deliveries in one statement; per delivery, whether it was new.

        Within the batch, only the first of two deliveries with the same id counts as new.
        """
        if len(deliveries) == 1:
            return [await self.record_delivery(deliveries[0])]
        columns = list(zip(*(d.row() for d in deliveries), strict=True))
        async with self.pool.connection() as conn:
            cur = await conn.execute(Q_RECORD_MANY, [list(column) for column in columns])
            inserted = {row[0] for row in await cur.fetchall()}
        new: list[bool] = []
        for delivery in deliveries:
            new.append(delivery.delivery_id in inserted)
            inserted.discard(delivery.delivery_id)
        return new

    async def finish_delivery(self, delivery_id: str, outcome: str) -> None:
        """Mark a delivery handled (the delivery job calls this last), so it is not re-enqueued."""
        async with self.pool.connection() as conn:
            await conn.execute(Q_FINISH_DELIVERY, (outcome, delivery_id))

    async def is_unfinished(self, delivery_id: str) -> bool:
        """Whether the inbox has ``delivery_id`` and no job has finished it yet."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(Q_UNFINISHED, (delivery_id,))
            return await cur.fetchone() is not None

    async def pending_deliveries(self, older_than_s: float, limit: int) -> list[Delivery]:
        """Unfinished deliveries due for another enqueue, oldest first.

        A delivery is due once it is older than ``older_than_s × 2**attempts`` (see
        :meth:`note_requeued`), so a long queue is not re-enqueued at every turn, and it is
        given up after :data:`MAX_REQUEUES` tries. Re-enqueueing is idempotent (the job id is
        the delivery id), so two web processes may return the same rows.
        """
        params = {"max": MAX_REQUEUES, "age": older_than_s, "limit": limit}
        async with self.pool.connection() as conn:
            cur = await conn.execute(Q_PENDING, params)
            rows = await cur.fetchall()
        return [_delivery(row) for row in rows]

    async def note_requeued(self, delivery_ids: Sequence[str]) -> None:
        """Count one more enqueue attempt for each delivery (the recovery loop backs off on it)."""
        if not delivery_ids:
            return
        async with self.pool.connection() as conn:
            await conn.execute(Q_REQUEUED, (list(delivery_ids),))

    async def prune_deliveries(self, older_than_s: float) -> int:
        """Delete deliveries finished more than ``older_than_s`` ago; returns how many.

        Unfinished ones are kept whatever their age. GitHub's redelivery window is 3 days
        (7 on GHES): keep done ones at least that long, so a redelivery is still a duplicate.
        """
        async with self.pool.connection() as conn:
            cur = await conn.execute(Q_PRUNE, (older_than_s,))
            return cur.rowcount

    async def delivery_payload(self, delivery_id: str) -> bytes | None:
        """The raw body of a delivery, or None if the inbox does not have it."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(Q_PAYLOAD, (delivery_id,))
            row = await cur.fetchone()
        return None if row is None else bytes(row[0])

    # ------------------------------------------------------------------ installations

    async def upsert_installation(self, installation_id: int, account: str | None) -> None:
        """Record an installation (``installation.created``); keeps a known account name."""
        async with self.pool.connection() as conn:
            await conn.execute(Q_UPSERT_INSTALLATION, (installation_id, account))

    async def suspend_installation(self, installation_id: int, suspended: bool) -> None:
        """Pause (``suspend``) or resume (``unsuspend``) an installation, known or not."""
        async with self.pool.connection() as conn:
            await conn.execute(Q_SUSPEND, {"id": installation_id, "suspended": suspended})

    async def is_paused(self, installation_id: int) -> bool:
        """Whether the installation is suspended (an unknown one is not)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(Q_PAUSED, (installation_id,))
            row = await cur.fetchone()
        return bool(row and row[0])

    async def purge_installation(self, installation_id: int) -> None:
        """Forget an installation (``installation.deleted``): repositories, audits, inbox rows,
        and reviewer memory of its account's repositories."""
        async with self.pool.connection() as conn, conn.transaction():
            for statement in Q_PURGE:
                await conn.execute(statement, (installation_id,))
        log.info("store.installation_purged", installation_id=installation_id)

    async def add_repositories(
        self, installation_id: int, repos: Iterable[tuple[int, str]]
    ) -> None:
        """Record repositories ``(id, "owner/name")`` of an installation (``added``)."""
        rows = [(repo_id, installation_id, name) for repo_id, name in repos]
        if not rows:
            return
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute(Q_ENSURE_INSTALLATION, (installation_id,))
            await conn.execute(Q_FREE_NAMES, ([r[2] for r in rows], [r[0] for r in rows]))
            async with conn.cursor() as cur:
                await cur.executemany(Q_ADD_REPOSITORY, rows)

    async def installation_of(self, full_name: str) -> int | None:
        """The installation a repository (``owner/name``, as GitHub spells it) is in; None when
        the store does not know it or it was removed from its installation."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(Q_INSTALLATION_OF, (full_name,))
            row = await cur.fetchone()
        return None if row is None else int(row[0])

    async def remove_repositories(self, installation_id: int, repo_ids: Iterable[int]) -> None:
        """Mark repositories removed from an installation (``removed``); their audits stay."""
        ids = list(repo_ids)
        if not ids:
            return
        async with self.pool.connection() as conn:
            await conn.execute(Q_REMOVE_REPOSITORIES, (installation_id, ids))

    # ------------------------------------------------------------------ schedules

    async def set_schedule(self, full_name: str, schedule: str | None, timezone: str) -> bool:
        """Remember a repository's config schedule (None: none) and that it was just read.

        Only a known repository is updated (installation events record them); returns False
        for an unknown one, e.g. a local run's demo repository, which never runs by schedule.
        """
        async with self.pool.connection() as conn:
            cur = await conn.execute(Q_SET_SCHEDULE, (schedule, timezone, full_name))
            return cur.rowcount > 0

    async def scheduled_repositories(self) -> list[ScheduledRepository]:
        """Active repositories with a schedule: not removed, installation not suspended."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(Q_SCHEDULED)
            rows = await cur.fetchall()
        return [ScheduledRepository(int(i), str(n), str(s), str(tz)) for i, n, s, tz in rows]

    async def schedule_checks_due(self, older_than_s: float, limit: int) -> list[tuple[int, str]]:
        """Active repositories ``(installation_id, full_name)`` whose config was not read in
        the last ``older_than_s`` seconds (never-read ones first, then the longest unread)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(Q_SCHEDULE_CHECKS, (older_than_s, limit))
            rows = await cur.fetchall()
        return [(int(installation_id), str(name)) for installation_id, name in rows]

    # ------------------------------------------------------------------ audits

    async def start_audit(
        self,
        repository: str,
        installation_id: int | None,
        trigger: str,
        requested_by: str | None,
        dry_run: bool,
        started_at: datetime | None = None,
    ) -> int:
        """Record an audit that started at ``started_at`` (default now), status ``running``.

        Returns its id.
        """
        params = (repository, installation_id, trigger, requested_by, dry_run, started_at)
        async with self.pool.connection() as conn:
            cur = await conn.execute(Q_START_AUDIT, params)
            row = await cur.fetchone()
        if row is None:  # pragma: no cover - INSERT … RETURNING always returns the row
            raise RuntimeError("INSERT INTO audits returned no id")
        return int(row[0])

    async def finish_audit(
        self,
        audit_id: int,
        status: str,
        summary: Mapping[str, Any],
        report: Mapping[str, Any] | None,
    ) -> None:
        """Record how an audit ended: ``done``, ``failed`` or ``timed_out``, with its results.

        Raises:
            ValueError: ``status`` is not an end status.
        """
        if status not in AUDIT_END_STATUSES:
            raise ValueError(f"an audit ends {sorted(AUDIT_END_STATUSES)}, not {status!r}")
        params = (status, Jsonb(dict(summary)), Jsonb(dict(report)) if report else None, audit_id)
        async with self.pool.connection() as conn:
            await conn.execute(Q_FINISH_AUDIT, params)


def _delivery(row: Sequence[Any]) -> Delivery:
    """A Delivery from an inbox row selected as ``_INBOX_COLUMNS``."""
    delivery_id, event, action, installation_id, repository, sender, sender_type, payload = row
    return Delivery(
        delivery_id=delivery_id,
        event=event,
        action=action,
        installation_id=installation_id,
        repository=repository,
        sender=sender,
        sender_type=sender_type,
        payload=bytes(payload),
    )


async def open_store(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    timeout_s: float = 2.0,
    wait: bool = True,
    open_timeout_s: float = 10.0,
) -> Store:
    """Open a pool on the store.

    Args:
        dsn: the store's libpq DSN.
        min_size: connections kept open.
        max_size: connections at most (concurrent statements beyond it wait).
        timeout_s: how long a call waits for a connection before ``PoolTimeout``; short,
            because the webhook path must answer GitHub within 10 s whatever happens.
        wait: wait until ``min_size`` connections are open, raising ``PoolTimeout`` if the
            store is unreachable; with False, connect in the background.
        open_timeout_s: how long ``wait`` waits.
    """
    pool: AsyncConnectionPool[AsyncConnection[TupleRow]] = AsyncConnectionPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout_s,
        kwargs={"autocommit": True},
        open=False,
        name="store",
    )
    try:
        await pool.open(wait=wait, timeout=open_timeout_s)
    except BaseException:
        await pool.close()
        raise
    return Store(pool)
