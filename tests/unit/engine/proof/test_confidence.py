"""The confidence formula: weights, caps, freshness, thresholds, and drops."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.engine.model import Query, Recommendation, Table
from app.engine.proof.confidence import (
    CREATE_WEIGHTS,
    DROP_WEIGHTS,
    Confidence,
    check_threshold,
    create_confidence,
    drop_confidence,
    finding_strength,
    freshness,
)
from app.engine.proof.evidence import Evidence, StatementEvidence, Timing
from tests.fakes import NOW, column, table

MEASURED = ("measured_speedup", "noise_margin", "write_overhead", "agreement")


def orders(age: timedelta | None = timedelta(hours=1)) -> Table:
    analysed = None if age is None else NOW - age
    return table("orders", 1e5, column("id"), last_analyze=analysed)


def t(*ms: float) -> Timing:
    return Timing("common", ms, 0, 0, 1.0)


def stmt(
    before: tuple[float, ...],
    after: tuple[float, ...],
    *,
    calls: int = 1,
    write: bool = False,
    costs: tuple[float | None, float | None] = (None, None),
) -> StatementEvidence:
    after_runs = (t(*after),) if after else ()
    return StatementEvidence(Query("SELECT 1", calls), write, *costs, (t(*before),), after_runs)


def fast(skipped: str | None = None) -> Evidence:
    """Five times faster, well beyond noise, as the planner predicted, no writes."""
    read = stmt((10, 10, 10.5), (2, 2, 2.5), costs=(100.0, 20.0))
    return Evidence("sandbox", (read,), skipped=skipped)


def drop(rule: str, **extra: float) -> Recommendation:
    return Recommendation(
        "drop_index", "public.orders", ("id",), "orders_id_idx", "DROP", rule=rule, extra=extra
    )


def test_weights_sum_to_one() -> None:
    assert sum(CREATE_WEIGHTS.values()) == pytest.approx(1.0)
    assert sum(DROP_WEIGHTS.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("value", [0.8, 0.9, 1.0])
def test_threshold_may_only_be_raised(value: float) -> None:
    assert check_threshold(value) == value


@pytest.mark.parametrize("value", [0.79, 0.0, 1.01])
def test_threshold_outside_range_is_refused(value: float) -> None:
    with pytest.raises(ValueError, match=r"between 0\.80 and 1\.0 \(got "):
        check_threshold(value)


def test_eligible_at_the_threshold() -> None:
    assert Confidence(0.8).eligible and not Confidence(0.7999).eligible
    assert Confidence(0.95, threshold=1.0).eligible is False


@pytest.mark.parametrize(
    ("age", "score"),
    [
        (timedelta(hours=12), 1.0),
        (timedelta(days=1), 1.0),
        (timedelta(days=15.5), 0.5),
        (timedelta(days=30), 0.0),
        (timedelta(days=400), 0.0),
        (None, 0.0),  # never analysed
    ],
)
def test_freshness(age: timedelta | None, score: float) -> None:
    assert freshness(orders(age), NOW) == pytest.approx(score)


def test_freshness_without_a_table() -> None:
    assert freshness(None, NOW) == 0.0


def test_create_confidence_by_hand() -> None:
    read = stmt((10, 10, 12), (8, 8, 9), costs=(100.0, 75.0))  # 20 % faster, planner said 25 %
    write = stmt((1.0,), (1.0625,), calls=8, write=True)  # adds 0.5 ms of the 2 ms saved
    conf = create_confidence(
        Evidence("sandbox", (read, write)),
        workload_share=0.02,
        table=orders(timedelta(days=15.5)),
        now=NOW,
        writes_table=True,
    )
    assert conf.breakdown == pytest.approx(
        {
            "measured_speedup": 0.35 * 0.2 / 0.5,
            "noise_margin": 0.15 * (2 / 2) / 3,  # moved 2 ms in noise widths of 2 ms
            "workload_share": 0.15 * 0.02 / 0.05,
            "write_overhead": 0.15 * (1 - 0.5 / 2),
            "agreement": 0.10 * 0.2 / 0.25,
            "stats_freshness": 0.10 * 0.5,
        }
    )
    assert conf.score == pytest.approx(0.4925)
    assert conf.score == pytest.approx(sum(conf.breakdown.values()))
    assert not conf.eligible


def test_full_marks_are_capped_at_one() -> None:
    conf = create_confidence(
        fast(), workload_share=0.5, table=orders(), now=NOW, writes_table=False, threshold=1.0
    )
    assert conf.breakdown == pytest.approx(dict(CREATE_WEIGHTS))
    assert conf.score == pytest.approx(1.0) and conf.eligible


def test_unmeasured_writes_to_the_table_score_no_write_overhead() -> None:
    conf = create_confidence(fast(), workload_share=1, table=orders(), now=NOW, writes_table=True)
    assert conf.breakdown["write_overhead"] == 0.0
    assert conf.score == pytest.approx(0.85)


@pytest.mark.parametrize("evidence", [None, fast(skipped="lock wait beyond the budget")])
def test_unmeasured_is_never_eligible(evidence: Evidence | None) -> None:
    conf = create_confidence(
        evidence, workload_share=1.0, table=orders(), now=NOW, writes_table=False
    )
    assert all(conf.breakdown[k] == 0.0 for k in MEASURED)
    assert conf.score == pytest.approx(0.25)  # share 0.15 + freshness 0.10
    assert not conf.eligible


@pytest.mark.parametrize(
    ("rule", "extra", "strength"),
    [
        ("unused_index", {"window_days": 15.0}, 0.5),
        ("unused_index", {"window_days": 90.0}, 1.0),
        ("unused_index", {}, 0.0),  # the window is unknown
        ("duplicate_index", {"exact": 1.0}, 1.0),
        ("duplicate_index", {"exact": 0.0}, 0.9),  # covered by a wider index
        ("invalid_index", {}, 1.0),
    ],
)
def test_finding_strength(rule: str, extra: dict[str, float], strength: float) -> None:
    assert finding_strength(drop(rule, **extra)) == pytest.approx(strength)


def test_drop_with_no_affected_reads_is_safe() -> None:
    conf = drop_confidence(
        drop("unused_index", window_days=15.0), Evidence("sandbox"), table=orders(), now=NOW
    )
    assert conf.breakdown == pytest.approx(
        {"finding": 0.25, "measured_safety": 0.3, "stats_freshness": 0.2}
    )
    assert conf.score == pytest.approx(0.75) and not conf.eligible


def test_invalid_index_is_safe_by_construction() -> None:
    conf = drop_confidence(drop("invalid_index"), None, table=orders(), now=NOW)
    assert conf.breakdown["measured_safety"] == pytest.approx(0.3)
    assert conf.score == pytest.approx(1.0) and conf.eligible


def test_drop_safety_needs_every_read_measured() -> None:
    rec = drop("duplicate_index", exact=1.0)
    measured = stmt((1,), (1,))
    unmeasured_write = stmt((1,), (), write=True)
    safe = Evidence("sandbox", (measured, unmeasured_write))
    partial = Evidence("sandbox", (measured, stmt((1,), ())))
    skipped = Evidence("sandbox", (measured,), skipped="lock wait")

    def safety(evidence: Evidence | None) -> float:
        return drop_confidence(rec, evidence, table=orders(), now=NOW).breakdown["measured_safety"]

    assert safety(safe) == pytest.approx(0.3)
    assert safety(partial) == safety(skipped) == safety(None) == 0.0
    assert drop_confidence(rec, safe, table=orders(), now=NOW).score == pytest.approx(1.0)
