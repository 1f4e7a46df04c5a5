"""Ranges drawn as ranges: ordered bounds, widths in rows, MCVs sorted by value not frequency."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from app.engine.advisor.ranges import NARROW, TYPICAL, WIDE, bound, distribution, draw
from app.engine.model import ColumnStats

DAYS = ColumnStats(
    histogram_bounds=tuple(str(date(1992, 1, 2) + timedelta(days=25 * i)) for i in range(101))
)
# pg_stats.most_common_vals is ordered by frequency: 0.05 is the most common discount.
DISCOUNT = ColumnStats(
    most_common_vals=("0.05", "0.10", "0.00", "0.07", "0.02"),
    most_common_freqs=(0.4, 0.2, 0.2, 0.1, 0.1),
)
# Numbers compare as numbers: 9 < 10 < 100, which text order gets wrong.
COUNTS = ColumnStats(most_common_vals=("100", "9", "10"), most_common_freqs=(0.5, 0.3, 0.2))


def test_the_histogram_is_an_equi_depth_distribution() -> None:
    points = distribution(DAYS)
    assert points[0].at == 0 and points[-1].at == 1 and points[50].at == pytest.approx(0.5)


def test_most_common_values_are_sorted_by_value_and_weighted_by_frequency() -> None:
    assert [(p.value, round(p.at, 2)) for p in distribution(DISCOUNT)] == [
        ("0.00", 0.2),
        ("0.02", 0.3),
        ("0.05", 0.7),
        ("0.07", 0.8),
        ("0.10", 1.0),
    ]
    assert [p.value for p in distribution(COUNTS)] == ["9", "10", "100"]


@pytest.mark.parametrize("stats", [DAYS, DISCOUNT, COUNTS])
@pytest.mark.parametrize("width", [NARROW, TYPICAL, WIDE, 0.0, 1.0])
@pytest.mark.parametrize("start", [0.0, 0.1, 0.45, 0.9, 0.99, 1.0])
def test_a_drawn_range_is_never_empty_nor_inverted(
    stats: ColumnStats, width: float, start: float
) -> None:
    found = draw(stats, start, width)
    assert found is not None
    low, high = found
    order = [p.value for p in distribution(stats)]
    assert order.index(low) < order.index(high), (low, high)


def test_widths_are_fractions_of_the_rows() -> None:
    buckets = [p.value for p in distribution(DAYS)]
    for width, expected in ((NARROW, 1), (TYPICAL, 10), (WIDE, 40)):
        low, high = draw(DAYS, 0.2, width) or ("", "")
        assert buckets.index(high) - buckets.index(low) == expected
    # Near the top, the range moves down rather than shrinking.
    low, high = draw(DAYS, 0.9, WIDE) or ("", "")
    assert (buckets.index(low), buckets.index(high)) == (60, 100)


def test_a_column_with_one_known_value_gives_a_single_value_range() -> None:
    assert draw(ColumnStats(most_common_vals=("x",), most_common_freqs=(1.0,)), 0.5, 0.1) == (
        "x",
        "x",
    )
    assert draw(ColumnStats(), 0.5, 0.1) is None


def test_a_lone_bound_keeps_about_the_fraction_asked_for() -> None:
    assert bound(DAYS, "lower", WIDE) == DAYS.histogram_bounds[60]  # col > v: the top 40 %
    assert bound(DAYS, "upper", NARROW) == DAYS.histogram_bounds[1]  # col < v: the bottom 1 %
