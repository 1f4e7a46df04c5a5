"""What the web process holds while it runs: settings, the store pool and the arq queue."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

import msgspec
import psycopg
import structlog
from arq.constants import expires_extra_ms, job_key_prefix, result_key_prefix
from redis.exceptions import NoScriptError, RedisError

from app.adapters.heartbeats import Activity, activity
from app.adapters.queue import (
    AUDIT_JOB,
    AUDITS_QUEUE,
    DELIVERY_JOB,
    EVENTS_QUEUE,
    audit_job_id,
    delivery_job_id,
    open_pool,
)
from app.web.batch import Batcher
from app.web.budget import ByteBudget
from app.web.counters import WebMetrics
from app.web.ingress import IngressLimits

if TYPE_CHECKING:
    from arq.connections import ArqRedis
    from litestar import Litestar

    from app.adapters.store import Delivery, Store
    from app.flows.requests import AuditRequest
    from app.settings import Settings

__all__ = ["DeliveryQueue", "QueueUnavailable", "WebState", "delivery_job_bytes", "web_state"]

log = structlog.get_logger(__name__)

_REDIS_ERRORS = (RedisError, OSError, TimeoutError)
#: Errors that say the store is unreachable (every row would fail), not that a row is bad.
STORE_OUTAGES: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    OSError,
    TimeoutError,
)

# arq's ``enqueue_job`` (WATCH, EXISTS, MULTI, PSETEX, ZADD, EXEC: three round trips) as one
# atomic script: same keys, same job format, same "an existing job or result wins" rule.
# KEYS: job key, result key, queue. ARGV: job id, score (ms), job expiry (ms), job bytes.
_ENQUEUE_LUA = """
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then return 0 end
redis.call('PSETEX', KEYS[1], ARGV[3], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return 1
"""
_ENQUEUE_SHA = hashlib.sha1(_ENQUEUE_LUA.encode(), usedforsecurity=False).hexdigest()
_ENCODER = msgspec.json.Encoder()


def delivery_job_bytes(delivery: Delivery, enqueue_time_ms: int) -> bytes:
    """The delivery job as arq stores it (``serialize_job`` with the JSON serializer).

    Decoded by ``app.adapters.queue.loads``, its argument equals ``delivery.to_job()``; the
    signed body is embedded as it came (it parsed as a JSON object), not decoded and re-encoded.
    """
    argument = {
        "delivery_id": delivery.delivery_id,
        "event": delivery.event,
        "action": delivery.action,
        "installation_id": delivery.installation_id,
        "repository": delivery.repository,
        "sender": delivery.sender,
        "sender_type": delivery.sender_type,
        "payload": msgspec.Raw(delivery.payload),
    }
    job: dict[str, object] = {
        "t": None,
        "f": DELIVERY_JOB,
        "a": [argument],
        "k": {},
        "et": enqueue_time_ms,
    }
    return _ENCODER.encode(job)


class QueueUnavailable(Exception):
    """Redis could not be reached, or did not answer in time."""


class DeliveryQueue:
    """The arq pool for delivery jobs (and the admin API's audits), opened lazily: Redis may
    be down when the web starts.

    While Redis is unreachable, a new connection is tried at most once per ``retry_after_s``
    so that a burst of deliveries does not pile up connection attempts; every call fails
    fast with :class:`QueueUnavailable` meanwhile (the inbox still has the delivery).
    """

    def __init__(self, url: str, *, timeout_s: float = 2.0, retry_after_s: float = 1.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self._pool: ArqRedis | None = None
        self._failed_at = -float("inf")
        self._lock = asyncio.Lock()

    async def connect(self) -> ArqRedis:
        """The pool, connecting first if needed; raises QueueUnavailable."""
        pool = self._pool
        if pool is None:
            async with self._lock:  # one connection attempt at a time
                pool = self._pool or await self._open()
        return pool

    async def _open(self) -> ArqRedis:
        if time.monotonic() - self._failed_at < self.retry_after_s:
            raise QueueUnavailable("Redis was unreachable a moment ago")
        try:
            async with asyncio.timeout(self.timeout_s):
                pool = await open_pool(self.url, timeout_s=self.timeout_s)
        except _REDIS_ERRORS as err:
            self._failed_at = time.monotonic()
            raise QueueUnavailable(f"cannot connect to Redis: {type(err).__name__}") from err
        log.info("queue.connected")
        self._pool = pool
        return pool

    async def enqueue(self, delivery: Delivery) -> bool:
        """Enqueue the delivery job under its deterministic id; False if that job exists already.

        Raises:
            QueueUnavailable: Redis is down or slow; nothing may have been enqueued.
        """
        [created] = await self.enqueue_many([delivery])
        return created

    async def enqueue_many(self, deliveries: Sequence[Delivery]) -> list[bool]:
        """Enqueue delivery jobs in one round trip; per delivery, whether its job is new.

        Each job is what arq's ``enqueue_job`` would store on
        :data:`~app.adapters.queue.EVENTS_QUEUE` (see ``_ENQUEUE_LUA``).

        Raises:
            QueueUnavailable: Redis is down or slow; some jobs may have been enqueued (doing
                it again is harmless: the job ids are deterministic).
        """
        pool = await self.connect()
        now_ms = round(time.time() * 1000)
        try:
            async with asyncio.timeout(self.timeout_s):
                try:
                    created = await self._run_script(pool, deliveries, now_ms)
                except NoScriptError:  # a restarted Redis has forgotten the script
                    await pool.script_load(_ENQUEUE_LUA)
                    created = await self._run_script(pool, deliveries, now_ms)
        except _REDIS_ERRORS as err:
            raise QueueUnavailable(f"enqueue failed: {type(err).__name__}") from err
        return [bool(result) for result in created]

    @staticmethod
    async def _run_script(
        pool: ArqRedis, deliveries: Sequence[Delivery], now_ms: int
    ) -> list[object]:
        pipe = pool.pipeline(transaction=False)
        for delivery in deliveries:
            job_id = delivery_job_id(delivery.delivery_id)
            pipe.execute_command(  # not evalsha(): its annotation allows str arguments only
                "EVALSHA",
                _ENQUEUE_SHA,
                3,
                job_key_prefix + job_id,
                result_key_prefix + job_id,
                EVENTS_QUEUE,
                job_id,
                now_ms,
                expires_extra_ms,
                delivery_job_bytes(delivery, now_ms),
            )
        results: list[object] = await pipe.execute()
        return results

    async def enqueue_audit(self, request: AuditRequest) -> bool:
        """Enqueue an audit job on the audits queue (as the events worker does); False when
        a job with its id (``audit_job_id``) is queued, running or has a kept result.

        Raises:
            QueueUnavailable: Redis is down or slow; nothing was enqueued.
        """
        pool = await self.connect()
        try:
            async with asyncio.timeout(self.timeout_s):
                job = await pool.enqueue_job(
                    AUDIT_JOB,
                    request.to_job(),
                    _job_id=audit_job_id(request.full_name, request.trigger_key),
                    _queue_name=AUDITS_QUEUE,
                )
        except _REDIS_ERRORS as err:
            raise QueueUnavailable(f"enqueue failed: {type(err).__name__}") from err
        return job is not None

    async def activity(self) -> Activity | None:
        """Live workers and queued jobs per queue, or None when Redis does not answer now."""
        try:
            pool = await self.connect()
            async with asyncio.timeout(self.timeout_s):
                return await activity(pool)
        except (QueueUnavailable, *_REDIS_ERRORS):
            return None

    async def ping(self) -> bool:
        """Whether Redis answers now."""
        try:
            pool = await self.connect()
            async with asyncio.timeout(self.timeout_s):
                await pool.ping()
        except (QueueUnavailable, *_REDIS_ERRORS):
            return False
        return True

    async def close(self) -> None:
        """Close the pool if it was opened."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.aclose()


@dataclass(slots=True)
class WebState:
    """The web process's long-lived objects, opened and closed by the app's lifespan."""

    settings: Settings
    store: Store
    queue: DeliveryQueue
    metrics: WebMetrics = field(default_factory=WebMetrics)
    """This app's own Prometheus counters (``GET /metrics``)."""
    limits: IngressLimits = field(default_factory=IngressLimits)
    """What a webhook request may take: body size, read time, bytes held at once."""
    budget: ByteBudget = field(init=False)
    """Bytes of webhook bodies held now, overall and per client, within ``limits.budget``."""
    secrets: tuple[bytes, ...] = field(init=False)
    """``settings.webhook_secrets``, read once rather than per delivery."""
    bot_login: str = field(init=False)
    """Our bot's login, ``<slug>[bot]``: its events are never handled (no loops)."""
    inbox: Batcher[Delivery, bool] = field(init=False)
    """``store.record_deliveries`` for concurrent deliveries: True when new."""
    jobs: Batcher[Delivery, bool] = field(init=False)
    """``queue.enqueue_many`` for concurrent deliveries: True when the job is new."""

    def __post_init__(self) -> None:
        self.secrets = self.settings.webhook_secrets
        self.bot_login = f"{self.settings.github_app_slug}[bot]"
        self.budget = ByteBudget(self.limits.budget)
        # An outage fails a whole batch; any other error is a row's and is split down to it.
        self.inbox = Batcher(self.store.record_deliveries, outage=STORE_OUTAGES)
        self.jobs = Batcher(self.queue.enqueue_many, outage=(QueueUnavailable,))


def web_state(app: Litestar) -> WebState:
    """The state the lifespan stored on ``app`` (typed)."""
    return cast("WebState", app.state["web"])
