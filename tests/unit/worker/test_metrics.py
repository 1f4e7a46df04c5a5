"""Job metrics in the worker: outcomes as arq sees them, PRs counted from audit results."""

from __future__ import annotations

from asyncio import CancelledError
from typing import Any

import pytest
from arq import Retry

from app.adapters.github.client import rate_limits_seen
from app.flows.audit_repository import _said
from worker.metrics import instrumented, job_outcome, pull_requests


@pytest.mark.parametrize(
    ("exc", "job_try", "elapsed", "outcome"),
    [
        (None, 1, 0.0, "done"),
        (None, 5, 0.0, "done"),
        (Retry(defer=5), 1, 0.0, "retried"),
        (Retry(defer=5), 4, 0.0, "retried"),
        (Retry(defer=5), 5, 0.0, "failed"),  # arq gives up when it picks the job again
        (ValueError("boom"), 1, 0.0, "failed"),
        (CancelledError(), 1, 3.0, "retried"),  # a worker shutting down: run again
        (CancelledError(), 5, 3.0, "failed"),
        (CancelledError(), 1, 179.5, "failed"),  # arq's timeout
    ],
)
def test_outcome_is_what_arq_makes_of_the_run(
    exc: BaseException | None, job_try: int, elapsed: float, outcome: str
) -> None:
    assert job_outcome(exc, job_try, 5, elapsed, 180.0) == outcome


def test_without_a_timeout_a_cancelled_job_is_retried() -> None:
    assert job_outcome(CancelledError(), 1, 5, 10_000.0) == "retried"


def test_pull_requests_are_counted_from_the_flows_own_words() -> None:
    results = {
        "r1": _said("created", 12, False),
        "r2": _said("created", 13, False),
        "r3": _said("updated", 9, False),
        "r4": _said("created", 0, True),
        "r5": _said("updated", 0, True),
        "r6": _said("blocked", 4, False),
        "r7": "failed: GitHub refused",
    }

    assert pull_requests({"status": "done", "results": results}) == (2, 1)


@pytest.mark.parametrize("result", [None, "done", {"status": "abandoned"}, {"results": ["x"]}])
def test_results_without_pull_requests_count_none(result: object) -> None:
    assert pull_requests(result) == (0, 0)


async def test_the_job_sees_a_fresh_rate_limit_record_and_its_result_passes_through() -> None:
    seen_inside: list[dict[str, int] | None] = []

    async def job(ctx: dict[str, Any], value: int) -> dict[str, Any]:
        seen = rate_limits_seen.get()
        seen_inside.append(seen)
        assert seen is not None
        seen["7"] = 4321
        return {"value": value}

    wrapped = instrumented(job, job="audit", max_tries=3, durations=True)

    assert wrapped.__name__ == "job"
    assert await wrapped({}, 5) == {"value": 5}  # no ctx["redis"]: nothing published
    assert seen_inside == [{"7": 4321}]
    assert rate_limits_seen.get() is None


async def test_exceptions_pass_through_unchanged() -> None:
    async def job(ctx: dict[str, Any]) -> None:
        raise Retry(defer=3)

    with pytest.raises(Retry):
        await instrumented(job, job="delivery", max_tries=3)({"job_try": 1})
    assert rate_limits_seen.get() is None
