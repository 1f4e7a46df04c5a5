"""Worker facts for ``/metrics``, kept in Redis: job outcomes, audit durations, PRs, rate limits.

The workers are other processes than the web (and there may be several), so what they see is
written to a few Redis hashes with ``HINCRBY`` (counters survive a worker restart and add up
across workers), and ``GET /metrics`` on the web reads them at scrape time. Writing is best
effort: a Redis failure is logged at debug and never fails a job.

Keys (all hashes):

- ``dbarch:metrics:jobs``: ``<job>:<outcome>`` → count (outcome: done, retried, failed).
- ``dbarch:metrics:audit_seconds``: ``le=<bound>`` → audits that took at most ``bound`` seconds
  and more than the bound before it (``le=+Inf`` past the last), and their ``sum``.
- ``dbarch:metrics:prs``: ``opened`` and ``would_open`` (dry runs) → count.
- ``dbarch:metrics:github_rate``: installation id (``app`` for the App's own calls) →
  ``"<remaining> <unix time>"``; values older than :data:`RATE_TTL_S` are not shown.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import structlog
from redis.exceptions import RedisError

from app.adapters.queue import AUDITS_QUEUE, EVENTS_QUEUE

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "AUDIT_BUCKETS",
    "AUDIT_SECONDS_KEY",
    "JOBS_KEY",
    "JOB_OUTCOMES",
    "PRS_KEY",
    "QUEUES",
    "RATE_KEY",
    "RATE_TTL_S",
    "JobFacts",
    "JobOutcome",
    "MetricsSink",
    "WorkerMetrics",
    "bucket_field",
    "parse_worker_metrics",
    "read_worker_metrics",
]

log = structlog.get_logger(__name__)

JOBS_KEY = "dbarch:metrics:jobs"
AUDIT_SECONDS_KEY = "dbarch:metrics:audit_seconds"
PRS_KEY = "dbarch:metrics:prs"
RATE_KEY = "dbarch:metrics:github_rate"
#: The arq queues whose depth ``/metrics`` shows (arq keeps one sorted set per queue name).
QUEUES = (EVENTS_QUEUE, AUDITS_QUEUE)
#: Upper bounds (seconds) of the audit duration histogram: the demo audit takes about 10 s,
#: the default deadline is 30 minutes.
AUDIT_BUCKETS: tuple[float, ...] = (5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600)
#: A rate limit nobody has seen for this long is no longer shown (nor kept, once all are old).
RATE_TTL_S = 3600

JobOutcome = Literal["done", "retried", "failed"]
JOB_OUTCOMES: tuple[JobOutcome, ...] = ("done", "retried", "failed")
_REDIS_ERRORS = (RedisError, OSError, TimeoutError)


def bucket_field(seconds: float) -> str:
    """The hash field of the one bucket ``seconds`` falls in: ``le=<smallest bound ≥ it>``.

    >>> bucket_field(3.2), bucket_field(10), bucket_field(4000)
    ('le=5', 'le=10', 'le=+Inf')
    """
    for bound in AUDIT_BUCKETS:
        if seconds <= bound:
            return f"le={_bound(bound)}"
    return "le=+Inf"


def _bound(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else f"{bound:g}"


@dataclass(frozen=True, slots=True)
class JobFacts:
    """What one run of one job contributes to the metrics."""

    job: str
    """``delivery``, ``audit``, … (a small fixed set: it becomes a label)."""
    outcome: JobOutcome
    audit_seconds: float | None = None
    """How long the audit took, for the duration histogram (None: not an audit that ran)."""
    prs_opened: int = 0
    prs_would_open: int = 0
    rate_remaining: Mapping[str, int] = field(default_factory=dict)
    """The GitHub rate limit left that the job's calls saw last, by installation."""


class MetricsSink:
    """Writes :class:`JobFacts` to Redis in one transaction; never raises."""

    def __init__(self, redis: Redis, *, timeout_s: float = 1.0) -> None:
        self._redis = redis
        self._timeout_s = timeout_s

    async def record(self, facts: JobFacts, *, now: float | None = None) -> bool:
        """Add ``facts`` to the counters; False (logged at debug) if Redis failed."""
        stamp = time.time() if now is None else now
        pipe = self._redis.pipeline(transaction=True)
        pipe.hincrby(JOBS_KEY, f"{facts.job}:{facts.outcome}", 1)
        if facts.audit_seconds is not None:
            seconds = max(0.0, facts.audit_seconds)
            pipe.hincrby(AUDIT_SECONDS_KEY, bucket_field(seconds), 1)
            pipe.hincrbyfloat(AUDIT_SECONDS_KEY, "sum", seconds)
        if facts.prs_opened:
            pipe.hincrby(PRS_KEY, "opened", facts.prs_opened)
        if facts.prs_would_open:
            pipe.hincrby(PRS_KEY, "would_open", facts.prs_would_open)
        if facts.rate_remaining:
            values = {k: f"{v} {stamp:.0f}" for k, v in facts.rate_remaining.items()}
            pipe.hset(RATE_KEY, mapping=values)
            pipe.expire(RATE_KEY, RATE_TTL_S)
        try:
            async with asyncio.timeout(self._timeout_s):
                await pipe.execute()
        except _REDIS_ERRORS as err:
            log.debug("metrics.not_recorded", job=facts.job, error=type(err).__name__)
            return False
        return True


@dataclass(frozen=True, slots=True)
class WorkerMetrics:
    """What the workers published, as read at one scrape."""

    queue_depth: Mapping[str, int]
    """Jobs in each arq queue: waiting, deferred (retries) and running."""
    jobs: Mapping[tuple[str, str], int]
    """``(job, outcome)`` → count."""
    audit_buckets: tuple[tuple[float, int], ...]
    """Cumulative ``(upper bound, count)`` pairs, the last one ``(inf, count)``."""
    audit_sum: float
    audit_count: int
    prs: Mapping[str, int]
    """``opened`` and ``would_open`` → count (both always present)."""
    rate_remaining: Mapping[str, int]
    """Installation → rate limit left, seen within :data:`RATE_TTL_S`."""


async def read_worker_metrics(redis: Redis, *, now: float | None = None) -> WorkerMetrics:
    """Everything the workers published, read in one round trip.

    Raises:
        RedisError, OSError: Redis failed (the caller decides how to show that).
    """
    pipe = redis.pipeline(transaction=True)
    for queue in QUEUES:
        pipe.zcard(queue)
    for key in (JOBS_KEY, AUDIT_SECONDS_KEY, PRS_KEY, RATE_KEY):
        pipe.hgetall(key)
    *depths, jobs, audits, prs, rates = await pipe.execute()
    return parse_worker_metrics(
        dict(zip(QUEUES, (int(d) for d in depths), strict=True)),
        _text(jobs),
        _text(audits),
        _text(prs),
        _text(rates),
        now=time.time() if now is None else now,
    )


def _text(raw: Mapping[bytes | str, bytes | str]) -> dict[str, str]:
    return {_str(k): _str(v) for k, v in raw.items()}


def _str(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def parse_worker_metrics(
    queue_depth: Mapping[str, int],
    jobs: Mapping[str, str],
    audits: Mapping[str, str],
    prs: Mapping[str, str],
    rates: Mapping[str, str],
    *,
    now: float,
) -> WorkerMetrics:
    """The hashes as stored (decoded) → :class:`WorkerMetrics`; malformed fields are skipped."""
    job_counts: dict[tuple[str, str], int] = {}
    for name, value in jobs.items():
        job, sep, outcome = name.rpartition(":")
        count = _int(value)
        if sep and job and outcome in JOB_OUTCOMES and count is not None:
            job_counts[(job, outcome)] = count
    cumulative, running = [], 0
    for bound in (*AUDIT_BUCKETS, math.inf):
        running += _int(audits.get(f"le={_bound(bound)}")) or 0
        cumulative.append((float(bound), running))
    rate_left: dict[str, int] = {}
    for installation, value in rates.items():
        remaining, _, seen = value.partition(" ")
        left, stamp = _int(remaining), _float(seen)
        if left is not None and stamp is not None and now - stamp <= RATE_TTL_S:
            rate_left[installation] = left
    return WorkerMetrics(
        queue_depth=dict(queue_depth),
        jobs=job_counts,
        audit_buckets=tuple(cumulative),
        audit_sum=_float(audits.get("sum")) or 0.0,
        audit_count=running,  # every audit is in exactly one bucket
        prs={kind: _int(prs.get(kind)) or 0 for kind in ("opened", "would_open")},
        rate_remaining=rate_left,
    )


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _float(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None
