"""Leases on a real Redis: the repository's audit lock and arq's in-progress keys are renewed
while their job runs, lapse within a lease after it dies, and a lost lock stops the audit."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.exceptions
from arq import Retry
from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix
from arq.worker import Worker, func

from app.adapters.queue import dumps, loads, open_pool, redis_settings
from app.flows.requests import AuditRequest
from app.settings import Settings, TargetSpec
from worker.jobs import LockLost, audit_job, repository_lock
from worker.resilient import ResilientWorker, close_worker

LEASE_S = 0.4


@pytest.fixture
async def pool(redis_url: str) -> AsyncIterator[ArqRedis]:
    connection = await open_pool(redis_url)
    yield connection
    await connection.aclose()


def _repository() -> tuple[str, str]:
    """A repository no other test uses, and the key of its audit lock."""
    repository = f"acme/{uuid.uuid4().hex[:8]}"
    return repository, f"dbarch:lock:audit:{repository}"


async def test_a_held_lock_outlives_its_lease_and_is_released_at_the_end(pool: ArqRedis) -> None:
    repository, key = _repository()
    async with repository_lock(pool, repository, LEASE_S) as held:
        assert held
        token = await pool.get(key)
        await asyncio.sleep(3 * LEASE_S)  # three leases: only renewals keep it
        assert await pool.get(key) == token
        assert 0 < await pool.pttl(key) <= LEASE_S * 1000
        async with repository_lock(pool, repository, LEASE_S) as second:
            assert not second  # another job of the same repository waits
    assert await pool.get(key) is None


async def test_a_dead_holders_lock_lapses_within_a_lease(pool: ArqRedis) -> None:
    repository, key = _repository()
    # What a SIGKILLed worker leaves: a lock nobody renews.
    await pool.set(key, "dead-worker", px=int(LEASE_S * 1000))
    async with repository_lock(pool, repository, LEASE_S) as held:
        assert not held
    await asyncio.sleep(LEASE_S + 0.1)
    async with repository_lock(pool, repository, LEASE_S) as held:
        assert held


async def test_a_lock_taken_by_another_job_stops_the_audit(pool: ArqRedis) -> None:
    repository, key = _repository()
    published = False

    async def audit() -> None:
        nonlocal published
        async with repository_lock(pool, repository, LEASE_S) as held:
            assert held
            await pool.set(key, "another-job")  # e.g. ours lapsed while the loop was stuck
            await asyncio.sleep(5 * LEASE_S)
            published = True

    with pytest.raises(LockLost):
        await asyncio.wait_for(audit(), timeout=10 * LEASE_S)
    assert not published
    assert await pool.get(key) == b"another-job"  # not released: it is not ours


async def test_a_lock_gone_with_a_restarted_redis_is_taken_again(pool: ArqRedis) -> None:
    repository, key = _repository()
    async with repository_lock(pool, repository, LEASE_S) as held:
        assert held
        token = await pool.get(key)
        await pool.delete(key)
        await asyncio.sleep(LEASE_S)
        assert await pool.get(key) == token


async def test_the_worker_renews_the_in_progress_key_of_a_running_job(
    redis_url: str, pool: ArqRedis
) -> None:
    queue = f"test:leases:{uuid.uuid4().hex[:8]}"
    seen: list[int] = []

    async def slow(ctx: dict[str, Any]) -> str:
        key = in_progress_key_prefix + ctx["job_id"]
        for _ in range(6):  # three leases in all
            await asyncio.sleep(LEASE_S / 2)
            seen.append(await ctx["redis"].pttl(key))
        return "done"

    worker = _worker(redis_url, queue, slow, max_jobs=1)
    # Two due jobs, one slot: the second must not stall the poll loop that renews the first.
    jobs = [await pool.enqueue_job("slow", _queue_name=queue) for _ in range(2)]
    try:
        await asyncio.wait_for(worker.main(), timeout=20)
    finally:
        await close_worker(worker)
    # Never the job timeout (an hour here), always at most one lease, never expired.
    assert len(seen) == 12 and all(0 < ttl <= LEASE_S * 1000 for ttl in seen), seen
    for job in jobs:
        assert job is not None
        assert await job.result(timeout=1) == "done"
        assert await pool.exists(in_progress_key_prefix + job.job_id) == 0


def _worker(redis_url: str, queue: str, job: Any, *, max_jobs: int = 10) -> ResilientWorker:
    return ResilientWorker(
        max_jobs=max_jobs,
        functions=[func(job, name=job.__name__, timeout=3600)],
        queue_name=queue,
        redis_settings=redis_settings(redis_url),
        burst=True,
        poll_delay=0.05,
        handle_signals=False,
        keep_result=60,
        job_serializer=dumps,
        job_deserializer=loads,
        lease_s=LEASE_S,
    )


async def test_a_start_that_loses_redis_gives_its_job_slot_back(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = _worker(redis_url, f"test:slots:{uuid.uuid4().hex[:8]}", _noop)

    async def claim_fails(self: Worker, job_ids: list[bytes]) -> None:
        # Where arq's start_jobs loses Redis: slot taken, claim transaction not executed.
        await self.sem.acquire()
        self.job_counter += 1
        raise redis.exceptions.ConnectionError("Connection reset by peer")

    monkeypatch.setattr(Worker, "start_jobs", claim_fails)
    for _ in range(worker.max_jobs + 1):
        with pytest.raises(redis.exceptions.ConnectionError):
            await worker.start_jobs([b"some-job"])
    assert worker.job_counter == 0
    assert not worker.sem.locked()


async def _noop(ctx: dict[str, Any]) -> None:
    return None


async def test_an_audit_that_loses_its_lock_publishes_nothing_and_is_retried(
    pool: ArqRedis, tmp_path: Path
) -> None:
    checkout = tmp_path / "checkout"
    (checkout / ".github").mkdir(parents=True)
    (checkout / ".github" / "db-architect.yml").write_text("version: 1\ntarget: shop\n")
    settings = Settings(
        data_dir=tmp_path / "data",
        local_repo_dir=checkout,
        worker_lease_seconds=2.0,
        targets={"shop": TargetSpec(dsn="postgresql://nobody@127.0.0.1:1/shop")},  # type: ignore[arg-type]
    )
    request = AuditRequest(1, "acme", uuid.uuid4().hex[:8], trigger="comment", trigger_key="d:1")
    reached_the_end = False

    async def run_audit(resolved: object) -> object:
        nonlocal reached_the_end
        # Ours lapsed (a stuck loop, say) and another job took the repository meanwhile.
        await pool.set(f"dbarch:lock:audit:{request.full_name}", "another-job")
        await asyncio.sleep(10)
        reached_the_end = True
        raise AssertionError("the audit went on without its lock")

    ctx = {"settings": settings, "redis": pool, "run_audit": run_audit, "job_try": 1}
    with pytest.raises(Retry):
        await asyncio.wait_for(audit_job(ctx, request.to_job()), timeout=8)

    assert not reached_the_end
    outbox = settings.outbox / "acme" / request.name
    assert not list(outbox.rglob("pr.md"))
    runs = [json.loads(p.read_text()) for p in outbox.glob("check-runs/*.json")]
    assert [run["status"] for run in runs] == ["in_progress"]  # the other job finishes it
