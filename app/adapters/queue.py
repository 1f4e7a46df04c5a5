"""The arq job queue on Redis: queue names, job names and ids, a JSON serializer, the pool."""

from __future__ import annotations

import json
from typing import Any

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings

__all__ = [
    "AUDITS_QUEUE",
    "AUDIT_JOB",
    "DELIVERY_JOB",
    "EVENTS_QUEUE",
    "audit_job_id",
    "delivery_job_id",
    "dumps",
    "loads",
    "open_pool",
    "redis_settings",
]

#: Quick jobs: one per webhook delivery (reactions, permission checks, bookkeeping).
EVENTS_QUEUE = "dbarch:events"
#: Slow jobs: audits, which hold a per-repository lock while they run.
AUDITS_QUEUE = "dbarch:audits"

#: ``handle_delivery(ctx, delivery: dict)``: ``delivery`` is ``Delivery.to_job()`` (app.web).
DELIVERY_JOB = "handle_delivery"
#: ``audit_repository(ctx, request: dict)``: ``request`` is ``AuditRequest.to_job()``.
AUDIT_JOB = "audit_repository"


def delivery_job_id(delivery_id: str) -> str:
    """The deterministic arq job id of a webhook delivery (a redelivery maps to the same id)."""
    return f"delivery:{delivery_id}"


def audit_job_id(repo_full_name: str, trigger_key: str) -> str:
    """The deterministic arq job id of the audit that one trigger (delivery, schedule) asked for."""
    return f"audit:{repo_full_name}:{trigger_key}"


def dumps(value: Any) -> bytes:
    """arq job serializer: JSON, never pickle (whoever can write to Redis must not run code)."""
    return json.dumps(value, separators=(",", ":"), default=str).encode()


def loads(data: bytes) -> Any:
    """arq job deserializer (the inverse of :func:`dumps`)."""
    return json.loads(data)


def redis_settings(url: str, *, timeout_s: float = 1.0, retries: int = 0) -> RedisSettings:
    """arq's connection settings for ``url``, failing fast (a webhook must answer in time)."""
    settings = RedisSettings.from_dsn(url)
    settings.conn_timeout = max(1, int(timeout_s))
    settings.conn_retries = retries
    return settings


async def open_pool(url: str, *, timeout_s: float = 1.0, retries: int = 0) -> ArqRedis:
    """An arq pool using the JSON serializer on ``url``."""
    pool: ArqRedis = await create_pool(
        redis_settings(url, timeout_s=timeout_s, retries=retries),
        job_serializer=dumps,
        job_deserializer=loads,
    )
    return pool
