"""Schedules on PG18 and Redis with the fake GitHub: migration, store, refresh and firing crons."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from arq.connections import ArqRedis

from app.adapters.github.client import redis_token_cache
from app.adapters.queue import AUDITS_QUEUE, open_pool
from app.adapters.store import (
    ScheduledRepository,
    Store,
    downgrade_store,
    open_store,
    upgrade_store,
)
from app.adapters.store_schema import store_revision
from app.flows.requests import AuditRequest
from tests.github_fake import FakeGitHub
from worker.jobs import audit_job, refresh_schedules, run_schedules

SHOP, BLOG, API = "octo/shop", "octo/blog", "other/api"
SCHEDULED = 'version: 1\ntarget: shop\nschedule: "5 * * * *"\ntimezone: Europe/Berlin\n'
COLUMNS = {"schedule", "timezone", "schedule_checked_at"}
#: A minute at which "5 * * * *" in Berlin (a whole-hour offset) fires, and one where not.
MATCHING = datetime(2026, 12, 1, 10, 5, 17, tzinfo=UTC)
OTHER = datetime(2026, 12, 1, 10, 6, tzinfo=UTC)


def _sql(dsn: str, statement: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


def _columns(dsn: str) -> set[str]:
    rows = _sql(
        dsn,
        "SELECT attname FROM pg_attribute WHERE attrelid = 'repositories'::regclass "
        "AND attnum > 0 AND NOT attisdropped",
    )
    return {str(name) for (name,) in rows}


def test_schedule_migration_upgrade_downgrade_upgrade(fresh_db18: str) -> None:
    upgrade_store(fresh_db18, "0003")
    _sql(fresh_db18, "INSERT INTO installations (id) VALUES (7)")
    _sql(fresh_db18, f"INSERT INTO repositories VALUES (1, 7, '{SHOP}')")

    upgrade_store(fresh_db18, "0004")
    assert store_revision(fresh_db18) == "0004"
    assert _columns(fresh_db18) >= COLUMNS
    assert _sql(fresh_db18, "SELECT schedule, timezone, schedule_checked_at FROM repositories") == [
        (None, None, None)
    ]

    downgrade_store(fresh_db18, "0003")
    assert not COLUMNS & _columns(fresh_db18)
    assert _sql(fresh_db18, "SELECT full_name FROM repositories") == [(SHOP,)]

    upgrade_store(fresh_db18, "0004")
    _sql(fresh_db18, "UPDATE repositories SET schedule = '0 3 * * *', timezone = 'UTC'")


@pytest.fixture
async def store(fresh_db18: str) -> AsyncIterator[Store]:
    upgrade_store(fresh_db18)
    async with await open_store(fresh_db18, max_size=2) as opened:
        await opened.upsert_installation(7, "octo")
        await opened.upsert_installation(8, "other")
        await opened.add_repositories(7, [(1, SHOP), (2, BLOG)])
        await opened.add_repositories(8, [(3, API)])
        yield opened


async def test_the_store_keeps_schedules_of_known_active_repositories(store: Store) -> None:
    assert await store.set_schedule("nobody/local-demo", "0 3 * * *", "UTC") is False
    assert await store.set_schedule(SHOP, "5 * * * *", "Europe/Berlin") is True
    assert await store.set_schedule(BLOG, None, "UTC") is True
    assert await store.set_schedule(API, "0 4 * * *", "UTC") is True

    assert await store.scheduled_repositories() == [
        ScheduledRepository(7, SHOP, "5 * * * *", "Europe/Berlin"),
        ScheduledRepository(8, API, "0 4 * * *", "UTC"),
    ]
    await store.suspend_installation(8, True)
    await store.remove_repositories(7, [1])
    assert await store.scheduled_repositories() == []
    await store.suspend_installation(8, False)
    assert [r.full_name for r in await store.scheduled_repositories()] == [API]


async def test_checks_are_due_for_configs_not_read_lately(store: Store, fresh_db18: str) -> None:
    assert await store.schedule_checks_due(3000, 10) == [(7, BLOG), (7, SHOP), (8, API)]
    assert await store.schedule_checks_due(3000, 2) == [(7, BLOG), (7, SHOP)]

    await store.set_schedule(SHOP, None, "UTC")
    await store.set_schedule(API, None, "UTC")
    _sql(
        fresh_db18,
        "UPDATE repositories SET schedule_checked_at = now() - interval '2 hours' "
        "WHERE full_name = %s",
        (API,),
    )
    assert await store.schedule_checks_due(3000, 10) == [(7, BLOG), (8, API)]
    await store.suspend_installation(8, True)
    assert await store.schedule_checks_due(3000, 10) == [(7, BLOG)]


# ---------------------------------------------------------------------- the crons


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    github = FakeGitHub()
    github.add_repo(SHOP, installation_id=7, files={".github/db-architect.yml": SCHEDULED})
    github.add_repo(BLOG, installation_id=7)  # installed, not configured
    github.add_repo(API, installation_id=8, files={".github/db-architect.yml": SCHEDULED})
    with github.mock():
        yield github


@pytest.fixture
async def pool(redis_url: str) -> AsyncIterator[ArqRedis]:
    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()  # queues, job results, memos and locks of earlier tests
    arq_pool = await open_pool(redis_url)
    try:
        yield arq_pool
    finally:
        await arq_pool.aclose()


@pytest.fixture
async def ctx(
    fake: FakeGitHub, pool: ArqRedis, store: Store, redis_url: str, tmp_path: Path
) -> dict[str, Any]:
    """What a worker's context holds after start-up (``worker.main._startup``)."""
    await store.suspend_installation(8, True)
    settings = fake.settings(redis_url=redis_url, data_dir=tmp_path, audit_timeout_seconds=60)
    return {
        "settings": settings,
        "redis": pool,
        "store": store,
        "gh_cache": redis_token_cache(pool),
    }


async def _jobs(pool: ArqRedis) -> list[tuple[str | None, dict[str, Any]]]:
    return [(job.job_id, job.args[0]) for job in await pool.queued_jobs(queue_name=AUDITS_QUEUE)]


async def test_a_refreshed_schedule_fires_once_at_its_minute(
    ctx: dict[str, Any], pool: ArqRedis, store: Store, fake: FakeGitHub
) -> None:
    assert await refresh_schedules(ctx, now=MATCHING) == 2  # not the suspended installation's
    assert await refresh_schedules(ctx, now=MATCHING) == 0  # another worker, same hour
    assert await store.scheduled_repositories() == [
        ScheduledRepository(7, SHOP, "5 * * * *", "Europe/Berlin")
    ]
    assert not [p for p in fake.paths() if "other/api" in p]

    assert await run_schedules(ctx, now=OTHER) == 0
    assert await _jobs(pool) == []

    assert await run_schedules(ctx, now=MATCHING) == 1
    assert await run_schedules(ctx, now=MATCHING) == 0  # a second worker: the minute's lock
    await pool.delete("dbarch:lock:schedules:2026-12-01T10:05")
    assert await run_schedules(ctx, now=MATCHING) == 0  # without the lock: the job id
    [(job_id, request)] = await _jobs(pool)
    assert job_id == "audit:octo/shop:schedule:2026-12-01T10:05Z"
    assert AuditRequest.from_job(request) == AuditRequest(
        installation_id=7,
        owner="octo",
        name="shop",
        trigger="schedule",
        trigger_key="schedule:2026-12-01T10:05Z",
    )


async def test_a_suspended_installation_runs_no_schedule(
    ctx: dict[str, Any], pool: ArqRedis, store: Store
) -> None:
    await store.set_schedule(API, "5 * * * *", "UTC")  # stored before it was suspended
    await refresh_schedules(ctx, now=MATCHING)
    await store.suspend_installation(7, True)

    assert await run_schedules(ctx, now=MATCHING) == 0
    assert await _jobs(pool) == []


async def test_a_broken_config_clears_the_schedule_at_the_next_refresh(
    ctx: dict[str, Any], pool: ArqRedis, store: Store, fake: FakeGitHub, fresh_db18: str
) -> None:
    await refresh_schedules(ctx, now=MATCHING)
    fake.push(SHOP, "main", {".github/db-architect.yml": 'version: 1\nschedule: "*/5 * * * *"\n'})
    _sql(fresh_db18, "UPDATE repositories SET schedule_checked_at = now() - interval '7 hours'")

    assert await refresh_schedules(ctx, now=datetime(2026, 12, 1, 11, 41, tzinfo=UTC)) == 2
    assert await store.scheduled_repositories() == []
    assert await run_schedules(ctx, now=MATCHING) == 0


async def test_an_audit_records_the_schedule_it_read(
    ctx: dict[str, Any], store: Store, fake: FakeGitHub
) -> None:
    fake.push(SHOP, "main", {".github/db-architect.yml": SCHEDULED.replace("5 *", "30 2")})
    request = AuditRequest(7, "octo", "shop", trigger="comment", trigger_key="delivery:1")

    result = await audit_job(ctx, request.to_job())

    assert result["status"] == "target_problem"  # the operator maps no target called "shop"
    assert await store.scheduled_repositories() == [
        ScheduledRepository(7, SHOP, "30 2 * * *", "Europe/Berlin")
    ]
    assert await store.schedule_checks_due(3000, 10) == [(7, BLOG)]


async def test_without_the_github_app_nothing_is_refreshed(
    ctx: dict[str, Any], tmp_path: Path
) -> None:
    local = ctx | {"settings": ctx["settings"].model_copy(update={"github_private_key": None})}

    assert await refresh_schedules(local, now=MATCHING) == 0


async def test_without_a_clock_the_minute_is_the_one_arq_scheduled(
    ctx: dict[str, Any], pool: ArqRedis, store: Store
) -> None:
    await store.set_schedule(SHOP, "5 * * * *", "Europe/Berlin")
    late = ctx | {"score": int(MATCHING.timestamp() * 1000)}  # the job runs after 10:05

    assert await run_schedules(late) == 1
    assert [job_id for job_id, _ in await _jobs(pool)] == [
        "audit:octo/shop:schedule:2026-12-01T10:05Z"
    ]
