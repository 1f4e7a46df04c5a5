"""The arq jobs: deliveries and schedule crons (events queue), audits (audits queue)."""
# Long module: arq resolves jobs by function in one module; each job is a thin call into flows.

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import psycopg
import redis.exceptions
import structlog
from arq import Retry
from arq.connections import ArqRedis

from app.adapters.github.client import installation_client
from app.adapters.github.errors import GitHubError, GitHubTransient
from app.adapters.github.local import LocalReader
from app.adapters.github.models import RepoRef
from app.adapters.github.outbox import OutboxEffects
from app.adapters.github.repo import Effects, GitHubRepo, RepoReader
from app.adapters.queue import AUDIT_JOB, AUDITS_QUEUE, audit_job_id
from app.adapters.slow_statements import SlowStatements
from app.bot.commands.ask import AskCommand
from app.bot.repo_config import CONFIG_PATH
from app.engine.model import Query
from app.flows.activity import sample_targets
from app.flows.ask import AskDeps, answer
from app.flows.audit_repository import AuditDeps, abandon, audit_repository
from app.flows.deliveries import DeliveryDeps, handle
from app.flows.feedback import FeedbackDeps
from app.flows.requests import AuditRequest
from app.flows.schedules import fire, refresh
from app.settings import Settings
from worker.resilient import REDIS_DOWN

__all__ = [
    "RedisMemo",
    "audit_job",
    "delivery_job",
    "github_for",
    "prune_inbox",
    "refresh_schedules",
    "run_schedules",
    "sample_activity",
]

log = structlog.get_logger(__name__)
T = TypeVar("T")

#: Transient failures that a later try may not see: they become arq ``Retry`` with backoff.
_TRANSIENT = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    psycopg.OperationalError,
)
_LOCK_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
# Extend our lease; take the lock again if it is gone (expired, or Redis restarted empty);
# 0 when another job holds it.
_LOCK_RENEW = """
local holder = redis.call('get', KEYS[1])
if holder == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
if not holder then return redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) and 1 or 0 end
return 0
"""


#: Another audit of the repository holds the lock: look again after this long.
LOCK_WAIT_S = 30.0
#: Tries of an audit job (waiting for the lock counts): 80 waits of up to 30 s.
AUDIT_TRIES = 80
#: Room for an audit that hit its own deadline to report it before arq cancels the job.
AUDIT_GRACE_S = 300


def backoff(job_try: int, *, base_s: float = 5.0, cap_s: float = 600.0) -> float:
    """Exponential backoff for the ``job_try``-th try: 5 s, 10 s, 20 s … at most 10 min."""
    return float(min(cap_s, base_s * 2 ** max(0, job_try - 1)))


def _backoff(ctx: dict[str, Any]) -> float:
    """This try's delay; ``ctx["backoff_base_s"]`` shortens it in tests."""
    return backoff(ctx.get("job_try", 1), base_s=ctx.get("backoff_base_s", 5.0))


async def _retrying(ctx: dict[str, Any], work: Awaitable[T]) -> T:
    """Run ``work``; transient GitHub, Redis and store failures are retried later, others not."""
    try:
        return await work
    except GitHubTransient as err:
        defer = max(err.retry_after or 0.0, _backoff(ctx))
        log.warning("transient_github_failure", error=str(err), retry_in_s=defer)
        raise Retry(defer=defer) from err
    except _TRANSIENT as err:
        defer = _backoff(ctx)
        log.warning("transient_failure", error=type(err).__name__, retry_in_s=defer)
        raise Retry(defer=defer) from err


class RedisMemo:
    """:class:`app.flows.requests.Memo` on Redis, shared by every worker process."""

    def __init__(self, redis: ArqRedis) -> None:
        self._redis = redis

    async def get(self, key: str) -> str | None:
        """The value, or ``None``."""
        value = await self._redis.get(key)
        return value.decode() if isinstance(value, bytes) else value

    async def set(self, key: str, value: str, ttl_s: int) -> None:
        """Remember ``value`` for ``ttl_s`` seconds."""
        await self._redis.set(key, value, ex=ttl_s)


@asynccontextmanager
async def github_for(
    ctx: dict[str, Any], repo: RepoRef
) -> AsyncIterator[tuple[RepoReader, Effects]]:
    """The repository on GitHub with an installation token, or local files and the outbox.

    One HTTP connection serves the whole job (githubkit opens one per request otherwise).
    """
    settings: Settings = ctx["settings"]
    if settings.has_app_credentials:
        gh = installation_client(settings, repo.installation_id, repo.name, cache=ctx["gh_cache"])
        async with gh:
            real = GitHubRepo(gh, repo, bot_login=_bot(settings))
            if settings.dry_run:  # reports still go to GitHub; changes go to the outbox
                yield (
                    real,
                    OutboxEffects(settings.outbox, repo, report_to=real, bot_login=_bot(settings)),
                )
            else:
                yield real, real
        return
    outbox = OutboxEffects(settings.outbox, repo, bot_login=_bot(settings))
    root = settings.local_repo_dir or Path.cwd()
    # Plans read only real pull requests; the outbox decides "would open" or "would update".
    yield LocalReader(root), outbox


def _bot(settings: Settings) -> str:
    return f"{settings.github_app_slug}[bot]"


def _embed(ctx: dict[str, Any]) -> Callable[[Sequence[str]], Awaitable[list[list[float]]]] | None:
    embedder = ctx.get("embedder")
    return None if embedder is None else embedder.embed


def _feedback(ctx: dict[str, Any]) -> FeedbackDeps | None:
    """Reviewer memory for deliveries; None without a store."""
    memory = ctx.get("memory")
    if memory is None:
        return None
    return FeedbackDeps(memory=memory, embed=_embed(ctx), prose=ctx.get("claude"))


def _asker(ctx: dict[str, Any]) -> Callable[[RepoReader, AskCommand], Awaitable[str]]:
    """`/ask`, answered with the operator's targets and Claude when configured."""
    deps = AskDeps(settings=ctx["settings"], drafter=ctx.get("claude"))

    async def ask(reader: RepoReader, command: AskCommand) -> str:
        return await answer(deps, reader, command)

    return ask


# ---------------------------------------------------------------------- events queue


async def delivery_job(ctx: dict[str, Any], job: dict[str, Any]) -> str:
    """Handle one webhook delivery; mark it done in the inbox."""
    structlog.contextvars.bind_contextvars(
        delivery_id=job.get("delivery_id"),
        github_event=job.get("event"),
        action=job.get("action"),
        installation_id=job.get("installation_id"),
        repository=job.get("repository"),
    )
    try:
        redis_pool: ArqRedis = ctx["redis"]

        async def enqueue_audit(request: AuditRequest) -> bool:
            return await _enqueue_audit(redis_pool, request)

        async with AsyncExitStack() as stack:
            pairs: dict[RepoRef, tuple[RepoReader, Effects]] = {}

            async def github(repo: RepoRef) -> tuple[RepoReader, Effects]:
                if repo not in pairs:
                    pairs[repo] = await stack.enter_async_context(github_for(ctx, repo))
                return pairs[repo]

            deps = DeliveryDeps(
                bot_login=_bot(ctx["settings"]),
                github=github,
                enqueue_audit=enqueue_audit,
                memo=RedisMemo(redis_pool),
                lifecycle=ctx.get("store"),
                feedback=_feedback(ctx),
                ask=_asker(ctx),
            )
            try:
                outcome = await _retrying(ctx, handle(job, deps))
            except GitHubError as err:  # permanent: transient ones became a Retry above
                await _give_up(ctx, job, err)
                raise
        store = ctx.get("store")
        if store is not None:
            await _retrying(ctx, store.finish_delivery(str(job["delivery_id"]), outcome))
        log.info("delivery_handled", outcome=outcome)
        return outcome
    finally:
        structlog.contextvars.clear_contextvars()


#: The inbox keeps this much of a permanent failure's message as the delivery's outcome.
OUTCOME_CHARS = 500


async def _give_up(ctx: dict[str, Any], job: dict[str, Any], err: GitHubError) -> None:
    """A permanent GitHub refusal: the delivery is done (the inbox's recovery must not enqueue
    it again), its outcome says what GitHub answered and what to do."""
    outcome = f"failed: GitHub {err.status or 'error'}: {err.message}"[:OUTCOME_CHARS]
    log.error("delivery_failed", status=err.status, error=err.message)
    store = ctx.get("store")
    if store is not None:
        await _retrying(ctx, store.finish_delivery(str(job["delivery_id"]), outcome))


#: Finished deliveries are kept past GitHub's redelivery window (3 days; 7 on GHES), so a
#: late redelivery is still recognised as a duplicate.
INBOX_KEEP_S = 8 * 24 * 3600


async def prune_inbox(ctx: dict[str, Any]) -> int:
    """Daily: forget finished deliveries older than :data:`INBOX_KEEP_S` (arq cron)."""
    store = ctx.get("store")
    if store is None:
        return 0
    pruned: int = await store.prune_deliveries(INBOX_KEEP_S)
    log.info("inbox_pruned", deliveries=pruned)
    return pruned


async def _enqueue_audit(redis_pool: ArqRedis, request: AuditRequest) -> bool:
    """Queue the audit ``request`` asks for; False when its job id is taken (queued already)."""
    queued = await redis_pool.enqueue_job(
        AUDIT_JOB,
        request.to_job(),
        _job_id=audit_job_id(request.full_name, request.trigger_key),
        _queue_name=AUDITS_QUEUE,
    )
    return queued is not None


# ---------------------------------------------------------------------- schedules (events queue)

#: A minute's scan lock outlives the minute, so a late second worker finds it.
SCHEDULE_LOCK_S = 120
#: The hourly refresh reads configs not read for this long (an audit reads one too): each
#: repository costs a few GitHub calls, so a large installation spreads them over six runs.
SCHEDULE_REFRESH_AFTER_S = 6 * 3600
#: The hourly refresh's lock: one worker per hour does it.
SCHEDULE_REFRESH_LOCK_S = 50 * 60
#: At most this many configs are read per refresh (about three GitHub calls each).
SCHEDULE_REFRESH_LIMIT = 1000


async def _first_to(redis: ArqRedis, key: str, ttl_s: int) -> bool:
    """Whether this worker is the first to take ``key`` (``SET NX EX``); nobody releases it."""
    return bool(await redis.set(key, "1", nx=True, ex=ttl_s))


def _clock(ctx: dict[str, Any], now: datetime | None) -> datetime:
    """``now``, else the time arq scheduled this cron job for (its ``score``), else now."""
    if now is not None:
        return now
    score = ctx.get("score")
    return datetime.fromtimestamp(score / 1000, UTC) if score else datetime.now(UTC)


async def run_schedules(ctx: dict[str, Any], *, now: datetime | None = None) -> int:
    """Every minute: enqueue the audits whose schedule fires now (arq cron); how many.

    ``now`` (an aware time) replaces the clock in tests. See ``app.flows.schedules``.
    """
    store = ctx.get("store")
    if store is None:
        return 0
    when = _clock(ctx, now)
    lock = f"dbarch:lock:schedules:{when.astimezone(UTC):%Y-%m-%dT%H:%M}"
    if not await _first_to(ctx["redis"], lock, SCHEDULE_LOCK_S):
        log.debug("schedules_scanned_elsewhere")
        return 0
    redis_pool: ArqRedis = ctx["redis"]

    async def enqueue_audit(request: AuditRequest) -> bool:
        return await _enqueue_audit(redis_pool, request)

    return len(await fire(store, enqueue_audit, when))


async def refresh_schedules(ctx: dict[str, Any], *, now: datetime | None = None) -> int:
    """Hourly: read the configs nobody read for six hours and store their schedules (arq cron).

    Needs the GitHub App (a local run has no installed repositories to schedule).
    Returns how many configs were read.
    """
    store, settings = ctx.get("store"), ctx["settings"]
    if store is None or not settings.has_app_credentials:
        return 0
    when = _clock(ctx, now)
    lock = f"dbarch:lock:schedules-refresh:{when.astimezone(UTC):%Y-%m-%dT%H}"
    if not await _first_to(ctx["redis"], lock, SCHEDULE_REFRESH_LOCK_S):
        return 0

    async def read_config(installation_id: int, full_name: str) -> str | None:
        owner, _, name = full_name.partition("/")
        async with github_for(ctx, RepoRef(installation_id, owner, name)) as (reader, _effects):
            info = await reader.repo_info()
            return await reader.file_text(CONFIG_PATH, info.default_branch)

    return await refresh(
        store,
        read_config,
        older_than_s=SCHEDULE_REFRESH_AFTER_S,
        limit=SCHEDULE_REFRESH_LIMIT,
    )


#: A minute's activity lock outlives the minute, so a late second worker finds it.
ACTIVITY_LOCK_S = 120


async def sample_activity(ctx: dict[str, Any], *, now: datetime | None = None) -> int:
    """Every minute: remember each target's long-running statements (arq cron); how many.

    Off without a store, without targets, or with ``DBARCH_ACTIVITY_MIN_MS=0``. One worker
    per minute looks (a Redis lock). See ``app.flows.activity``.
    """
    store, settings = ctx.get("store"), ctx["settings"]
    if store is None or not settings.targets or settings.activity_min_ms <= 0:
        return 0
    when = _clock(ctx, now)
    lock = f"dbarch:lock:activity:{when.astimezone(UTC):%Y-%m-%dT%H:%M}"
    if not await _first_to(ctx["redis"], lock, ACTIVITY_LOCK_S):
        return 0
    seen = await sample_targets(
        settings.targets, SlowStatements(store), min_ms=settings.activity_min_ms
    )
    return sum(seen.values())


def _slow_statements(ctx: dict[str, Any]) -> Callable[[str], Awaitable[tuple[Query, ...]]] | None:
    """What an audit calls for its target's remembered slow statements (None: no store)."""
    store = ctx.get("store")
    if store is None:
        return None
    remembered = SlowStatements(store)

    async def recent(target: str) -> tuple[Query, ...]:
        try:
            return await remembered.recent(target)
        except psycopg.Error as err:  # the audit's own looks still find what runs now
            log.warning("slow_statements_unread", error=type(err).__name__)
            return ()

    return recent


def _schedule_recorder(
    ctx: dict[str, Any],
) -> Callable[[str, str | None, str], Awaitable[None]] | None:
    """What an audit calls with the config's schedule: stored, best effort (None: no store)."""
    store = ctx.get("store")
    if store is None:
        return None

    async def remember(full_name: str, schedule: str | None, timezone: str) -> None:
        try:
            await store.set_schedule(full_name, schedule, timezone)
        except psycopg.Error as err:  # the hourly refresh reads it again
            log.warning("schedule_not_stored", error=type(err).__name__)

    return remember


# ---------------------------------------------------------------------- audits queue


class LockLost(Exception):
    """The repository's audit lock expired or went to another job while this audit ran."""


@asynccontextmanager
async def repository_lock(redis: ArqRedis, repository: str, lease_s: float) -> AsyncIterator[bool]:
    """Hold the repository's audit lock (``True``) or learn that another job holds it.

    The lock is a lease of ``lease_s``, renewed every quarter of it while the block runs, so
    a dead worker's lock is free again within one lease. A renewal that finds the lock taken
    by another job cancels the block, which then raises :class:`LockLost`: it publishes
    nothing more. One that cannot reach Redis tries again at the next quarter; one that finds
    the lock gone (expired meanwhile, or a restarted Redis) takes it again if nobody else did.
    """
    key, token = f"dbarch:lock:audit:{repository}", secrets.token_hex(8)
    lease_ms = int(lease_s * 1000)
    if not await redis.set(key, token, nx=True, px=lease_ms):
        yield False
        return
    owner = asyncio.current_task()
    lost = False

    async def renew() -> None:
        nonlocal lost
        while True:
            await asyncio.sleep(lease_s / 4)
            try:
                kept = await cast(
                    Awaitable[Any], redis.eval(_LOCK_RENEW, 1, key, token, str(lease_ms))
                )
            except REDIS_DOWN as err:
                log.warning("audit_lock_not_renewed", error=type(err).__name__)
                continue
            if not kept:
                lost = True
                log.warning("audit_lock_lost")
                if owner is not None:
                    owner.cancel()
                return

    renewer = asyncio.create_task(renew())
    try:
        yield True
    except asyncio.CancelledError:
        if lost and owner is not None:
            owner.uncancel()
            raise LockLost(f"another job holds the audit lock of {repository} now") from None
        raise
    finally:
        renewer.cancel()
        with suppress(asyncio.CancelledError):
            await renewer
        if not lost:
            with suppress(*REDIS_DOWN):  # it expires within a lease anyway
                await cast(Awaitable[Any], redis.eval(_LOCK_RELEASE, 1, key, token))


async def audit_job(ctx: dict[str, Any], request_data: dict[str, Any]) -> dict[str, Any]:
    """Audit one repository, never two of the same repository at once."""
    request = AuditRequest.from_job(request_data)
    settings: Settings = ctx["settings"]
    structlog.contextvars.bind_contextvars(
        repository=request.full_name, trigger=request.trigger, job_id=ctx.get("job_id")
    )
    try:
        return await _audit_locked(ctx, request, settings)
    except LockLost:
        # Another job audits this repository now (ours lapsed): it reports; we try later.
        log.warning("audit_stopped_lock_lost")
        raise Retry(defer=_lock_wait_s(settings)) from None
    finally:
        structlog.contextvars.clear_contextvars()


async def _audit_locked(
    ctx: dict[str, Any], request: AuditRequest, settings: Settings
) -> dict[str, Any]:
    """The audit under the repository's lock (raises LockLost if the lock goes meanwhile)."""
    lease = settings.worker_lease_seconds
    async with repository_lock(ctx["redis"], request.full_name, lease) as held:
        repo = RepoRef(request.installation_id, request.owner, request.name)
        async with github_for(ctx, repo) as (reader, effects):
            deps = AuditDeps(
                settings=settings,
                reader=reader,
                effects=effects,
                memo=RedisMemo(ctx["redis"]),
                outbox=OutboxEffects(
                    settings.outbox,
                    repo,
                    report_to=None if effects.dry_run else effects,
                    bot_login=_bot(settings),
                ),
                run_audit=ctx.get("run_audit"),
                record=_recorder(ctx, started_at=datetime.now(UTC)),
                memory=ctx.get("memory"),
                embed=_embed(ctx),
                prose=ctx.get("claude"),
                remember_schedule=_schedule_recorder(ctx),
                slow_statements=_slow_statements(ctx),
            )
            if not held:
                return await _wait_for_lock(ctx, request, deps)
            outcome = await _retrying(ctx, audit_repository(request, deps))
        return {
            "status": outcome.status,
            "title": outcome.title,
            "conclusion": outcome.conclusion,
            "results": dict(outcome.results),
            "dry_run": outcome.dry_run,
        }


async def _wait_for_lock(
    ctx: dict[str, Any], request: AuditRequest, deps: AuditDeps
) -> dict[str, Any]:
    """Try again later; on the last try, say on the check run that it gave up."""
    if ctx.get("job_try", 1) < ctx.get("max_tries", AUDIT_TRIES):
        log.info("audit_waits_for_lock")
        raise Retry(defer=_lock_wait_s(ctx["settings"]))
    await _retrying(
        ctx,
        abandon(
            request,
            deps,
            "another audit of this repository kept running for longer than this one could wait",
            "`/audit` again once the running audit has finished",
        ),
    )
    return {"status": "abandoned"}


def _lock_wait_s(settings: Settings) -> float:
    """How long an audit waits before it looks at a held lock again (at most a lease)."""
    return min(LOCK_WAIT_S, settings.worker_lease_seconds)


def _recorder(
    ctx: dict[str, Any], *, started_at: datetime | None = None
) -> Callable[[AuditRequest, str, dict[str, Any], dict[str, Any] | None], Awaitable[None]] | None:
    store = ctx.get("store")
    if store is None:
        return None

    async def record(
        request: AuditRequest, status: str, summary: dict[str, Any], report: dict[str, Any] | None
    ) -> None:
        audit_id = await store.start_audit(
            request.full_name,
            request.installation_id,
            request.trigger,
            request.requested_by,
            bool(summary.get("dry_run", False)),
            started_at=started_at,
        )
        # The store knows done / failed / timed_out; the finer outcome stays in the summary.
        stored = status if status in ("done", "timed_out") else "failed"
        await store.finish_audit(audit_id, stored, summary | {"outcome": status}, report)

    return record
