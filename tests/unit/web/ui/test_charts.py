"""The dashboard's SVG helpers: well-formed, escaped, scaled on a log axis, empty data."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest

from app.web.ui.charts import (
    CHART_WIDTH,
    SpeedupBar,
    confidence_bar,
    fmt_ms,
    fmt_ratio,
    speedup_chart,
)

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # noqa: S314 - our own output
    assert root.tag == f"{SVG}svg"
    return root


def bars_of(root: ET.Element) -> list[ET.Element]:
    return [r for r in root.iter(f"{SVG}rect")]


def texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def test_widths_follow_the_log_of_the_speedup() -> None:
    root = parse(speedup_chart([SpeedupBar("a", 12.0, 0.3), SpeedupBar("b", 6.0, 1.5)]))
    fast, slow = bars_of(root)
    one = float(fast.get("x", "nan"))
    assert float(slow.get("x", "nan")) == one  # both start at 1×
    ratio = float(fast.get("width", "0")) / float(slow.get("width", "0"))
    assert ratio == pytest.approx(math.log10(40) / math.log10(4), rel=0.01)
    assert [t for t in texts(root) if t.endswith("×") and "→" not in t] == ["1×", "10×", "100×"]
    assert "12 ms → 0.30 ms (40×)" in texts(root)
    assert "6.00 ms → 1.50 ms (4.0×)" in texts(root)
    assert root.get("width") == str(CHART_WIDTH)


def test_the_widest_bar_ends_inside_the_plot() -> None:
    root = parse(speedup_chart([SpeedupBar("x", 5000.0, 0.5)]))  # 10 000×: four decades
    (bar,) = bars_of(root)
    right = float(bar.get("x", "0")) + float(bar.get("width", "0"))
    assert right <= CHART_WIDTH - 190 + 0.5
    assert "10000×" in texts(root)


def test_a_slowdown_is_drawn_leftwards_in_red() -> None:
    root = parse(speedup_chart([SpeedupBar("faster", 10.0, 1.0), SpeedupBar("slower", 1.0, 2.0)]))
    faster, slower = bars_of(root)
    assert faster.get("fill") != slower.get("fill") and slower.get("fill") == "#c53030"
    one = float(faster.get("x", "nan"))
    assert float(slower.get("x", "nan")) + float(slower.get("width", "0")) == pytest.approx(one)
    assert "0.1×" in texts(root)  # the axis reaches below 1×
    assert "1.00 ms → 2.00 ms (0.50×)" in texts(root)


def test_text_and_links_are_escaped() -> None:
    hostile = '<script>alert("x")</script> & co'
    svg = speedup_chart(
        [SpeedupBar(hostile, 2.0, 1.0, href='/ui/audits/1" onclick="alert(1)')],
        title="<b>t</b>",
    )
    assert "<script>" not in svg and "<b>" not in svg and '" onclick=' not in svg
    root = parse(svg)
    (link,) = root.iter(f"{SVG}a")
    assert link.get("href") == '/ui/audits/1" onclick="alert(1)'  # one attribute, as given
    assert root.get("aria-label") == "<b>t</b>"
    assert hostile in texts(root)  # shown as the text it is


def test_long_labels_are_cut() -> None:
    root = parse(
        speedup_chart([SpeedupBar("public.a_table_with_a_very_long_name · create index", 2, 1)])
    )
    (label,) = [t for t in texts(root) if t.startswith("public.")]
    assert len(label) == 34 and label.endswith("…")


@pytest.mark.parametrize(
    "bars",
    [
        [],
        [SpeedupBar("zero after", 3.0, 0.0)],
        [SpeedupBar("negative", -1.0, 2.0)],
        [SpeedupBar("nan", math.nan, 2.0), SpeedupBar("inf", math.inf, 1.0)],
    ],
)
def test_no_drawable_bars_say_so(bars: list[SpeedupBar]) -> None:
    root = parse(speedup_chart(bars))
    assert texts(root) == ["No measured speed-ups yet"] and bars_of(root) == []


def test_confidence_bar_fills_to_the_value_with_the_threshold_line() -> None:
    root = parse(confidence_bar(0.91, threshold=0.8, width=200))
    background, fill = bars_of(root)
    assert float(background.get("width", "0")) == 200
    assert float(fill.get("width", "0")) == pytest.approx(182.0)
    assert fill.get("fill") == "#2f855a"
    (line,) = root.iter(f"{SVG}line")
    assert float(line.get("x1", "0")) == pytest.approx(160.0)
    assert texts(root) == ["91 %"]
    assert root.get("aria-label") == "confidence 91 % (bar at 80 %)"


def test_confidence_below_the_bar_unknown_and_out_of_range() -> None:
    below = parse(confidence_bar(0.62))
    assert bars_of(below)[1].get("fill") == "#d69e2e"
    for unknown in (None, math.nan):
        root = parse(confidence_bar(unknown))
        assert len(bars_of(root)) == 1 and texts(root) == ["not assessed"]
    over = parse(confidence_bar(1.4, width=100))
    assert float(bars_of(over)[1].get("width", "0")) == 100
    assert float(bars_of(parse(confidence_bar(-0.2, width=100)))[1].get("width", "1")) == 0


def test_number_formats() -> None:
    assert [fmt_ms(v) for v in (0.004, 0.3, 9.99, 12.0, 999.4, 1520.0, 65000.0)] == [
        "0.00 ms",
        "0.30 ms",
        "9.99 ms",
        "12 ms",
        "999 ms",
        "1.52 s",
        "65 s",
    ]
    assert [fmt_ratio(v) for v in (0.831, 1.0, 2.46, 40.0, 12345.0)] == [
        "0.83×",
        "1.0×",
        "2.5×",
        "40×",
        "12,345×",
    ]
