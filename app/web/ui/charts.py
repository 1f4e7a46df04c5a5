"""Inline SVG for the dashboard, drawn on the server: speed-ups on a log scale, confidence bars.

Pure functions of their arguments (stdlib only) that return SVG text with every piece of
text escaped, so a page embeds them as they are and needs no JavaScript or stylesheet.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from app.engine import markdown as md

__all__ = [
    "CHART_WIDTH",
    "MAX_LABEL_CHARS",
    "SpeedupBar",
    "confidence_bar",
    "fmt_ms",
    "fmt_ratio",
    "speedup_chart",
]

CHART_WIDTH = 760
MAX_LABEL_CHARS = 34
_LABEL_W = 230  # left: what got faster
_FIGURES_W = 190  # right: "12 ms → 0.30 ms"
_ROW_H = 26
_BAR_H = 16
_AXIS_H = 22
_FAST, _SLOW, _BELOW, _GRID = "#2f855a", "#c53030", "#d69e2e", "#cbd5e0"


@dataclass(frozen=True, slots=True)
class SpeedupBar:
    """One measured change: what it is, the read time before and after, where to read more."""

    label: str
    before_ms: float
    after_ms: float
    href: str | None = None

    @property
    def ratio(self) -> float:
        """How many times faster (below 1: slower)."""
        return self.before_ms / self.after_ms


def fmt_ms(value: float) -> str:
    """A duration in milliseconds with a readable number of digits.

    >>> fmt_ms(0.3), fmt_ms(12.0), fmt_ms(1520.0)
    ('0.30 ms', '12 ms', '1.52 s')
    """
    if value >= 1000:
        return f"{value / 1000:,.3g} s"
    if value >= 10:
        return f"{value:,.0f} ms"
    return f"{value:.2f} ms"


def fmt_ratio(ratio: float) -> str:
    """A speed-up factor: ``40×``, ``2.5×``, ``0.83×`` (slower).

    >>> fmt_ratio(40.0), fmt_ratio(2.46), fmt_ratio(0.831)
    ('40×', '2.5×', '0.83×')
    """
    if ratio >= 10:
        return f"{ratio:,.0f}×"
    if ratio >= 1:
        return f"{ratio:.1f}×"
    return f"{ratio:.2f}×"


def _attr(text: str) -> str:
    return escape(text, quote=True)


def _empty(message: str, width: int) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} 40" width="{width}" height="40" aria-label="{_attr(message)}">'
        f'<text x="{width // 2}" y="25" text-anchor="middle" fill="#718096" '
        f'font-size="14">{escape(message)}</text></svg>'
    )


def _decades(ratios: Sequence[float]) -> tuple[int, int]:
    """The log10 range the axis spans: whole decades around 1× and every ratio, at least one."""
    logs = [math.log10(r) for r in ratios]
    low = min(0, math.floor(min(logs)))
    high = max(math.ceil(max(logs)), low + 1)
    return low, high


def speedup_chart(
    bars: Sequence[SpeedupBar],
    *,
    title: str = "Measured speed-up of reads",
    width: int = CHART_WIDTH,
) -> str:
    """Horizontal bars from 1× to each change's speed-up on a log scale, with before → after.

    Bars keep their order; a bar with a non-positive or non-finite time is left out (there
    is no ratio to draw). Slower after the change (ratio below 1) is drawn leftwards in red.
    No bars: a one-line SVG that says so.
    """
    drawable = [
        b
        for b in bars
        if math.isfinite(b.before_ms)
        and math.isfinite(b.after_ms)
        and b.before_ms > 0
        and b.after_ms > 0
    ]
    if not drawable:
        return _empty("No measured speed-ups yet", width)
    low, high = _decades([b.ratio for b in drawable])
    plot_left, plot_w = _LABEL_W, width - _LABEL_W - _FIGURES_W

    def x(ratio: float) -> float:
        return plot_left + (math.log10(ratio) - low) / (high - low) * plot_w

    height = _AXIS_H + len(drawable) * _ROW_H + 6
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart speedups" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-label="{_attr(title)}" font-size="12" font-family="sans-serif">',
        f"<title>{escape(title)}</title>",
    ]
    for decade in range(low, high + 1):
        gx = x(10.0**decade)
        tick = f"{10.0**decade:g}×"
        out.append(
            f'<line x1="{gx:.1f}" y1="{_AXIS_H - 4}" x2="{gx:.1f}" y2="{height}" '
            f'stroke="{_GRID}" stroke-width="{2 if decade == 0 else 1}"/>'
            f'<text x="{gx:.1f}" y="{_AXIS_H - 8}" text-anchor="middle" '
            f'fill="#4a5568">{escape(tick)}</text>'
        )
    one = x(1.0)
    for row, bar in enumerate(drawable):
        top = _AXIS_H + row * _ROW_H
        mid = top + _ROW_H / 2 + 4
        end = x(bar.ratio)
        left, right = min(one, end), max(one, end)
        colour = _FAST if bar.ratio >= 1 else _SLOW
        figures = f"{fmt_ms(bar.before_ms)} → {fmt_ms(bar.after_ms)} ({fmt_ratio(bar.ratio)})"
        label = f'<text x="{_LABEL_W - 8}" y="{mid:.1f}" text-anchor="end" fill="#1a202c">'
        label += f"{escape(md.shorten(bar.label, MAX_LABEL_CHARS))}</text>"
        if bar.href:
            label = f'<a href="{_attr(bar.href)}">{label}</a>'
        out.append(
            f"<g><title>{escape(bar.label)}: {escape(figures)}</title>{label}"
            f'<rect x="{left:.1f}" y="{top + (_ROW_H - _BAR_H) / 2:.1f}" '
            f'width="{max(right - left, 1.5):.1f}" height="{_BAR_H}" fill="{colour}" rx="2"/>'
            f'<text x="{width - _FIGURES_W + 8}" y="{mid:.1f}" fill="#1a202c">'
            f"{escape(figures)}</text></g>"
        )
    out.append("</svg>")
    return "".join(out)


def confidence_bar(
    value: float | None, *, threshold: float = 0.80, width: int = 160, height: int = 14
) -> str:
    """A 0–100 % bar with a line at ``threshold`` (the bar to open a PR), and the percentage.

    Green at or above the threshold, amber below; ``None`` (not assessed) draws an empty bar.
    Values outside 0..1 are clamped.
    """
    if value is not None and not math.isfinite(value):
        value = None
    label = "not assessed" if value is None else f"{value * 100:.0f} %"
    fill = "" if value is None else _confidence_fill(value, threshold, width, height)
    line_x = max(0.0, min(1.0, threshold)) * width
    total = width + 48
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="confidence" role="img" '
        f'viewBox="0 0 {total} {height}" width="{total}" height="{height}" '
        f'aria-label="confidence {_attr(label)} (bar at {threshold * 100:.0f} %)" '
        f'font-size="11" font-family="sans-serif">'
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#edf2f7" rx="2"/>{fill}'
        f'<line x1="{line_x:.1f}" y1="0" x2="{line_x:.1f}" y2="{height}" stroke="#1a202c" '
        f'stroke-width="1.5" stroke-dasharray="2 1"/>'
        f'<text x="{width + 6}" y="{height - 3}" fill="#1a202c">{escape(label)}</text></svg>'
    )


def _confidence_fill(value: float, threshold: float, width: int, height: int) -> str:
    clamped = max(0.0, min(1.0, value))
    colour = _FAST if value >= threshold else _BELOW
    return (
        f'<rect x="0" y="0" width="{clamped * width:.1f}" height="{height}" '
        f'fill="{colour}" rx="2"/>'
    )
