"""The values the flows hand to GitHub: GitHub's size limits are enforced before any request."""

from __future__ import annotations

import pytest

from app.adapters.github.models import (
    CHECK_TEXT_LIMIT,
    TEXT_LIMIT,
    CheckAction,
    CheckOutput,
    RepoRef,
    trim,
)


def test_full_name() -> None:
    assert RepoRef(installation_id=1, owner="octo", name="shop").full_name == "octo/shop"


@pytest.mark.parametrize(
    ("label", "description", "identifier"),
    [
        ("x" * 21, "ok", "ok"),
        ("ok", "x" * 41, "ok"),
        ("ok", "ok", "x" * 21),
        ("", "ok", "ok"),
    ],
)
def test_check_action_limits(label: str, description: str, identifier: str) -> None:
    with pytest.raises(ValueError, match="check action"):
        CheckAction(label, description, identifier)


def test_check_action_at_the_limits() -> None:
    action = CheckAction("x" * 20, "y" * 40, "z" * 20)
    assert len(action.label) == 20


def test_check_output_trims_to_githubs_limit() -> None:
    output = CheckOutput("t", "s" * 70_000, text="x" * 100_000)
    assert len(output.summary) == CHECK_TEXT_LIMIT
    assert output.text is not None
    assert len(output.text) == CHECK_TEXT_LIMIT
    assert output.summary.endswith("(truncated: the full text is longer than GitHub allows)")


def test_check_output_keeps_short_text() -> None:
    assert CheckOutput("t", "short").summary == "short"


def test_at_most_three_actions() -> None:
    actions = tuple(CheckAction(f"b{i}", "d", f"i{i}") for i in range(4))
    with pytest.raises(ValueError, match="at most 3"):
        CheckOutput("t", "s", actions=actions)
    assert len(CheckOutput("t", "s", actions=actions[:3]).actions) == 3


def test_trim() -> None:
    long = "a" * (TEXT_LIMIT + 10)
    cut = trim(long)
    assert len(cut) == TEXT_LIMIT
    assert cut.startswith("aaa")
    assert "truncated" in cut
    assert trim("x" * 50, 10) == "x" * 10
