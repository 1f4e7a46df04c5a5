"""Metrics of the worker's jobs: outcome, audit duration, PRs opened, GitHub rate limit left."""

from __future__ import annotations

import functools
import time
from asyncio import CancelledError
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar, cast

from arq import Retry

from app.adapters.github.client import rate_limits_seen
from app.adapters.metrics_sink import JobFacts, JobOutcome, MetricsSink

__all__ = ["OPENED_PREFIX", "WOULD_OPEN", "instrumented", "job_outcome", "pull_requests"]

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

#: How an audit's results say that it opened a pull request (``opened #12``) or, in a dry
#: run, that it would have (see ``app.flows.audit_repository``).
OPENED_PREFIX = "opened #"
WOULD_OPEN = "would open (dry run)"
#: arq's timeout starts a moment before the job does: a cancellation this close to it is one.
_TIMEOUT_SLACK_S = 1.0


def instrumented(
    function: F,
    *,
    job: str,
    max_tries: int,
    timeout_s: float | None = None,
    durations: bool = False,
) -> F:
    """``function`` (an arq job), publishing one :class:`JobFacts` per run to Redis.

    Args:
        function: the job, ``(ctx, *args)``; ``ctx["redis"]`` is arq's pool (without it,
            nothing is published).
        job: the ``job`` label (``delivery``, ``audit``).
        max_tries: the job's ``max_tries`` in arq: a retry asked for on the last try is a
            failure (arq gives up when it picks the job again).
        timeout_s: the job's timeout in arq: a cancellation at that time is a failure;
            otherwise a cancelled job (a worker shutting down) is run again, so retried.
        durations: observe how long the job took in the audit duration histogram, when it
            finished (done or failed) and was not skipped (``{"status": "abandoned"}``).

    The job's result and exceptions pass through unchanged; publishing never raises.
    """

    @functools.wraps(function)
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        seen: dict[str, int] = {}
        token = rate_limits_seen.set(seen)
        started = time.monotonic()
        try:
            result = await function(ctx, *args, **kwargs)
        except (Exception, CancelledError) as exc:
            elapsed = time.monotonic() - started
            outcome = job_outcome(exc, ctx.get("job_try", 1), max_tries, elapsed, timeout_s)
            seconds = elapsed if durations and outcome == "failed" else None
            await _publish(ctx, JobFacts(job, outcome, seconds, rate_remaining=seen))
            raise
        finally:
            rate_limits_seen.reset(token)
        elapsed = time.monotonic() - started
        skipped = isinstance(result, Mapping) and result.get("status") == "abandoned"
        opened, would_open = pull_requests(result)
        facts = JobFacts(
            job,
            "done",
            elapsed if durations and not skipped else None,
            prs_opened=opened,
            prs_would_open=would_open,
            rate_remaining=seen,
        )
        await _publish(ctx, facts)
        return result

    return cast(F, run)


async def _publish(ctx: Mapping[str, Any], facts: JobFacts) -> None:
    redis = ctx.get("redis")
    if redis is not None:
        await MetricsSink(redis).record(facts)


def job_outcome(
    exc: BaseException | None,
    job_try: int,
    max_tries: int,
    elapsed_s: float = 0.0,
    timeout_s: float | None = None,
) -> JobOutcome:
    """What arq makes of a run that ended with ``exc`` (None: returned).

    >>> job_outcome(None, 1, 5), job_outcome(Retry(), 1, 5), job_outcome(Retry(), 5, 5)
    ('done', 'retried', 'failed')
    >>> job_outcome(ValueError(), 1, 5), job_outcome(CancelledError(), 1, 5, 180.0, 180.0)
    ('failed', 'failed')
    """
    if exc is None:
        return "done"
    if isinstance(exc, CancelledError):
        if timeout_s is not None and elapsed_s >= timeout_s - _TIMEOUT_SLACK_S:
            return "failed"
    elif not isinstance(exc, Retry):
        return "failed"
    return "retried" if job_try < max_tries else "failed"


def pull_requests(result: object) -> tuple[int, int]:
    """``(opened, would open)`` pull requests in an audit job's result (``results`` values).

    >>> pull_requests({"results": {"a": "opened #3", "b": WOULD_OPEN, "c": "updated #4"}})
    (1, 1)
    """
    if not isinstance(result, Mapping):
        return 0, 0
    results = result.get("results")
    if not isinstance(results, Mapping):
        return 0, 0
    said = [value for value in results.values() if isinstance(value, str)]
    return sum(s.startswith(OPENED_PREFIX) for s in said), sum(s == WOULD_OPEN for s in said)
