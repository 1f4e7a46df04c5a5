"""Worker metrics as kept in Redis: bucket fields and parsing what a scrape reads back."""

from __future__ import annotations

import math

import pytest

from app.adapters.metrics_sink import (
    AUDIT_BUCKETS,
    RATE_TTL_S,
    bucket_field,
    parse_worker_metrics,
)

NOW = 1_750_000_000.0


@pytest.mark.parametrize(
    ("seconds", "field"),
    [(0.0, "le=5"), (5.0, "le=5"), (5.01, "le=10"), (1800.0, "le=1800"), (3601.0, "le=+Inf")],
)
def test_each_duration_lands_in_the_smallest_bucket_that_holds_it(
    seconds: float, field: str
) -> None:
    assert bucket_field(seconds) == field


def test_buckets_are_cumulated_and_end_at_the_count() -> None:
    metrics = parse_worker_metrics(
        {}, {}, {"le=5": "2", "le=60": "1", "le=+Inf": "1", "sum": "4000.5"}, {}, {}, now=NOW
    )

    bounds = dict(metrics.audit_buckets)
    assert list(bounds) == [*map(float, AUDIT_BUCKETS), math.inf]
    assert (bounds[5.0], bounds[30.0], bounds[60.0], bounds[3600.0], bounds[math.inf]) == (
        2,
        2,
        3,
        3,
        4,
    )
    assert (metrics.audit_count, metrics.audit_sum) == (4, 4000.5)


def test_job_counters_keep_their_labels_and_skip_what_is_malformed() -> None:
    metrics = parse_worker_metrics(
        {},
        {
            "audit:done": "4",
            "delivery:retried": "2",
            "delivery:failed": "1",
            "delivery:exploded": "9",  # not an outcome
            "nocolon": "1",
            "audit:failed": "many",
        },
        {},
        {},
        {},
        now=NOW,
    )

    assert metrics.jobs == {
        ("audit", "done"): 4,
        ("delivery", "retried"): 2,
        ("delivery", "failed"): 1,
    }


def test_rate_limits_older_than_the_ttl_are_left_out() -> None:
    rates = {
        "7": f"4990 {NOW - 10:.0f}",
        "8": f"12 {NOW - RATE_TTL_S - 1:.0f}",
        "app": f"4999 {NOW:.0f}",
        "9": "garbage",
    }
    metrics = parse_worker_metrics({}, {}, {}, {"opened": "3"}, rates, now=NOW)

    assert metrics.rate_remaining == {"7": 4990, "app": 4999}
    assert metrics.prs == {"opened": 3, "would_open": 0}


def test_nothing_published_yet_reads_as_zeros() -> None:
    metrics = parse_worker_metrics({"dbarch:events": 0}, {}, {}, {}, {}, now=NOW)

    assert metrics.jobs == {}
    assert metrics.audit_count == 0
    assert metrics.audit_sum == 0.0
    assert all(count == 0 for _, count in metrics.audit_buckets)
    assert metrics.rate_remaining == {}
