"""Only transient failures are retried, later each time, and never sooner than GitHub asks."""

from __future__ import annotations

import psycopg
import pytest
import redis.exceptions
from arq import Retry

from app.adapters.github.errors import GitHubError, GitHubTransient
from worker.jobs import _retrying, backoff


def test_backoff_doubles_from_five_seconds_up_to_ten_minutes() -> None:
    assert [backoff(n) for n in (1, 2, 3, 4)] == [5.0, 10.0, 20.0, 40.0]
    assert backoff(20) == 600.0
    assert backoff(3, base_s=0.05) == pytest.approx(0.2)


async def _fail(error: BaseException) -> None:
    raise error


@pytest.mark.parametrize(
    ("error", "defer_s"),
    [
        (GitHubTransient("502 Bad Gateway", status=502), 20.0),
        (GitHubTransient("secondary rate limit", status=403, retry_after=90.0), 90.0),
        (redis.exceptions.ConnectionError("refused"), 20.0),
        (psycopg.OperationalError("store down"), 20.0),
    ],
    ids=["5xx", "rate-limit-waits-as-asked", "redis", "store"],
)
async def test_transient_failures_become_retries_with_backoff(
    error: BaseException, defer_s: float
) -> None:
    with pytest.raises(Retry) as caught:
        await _retrying({"job_try": 3}, _fail(error))

    assert caught.value.defer_score == int(defer_s * 1000)


@pytest.mark.parametrize(
    "error", [GitHubError("404 Not Found", status=404), ValueError("a bug")], ids=["4xx", "bug"]
)
async def test_other_failures_are_not_retried(error: Exception) -> None:
    with pytest.raises(type(error)):
        await _retrying({"job_try": 1}, _fail(error))
