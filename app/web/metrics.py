"""``GET /metrics``: the web's own counters and, read from Redis at scrape time, the workers'."""

from __future__ import annotations

import asyncio
import hmac
import math
from collections.abc import Iterator
from typing import Any

import structlog
from litestar import Request, Response, get
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from app.adapters.metrics_sink import WorkerMetrics, read_worker_metrics
from app.settings import Settings
from app.web.counters import WebMetrics
from app.web.state import QueueUnavailable, web_state

__all__ = ["CONTENT_TYPE", "METRICS_PATH", "exposition", "metrics", "token_problem"]

log = structlog.get_logger(__name__)

METRICS_PATH = "/metrics"
#: The Prometheus text format every Prometheus version reads (Litestar adds the charset).
CONTENT_TYPE = "text/plain; version=0.0.4"
_REDIS_ERRORS = (QueueUnavailable, RedisError, OSError, TimeoutError)


@get(METRICS_PATH, include_in_schema=False)
async def metrics(request: Request[Any, Any, Any]) -> Response[Any]:
    """The Prometheus exposition; with ``DBARCH_METRICS_TOKEN`` set, only for its bearer.

    Without Redis it still answers, with the web's counters and ``dbarch_redis_up 0``.
    """
    web = web_state(request.app)
    problem = token_problem(web.settings, request.headers.get("authorization"))
    if problem is not None:
        return Response(
            {"error": problem},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    workers: WorkerMetrics | None
    try:
        pool = await web.queue.connect()
        async with asyncio.timeout(web.queue.timeout_s):
            workers = await read_worker_metrics(pool)
    except _REDIS_ERRORS as err:
        log.debug("metrics.redis_unavailable", error=type(err).__name__)
        workers = None
    return Response(exposition(web.metrics, workers), media_type=CONTENT_TYPE)


def token_problem(settings: Settings, authorization: str | None) -> str | None:
    """Why a scrape may not read the metrics (what to do about it), or None if it may."""
    if settings.metrics_token is None:
        return None
    expected = settings.metrics_token.get_secret_value().encode()
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return (
            "DBARCH_METRICS_TOKEN is set, so /metrics needs `Authorization: Bearer <token>`: "
            "give Prometheus the token (scrape config `authorization: {credentials: …}`)"
        )
    if not hmac.compare_digest(given.strip().encode(), expected):
        return "the bearer token is not DBARCH_METRICS_TOKEN: give Prometheus the current one"
    return None


def exposition(web: WebMetrics, workers: WorkerMetrics | None) -> bytes:
    """The text exposition: ``web``'s registry, then the workers' facts (None: Redis is down)."""
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(_WorkerCollector(workers))
    return generate_latest(web.registry) + generate_latest(scrape)


class _WorkerCollector(Collector):
    """The families built from one :class:`WorkerMetrics` snapshot."""

    def __init__(self, workers: WorkerMetrics | None) -> None:
        self.workers = workers

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "dbarch_redis_up", "Whether Redis answered this scrape (1) or not (0)."
        )
        up.add_metric([], 0 if self.workers is None else 1)
        yield up
        if self.workers is None:
            return
        yield from _worker_families(self.workers)


def _worker_families(workers: WorkerMetrics) -> Iterator[Metric]:
    depth = GaugeMetricFamily(
        "dbarch_queue_depth",
        "Jobs in each arq queue: waiting, deferred for a retry, or running.",
        labels=["queue"],
    )
    for queue, count in sorted(workers.queue_depth.items()):
        depth.add_metric([queue], count)
    yield depth
    jobs = CounterMetricFamily(
        "dbarch_jobs",
        "Worker job runs by job and outcome (done, retried, failed).",
        labels=["job", "outcome"],
    )
    for (job, outcome), count in sorted(workers.jobs.items()):
        jobs.add_metric([job, outcome], count)
    yield jobs
    yield HistogramMetricFamily(
        "dbarch_audit_duration_seconds",
        "How long audits took (those that finished, done or failed).",
        buckets=[(_le(bound), count) for bound, count in workers.audit_buckets],
        sum_value=workers.audit_sum,
    )
    prs = CounterMetricFamily(
        "dbarch_prs_opened",
        "Pull requests audits opened (dry_run=true: would have opened, in a dry run).",
        labels=["dry_run"],
    )
    prs.add_metric(["false"], workers.prs.get("opened", 0))
    prs.add_metric(["true"], workers.prs.get("would_open", 0))
    yield prs
    rate = GaugeMetricFamily(
        "dbarch_github_rate_limit_remaining",
        "GitHub API requests left in the rate-limit window, as last seen per installation "
        "(installation=app: the App's own calls).",
        labels=["installation"],
    )
    for installation, left in sorted(workers.rate_remaining.items()):
        rate.add_metric([installation], left)
    yield rate


def _le(bound: float) -> str:
    """A bucket bound as prometheus_client writes its own (``5.0``, ``+Inf``)."""
    return "+Inf" if math.isinf(bound) else repr(float(bound))
