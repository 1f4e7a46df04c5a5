"""An arq worker that outlives Redis outages, beats a heartbeat and holds its jobs on short leases.

arq 0.28's ``Worker.main`` lets any Redis error of its poll loop escape: the worker's ``main``
ends, ``close()`` cancels its jobs (logging "shutdown on SIGUSR1", the signal arq pretends to
have received when it does not handle signals itself) and it never polls again. Here a failed
poll waits (with backoff) and polls again; redis-py reconnects on the next command.

arq marks a started job with ``arq:in-progress:<id>`` for the longest job timeout plus 10 s:
after a worker dies mid-job, nobody runs that job again for that long (35 minutes for an
audit). Here the key lasts one lease (``DBARCH_WORKER_LEASE_SECONDS``) and the poll loop renews
it for every job still running, so a dead worker's jobs are taken up by another within a lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import warnings
from collections.abc import Awaitable, Callable
from typing import Any, cast

import psycopg
import redis.exceptions
import structlog
from arq import Worker
from arq.constants import in_progress_key_prefix

from app.adapters.heartbeats import HEARTBEAT_EVERY_S, Heartbeat

__all__ = ["REDIS_DOWN", "ResilientWorker", "close_worker", "supervise"]

log = structlog.get_logger(__name__)

#: Errors that mean Redis is unreachable or too slow now (not a bug): wait and try again.
REDIS_DOWN: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ConnectionError,
    TimeoutError,
)
#: Waits between failed polls (and restarts), doubling from the first up to the cap.
RETRY_FIRST_S = 0.5
RETRY_CAP_S = 10.0
# Renew only keys that still exist: a finished job's key is gone, and must stay gone.
_RENEW = """
for i, key in ipairs(KEYS) do
  if redis.call('exists', key) == 1 then redis.call('pexpire', key, ARGV[1]) end
end
return 0
"""


def retry_delay(failures: int) -> float:
    """The wait after ``failures`` failures in a row: 0.5 s, 1 s, 2 s … at most 10 s."""
    return float(min(RETRY_CAP_S, RETRY_FIRST_S * 2 ** max(0, failures - 1)))


class ResilientWorker(Worker):
    """arq's ``Worker``, with a poll loop that survives Redis outages, heartbeats and leases."""

    def __init__(self, *args: Any, lease_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lease_s = lease_s
        # arq's start_jobs sets the in-progress key for this long: one lease, not the timeout.
        self.in_progress_timeout_s = lease_s
        self.heartbeat = Heartbeat.here(self.queue_name)
        self._failures = 0
        self._beaten_at = -float("inf")
        self._renewed_at = -float("inf")

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except REDIS_DOWN as err:
            self._failures += 1
            delay = retry_delay(self._failures)
            log.warning(
                "worker_redis_unreachable",
                queue=self.queue_name,
                error=type(err).__name__,
                failures=self._failures,
                retry_in_s=delay,
                running=self._running(),
            )
            await asyncio.sleep(delay)
            return
        if self._failures:
            log.info("worker_redis_back", queue=self.queue_name, failures=self._failures)
            self._failures = 0

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """arq's ``start_jobs``, one job at a time, giving back the slot a failed start took.

        arq takes a job slot (its semaphore and counter) before the Redis transaction that
        claims the job, and gives it back only on a WATCH conflict: a connection error there
        would lose the slot for good, and after ``max_jobs`` such errors the worker starts
        nothing.
        """
        for job_id in job_ids:
            try:
                await super().start_jobs([job_id])
            except REDIS_DOWN:
                if job_id.decode() not in self.tasks:
                    self.job_counter -= 1
                    self.sem.release()
                raise

    async def heart_beat(self) -> None:
        """arq's health record and crons, then our heartbeat and the running jobs' leases."""
        await super().heart_beat()
        now = time.monotonic()
        if now - self._beaten_at >= HEARTBEAT_EVERY_S:
            await self.heartbeat.beat(self.pool, running=self._running())
            self._beaten_at = now
        if now - self._renewed_at >= self.lease_s / 4:
            await self.renew_leases()
            self._renewed_at = now

    async def renew_leases(self) -> None:
        """Extend the in-progress keys of the jobs this worker is running by one lease."""
        keys = [in_progress_key_prefix + job_id for job_id, t in self.tasks.items() if not t.done()]
        if keys:
            renew = self.pool.eval(_RENEW, len(keys), *keys, str(int(self.lease_s * 1000)))
            await cast(Awaitable[Any], renew)

    def _running(self) -> int:
        return sum(not t.done() for t in self.tasks.values())


async def close_worker(worker: Worker) -> None:
    """``worker.close()``, also when Redis is gone (then the startup's resources still close).

    Hides redis-py's deprecation warning about arq's ``pool.close()``.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Call to deprecated close", DeprecationWarning)
        if isinstance(worker, ResilientWorker) and worker._pool is not None:
            with contextlib.suppress(*REDIS_DOWN):
                await worker.heartbeat.stop(worker.pool)
        try:
            await worker.close()
        except REDIS_DOWN as err:
            log.warning("worker_closed_without_redis", error=type(err).__name__)
            if worker.on_shutdown is not None:
                await worker.on_shutdown(worker.ctx)
            pool, worker._pool = worker._pool, None  # arq keeps it private
            if pool is not None:
                await pool.aclose(close_connection_pool=True)


#: What stops a worker's startup and is worth another try later: Redis or the store away.
_STARTUP_DOWN: tuple[type[Exception], ...] = (*REDIS_DOWN, psycopg.OperationalError)


async def supervise(make: Callable[[], Worker], *, queue: str) -> None:
    """Run workers made by ``make`` until cancelled, making a new one after each outage.

    A worker's poll loop survives Redis outages by itself; what ends one is a failed startup
    (Redis or the store unreachable when it connects). Other errors are bugs: they propagate,
    and the process exits non-zero so its supervisor (systemd, compose) restarts it.
    """
    failures = 0
    while True:
        worker = make()
        started = time.monotonic()
        try:
            await worker.main()
            return  # a burst worker ran out of jobs
        except _STARTUP_DOWN as err:
            # A worker that had been running a while starts a new series of waits.
            failures = 1 if time.monotonic() - started > 3 * RETRY_CAP_S else failures + 1
            delay = retry_delay(failures)
            log.warning(
                "worker_restarting",
                queue=queue,
                error=type(err).__name__,
                failures=failures,
                retry_in_s=delay,
            )
        finally:
            await close_worker(worker)
        await asyncio.sleep(delay)
