"""The dashboard escapes target and reviewer data: autoescape everywhere, no ``|safe`` on it."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from jinja2 import Environment

from app.web.ui import pages
from app.web.ui.charts import SpeedupBar, speedup_chart
from tests.markdown_check import HOSTILE

UI = Path(pages.__file__).parent
TEMPLATES = sorted(p.name for p in (UI / "templates").glob("*.html"))


def environment() -> Environment:
    engine = pages.template_config().instance
    assert engine is not None
    env = engine.engine
    assert isinstance(env, Environment)
    return env


def test_every_template_is_autoescaped() -> None:
    env = environment()
    assert TEMPLATES and env.autoescape is True  # not a per-extension choice: every template
    for name in TEMPLATES:
        assert env.get_template(name).environment.autoescape is True


@pytest.mark.parametrize("name", TEMPLATES)
def test_no_template_turns_escaping_off(name: str) -> None:
    text = (UI / "templates" / name).read_text()
    assert not re.search(r"\|\s*safe\b|autoescape\s+false|Markup|\|\s*e\s*\(", text), name


def test_markup_only_wraps_the_escaped_svg_charts() -> None:
    for source in UI.glob("*.py"):
        for call in re.findall(r"Markup\(([^)\n]*)", source.read_text()):
            assert call.startswith("charts."), f"{source.name}: Markup({call}"


def test_a_template_shows_a_hostile_name_as_text() -> None:
    problem = environment().get_template("problem.html")
    page = problem.render(heading=HOSTILE, message=HOSTILE, nav=None)
    assert "<img" not in page and "<!--" not in page
    assert "&lt;img src=x&gt;" in page and "&lt;!--" in page


def test_chart_labels_of_hostile_names_are_text() -> None:
    svg = speedup_chart([SpeedupBar(HOSTILE, 2.0, 1.0), SpeedupBar("</text><img src=x>", 3, 1)])
    assert "<img" not in svg and "<!--" not in svg
    root = ET.fromstring(svg)  # noqa: S314 - our own output
    tags = {element.tag.rpartition("}")[2] for element in root.iter()}
    assert tags <= {"svg", "title", "line", "text", "g", "rect", "a"}
