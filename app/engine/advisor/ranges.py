"""Range bounds drawn as ranges from pg_stats: ordered bounds, widths as fractions of rows.

pg_stats gives two views of a column's values. ``histogram_bounds`` is sorted and equi-depth:
each bucket between neighbouring bounds holds the same share of the rows outside the
most-common-values list, so a fraction of rows is a number of buckets. ``most_common_vals``
is ordered by *frequency*, not by value; it is sorted here (numbers as numbers, anything
else as text, which orders ISO dates and timestamps correctly) and weighted by
``most_common_freqs`` before a position in it means anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from app.engine.model import ColumnStats

#: Fractions of a column's rows a synthesized range selects.
NARROW = 0.01
TYPICAL = 0.10
WIDE = 0.40
WIDTHS: dict[str, float] = {"narrow": NARROW, "typical": TYPICAL, "wide": WIDE}


@dataclass(frozen=True, slots=True)
class Point:
    """A value and the fraction of the (non-null) rows at or below it."""

    value: str
    at: float


def _order(value: str) -> tuple[int, float, str]:
    """Numbers by value, everything else as text (ISO dates and timestamps sort as text)."""
    try:
        number = float(value)
    except ValueError:
        return (1, 0.0, value)
    return (0, number, value) if math.isfinite(number) else (1, 0.0, value)


def distribution(stats: ColumnStats) -> tuple[Point, ...]:
    """The column's values in ascending order with their cumulative fraction of rows.

    The histogram when there is one (bound ``i`` of ``n`` sits at ``i / (n - 1)``); else the
    most common values, sorted by value and weighted by their frequencies.
    """
    hist = stats.histogram_bounds
    if len(hist) >= 2:
        last = len(hist) - 1
        return tuple(Point(v, i / last) for i, v in enumerate(hist))
    freqs = stats.most_common_freqs
    pairs = sorted(
        ((v, freqs[i] if i < len(freqs) else 0.0) for i, v in enumerate(stats.most_common_vals)),
        key=lambda vf: _order(vf[0]),
    )
    if not pairs:
        return tuple(Point(v, 1.0) for v in hist)
    weights = [f for _, f in pairs]
    if sum(weights) <= 0:
        weights = [1.0] * len(pairs)
    total, seen = sum(weights), 0.0
    points: list[Point] = []
    for (value, _), weight in zip(pairs, weights, strict=True):
        seen += weight
        points.append(Point(value, seen / total))
    return tuple(points)


def at_fraction(points: tuple[Point, ...], fraction: float) -> str | None:
    """The smallest value with at least ``fraction`` of the rows at or below it."""
    if not points:
        return None
    for point in points:
        if point.at >= fraction - 1e-9:
            return point.value
    return points[-1].value


def draw(stats: ColumnStats, start: float, width: float) -> tuple[str, str] | None:
    """``(low, high)`` with ``low`` below ``high``: a range over about ``width`` of the rows.

    ``low`` sits at fraction ``start`` of the rows (moved down when the range would run past
    the top), ``high`` at ``start + width``; when both land on one value, ``high`` becomes
    the next larger one, so ``col >= low AND col < high`` is never empty by construction.
    ``None`` when pg_stats knows no value; ``(v, v)`` when it knows only one.
    """
    points = distribution(stats)
    if not points:
        return None
    width = min(max(width, 0.0), 1.0)
    start = min(max(start, 0.0), 1.0 - width)
    low = at_fraction(points, start)
    high = at_fraction(points, start + width)
    if low is None or high is None:
        return None
    values = [p.value for p in points]
    if _order(high) <= _order(low):
        above = [v for v in values if _order(v) > _order(low)]
        if above:
            high = min(above, key=_order)
        else:
            below = [v for v in values if _order(v) < _order(low)]
            low, high = (max(below, key=_order), low) if below else (low, low)
    return low, high


def bound(stats: ColumnStats, role: str, selected: float) -> str | None:
    """One bound alone (``col > v`` or ``col < v``) that keeps about ``selected`` of the rows."""
    points = distribution(stats)
    selected = min(max(selected, 0.0), 1.0)
    return at_fraction(points, 1.0 - selected if role == "lower" else selected)
