"""arq worker settings: a quick events worker and a slow audits worker, and a runner for both."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import structlog
from arq import Worker
from arq.cron import CronJob, cron
from arq.worker import func

from app.adapters.embed import Embedder
from app.adapters.model_files import ModelError, verify_model_dir
from app.adapters.queue import (
    AUDIT_JOB,
    AUDITS_QUEUE,
    DELIVERY_JOB,
    EVENTS_QUEUE,
    dumps,
    loads,
    redis_settings,
)
from app.settings import Settings, get_settings
from worker.jobs import (
    AUDIT_GRACE_S,
    AUDIT_TRIES,
    audit_job,
    delivery_job,
    prune_inbox,
    refresh_schedules,
    run_schedules,
    sample_activity,
)
from worker.metrics import instrumented
from worker.resilient import ResilientWorker, close_worker, supervise

__all__ = ["build_workers", "close_worker", "run_workers", "worker_makers"]

log = structlog.get_logger(__name__)

#: A delivery job reacts, checks permissions, comments and enqueues; an `/ask` also asks
#: Claude and the target (bounded by ``app.flows.ask.ASK_DEADLINE_S``).
DELIVERY_TIMEOUT_S = 180
#: With backoff capped at 10 minutes, about 2.5 hours of GitHub, Redis or store outage.
DELIVERY_TRIES = 20


def _startup(settings: Settings, store_dsn: str | None, embedder: Embedder | None) -> Any:
    async def startup(ctx: dict[str, Any]) -> None:
        from app.adapters.github.client import redis_token_cache
        from app.adapters.llm import claude_from
        from app.adapters.memory import Memory
        from app.adapters.store import open_store

        ctx["settings"] = settings
        ctx["gh_cache"] = redis_token_cache(ctx["redis"])
        dsn = store_dsn or (settings.store_dsn.get_secret_value() if settings.store_dsn else None)
        ctx["store"] = store = await open_store(dsn) if dsn else None
        ctx["memory"] = Memory(store) if store is not None else None
        ctx.setdefault("embedder", embedder)
        ctx["claude"] = claude_from(settings)
        log.info(
            "worker_started",
            store=store is not None,
            embeddings=ctx["embedder"] is not None,
            claude=ctx["claude"] is not None,
        )

    return startup


async def _shutdown(ctx: dict[str, Any]) -> None:
    store = ctx.get("store")
    if store is not None:
        await store.close()
    claude = ctx.get("claude")
    if claude is not None:
        await claude.aclose()


def _embedder(settings: Settings) -> Embedder | None:
    """The embedding model both workers share, or None (with a warning) when it is missing.

    Reviewer memory then still records feedback and honours ignores, without similarity.
    """
    model_dir = settings.embedding_model_dir
    try:
        verify_model_dir(model_dir)
    except ModelError as err:
        log.warning("embeddings_off", reason=str(err))
        return None
    return Embedder(model_dir)


def _crons() -> list[CronJob]:
    """The events worker's housekeeping, the repositories' schedules (app.flows.schedules) and
    the targets' slow statements (app.flows.activity)."""
    return [
        cron(prune_inbox, hour={4}, minute={17}, timeout=300),
        # Every minute, at second 0; a scan takes one store query and a few enqueues.
        cron(run_schedules, timeout=50),
        # Hourly, off the full hour that schedules favour.
        cron(refresh_schedules, minute={41}, timeout=45 * 60),
        # Every minute at second 30: one short look at each target's pg_stat_activity.
        cron(sample_activity, second={30}, timeout=50),
    ]


def _function(
    job: Callable[..., Any],
    name: str,
    kind: str,
    timeout_s: float,
    tries: int,
    *,
    durations: bool = False,
) -> Any:
    """An arq function for ``job`` with its timeout and tries, publishing its metrics."""
    measured = instrumented(
        job, job=kind, max_tries=tries, timeout_s=timeout_s, durations=durations
    )
    return func(measured, name=name, timeout=timeout_s, max_tries=tries)


def build_workers(settings: Settings | None = None, **options: Any) -> tuple[Worker, Worker]:
    """The events worker and the audits worker, sharing settings and the store DSN.

    ``options`` are :func:`worker_makers`' (``ctx`` is merged into both workers' context:
    tests pass ``run_audit`` there).
    """
    make_events, make_audits = worker_makers(settings, **options)
    return make_events(), make_audits()


def worker_makers(
    settings: Settings | None = None,
    *,
    store_dsn: str | None = None,
    burst: bool = False,
    poll_delay_s: float = 0.5,
    handle_signals: bool = True,
    ctx: dict[str, Any] | None = None,
) -> tuple[Callable[[], Worker], Callable[[], Worker]]:
    """Makers of new events and audits workers (a supervisor makes a new one after an outage).

    The embedding model is loaded once and shared by every worker they make.
    """
    settings = settings or get_settings()
    embedder = None if ctx and "embedder" in ctx else _embedder(settings)
    common: dict[str, Any] = {
        "redis_settings": redis_settings(settings.redis_url, timeout_s=5, retries=5),
        "job_serializer": dumps,
        "job_deserializer": loads,
        "on_startup": _startup(settings, store_dsn, embedder),
        "on_shutdown": _shutdown,
        "burst": burst,
        "poll_delay": poll_delay_s,
        "handle_signals": handle_signals,
        "retry_jobs": True,
        "lease_s": settings.worker_lease_seconds,
    }
    audit_timeout_s = settings.audit_timeout_seconds + AUDIT_GRACE_S

    def events() -> Worker:
        return ResilientWorker(
            functions=[
                _function(
                    delivery_job, DELIVERY_JOB, "delivery", DELIVERY_TIMEOUT_S, DELIVERY_TRIES
                )
            ],
            queue_name=EVENTS_QUEUE,
            cron_jobs=[] if burst else _crons(),
            max_jobs=20,
            # No kept results: a delivery's job id must be free again if its job failed for
            # good, so the inbox recovery (or a redelivery) can queue it once more. Done
            # deliveries are recognised by the inbox, not by arq.
            keep_result=0,
            ctx=dict(ctx or {}),
            **common,
        )

    def audits() -> Worker:
        return ResilientWorker(
            functions=[
                _function(
                    audit_job, AUDIT_JOB, "audit", audit_timeout_s, AUDIT_TRIES, durations=True
                )
            ],
            queue_name=AUDITS_QUEUE,
            max_jobs=2,
            keep_result=24 * 3600,
            ctx=dict(ctx or {}),
            **common,
        )

    return events, audits


async def run_workers(settings: Settings | None = None, *, store_dsn: str | None = None) -> None:
    """Run both workers until cancelled (``dbarchitect worker``, ``dbarchitect run``).

    Each is supervised: an outage of Redis or the store at startup makes a new one later.
    An unexpected error in either ends both and propagates (the process then exits non-zero).
    """
    make_events, make_audits = worker_makers(settings, store_dsn=store_dsn, handle_signals=False)
    tasks = [
        asyncio.create_task(supervise(make_events, queue=EVENTS_QUEUE)),
        asyncio.create_task(supervise(make_audits, queue=AUDITS_QUEUE)),
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
