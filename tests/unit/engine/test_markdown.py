"""Inert Markdown: hostile text in every context GitHub renders it, checked with a real parser."""

from __future__ import annotations

import random

import pytest

from app.engine import markdown as md
from tests.markdown_check import (
    HOSTILE,
    HOSTILE_LINES,
    assert_inert,
    code_texts,
    in_code,
    problems,
    rendered_text,
)

#: Where our renderers put a piece of inline Markdown.
CONTEXTS = (
    "{}",
    "Text before {} and after.",
    "- {}",
    "#### {}",
    "> {}",
    "**Problem**: {}.",
    "| a | b |\n|---|---|\n| {} | x |",
)


def test_the_checker_sees_what_github_would_render() -> None:
    """The checker itself: raw hostile text is caught, so the tests below can fail."""
    found = problems(f"| a | b |\n|---|---|\n| {HOSTILE} | x |")
    kinds = {problem.split(":")[0] for problem in found}
    assert {"image", "inline HTML", "mention"} <= kinds
    assert any(p.startswith("table row has 3 cells, its header 2") for p in found)
    assert problems("&#64;octocat")  # an entity GitHub decodes before it looks for mentions
    assert problems("x\n<!-- hidden -->\n")
    assert problems("see https://e.x/login") and problems("(www.e.x)")


@pytest.mark.parametrize("value", HOSTILE_LINES)
@pytest.mark.parametrize("context", CONTEXTS)
def test_code_is_inert_and_whole(value: str, context: str) -> None:
    cell = context.startswith("|")
    rendered = context.format(md.code(value, cell=cell))
    assert_inert(rendered)
    assert in_code(rendered, value)


@pytest.mark.parametrize("value", HOSTILE_LINES)
@pytest.mark.parametrize("context", CONTEXTS)
def test_text_is_inert_and_shown_as_it_was(value: str, context: str) -> None:
    rendered = context.format(md.text(value))
    assert_inert(rendered)
    assert not code_texts(rendered)
    shown = rendered_text(rendered).replace("\u200b", "")
    assert " ".join(value.split()) in shown


@pytest.mark.parametrize("value", HOSTILE_LINES)
@pytest.mark.parametrize("context", CONTEXTS)
def test_inline_messages_are_inert(value: str, context: str) -> None:
    message = f"`{value}` is not a column of `orders`; {value}"
    assert_inert(context.format(md.inline(message, cell=context.startswith("|"))))


@pytest.mark.parametrize("value", HOSTILE_LINES)
def test_a_fence_is_never_closed_by_its_data(value: str) -> None:
    rendered = md.fence(value * 3, "sql") + "\n\nafter @octocat"
    found = problems(rendered)
    assert found == ["mention: 'after @octocat'"]  # only our own text after it is live
    assert code_texts(rendered) == [(value * 3).rstrip("\n") + "\n"]


@pytest.mark.parametrize("value", HOSTILE_LINES)
def test_quote_and_prose_are_inert(value: str) -> None:
    assert_inert(md.quote(value))
    assert_inert(md.prose(f"{value}\n\n{value}\n[docs](https://www.postgresql.org/docs/)"))


def test_prose_keeps_only_allowed_links() -> None:
    text = "Read [the docs](https://www.postgresql.org/docs/current/) or [this](https://e.x/a)."
    shown = md.prose(text, links=("postgresql.org",))
    assert_inert(shown, links=("https://www.postgresql.org/",))
    assert "[this]" not in shown and "e.x" not in shown


def test_a_cut_shows_and_never_breaks_inertness() -> None:
    long = HOSTILE * 50
    for shown in (md.code(long, 100), md.text(long, 100), md.fence(long, limit=100)):
        assert md.CUT_MARK in rendered_text(shown) + "".join(code_texts(shown))
        assert_inert(shown)
    assert len(md.cut(long, 100)) == 100


def test_code_needs_longer_delimiters_for_backtick_runs() -> None:
    assert md.code("a ``` b") == "````a ``` b````"
    assert code_texts(md.code("`")) == ["`"]
    assert code_texts(md.code(" x ")) == [" x "]
    assert code_texts(md.code("")) == [" "]


def test_a_pipe_after_a_backslash_still_stays_in_its_cell() -> None:
    for value in ("a\\|b", "a\\\\|b", "\\|", "|"):
        row = f"| a | b |\n|---|---|\n| {md.code(value, cell=True)} | {md.text(value)} |"
        assert_inert(row)


def test_controls_and_bidi_overrides_are_replaced() -> None:
    shown = md.text("abc\u202eevil\x00\x1b[31m")
    assert "\u202e" not in shown and "\x00" not in shown and "\x1b" not in shown
    assert "\u202e" not in md.code("a\u202eb") and "\u2066" not in md.fence("a\u2066b")


def test_fit_never_leaves_a_fence_or_details_open() -> None:
    body = "intro\n\n<details><summary>Plans</summary>\n\n" + md.fence(HOSTILE * 400) + "\n"
    body += "\n</details>\n\nend\n"
    cut = md.fit(body, 5_000, "… cut to fit")
    assert len(cut) <= 5_000
    assert cut.endswith("</details>\n\n… cut to fit\n")
    assert_inert(cut)
    assert md.fit(body, 10**6, "x") == body


def test_fit_counts_no_details_inside_a_fence() -> None:
    body = md.fence("<details>\n" * 50) + "\n" + "tail line\n" * 100
    cut = md.fit(body, 600, "cut")
    assert "</details>" not in cut.rsplit("```", 1)[1]


_PIECES = (
    "@octocat", "@", "`", "``", "```", "~~~", "<", ">", "<!--", "-->", "<img src=x>", "![a](b)",
    "[", "]", "(", ")", "|", "\\", "\\|", "&", "&#64;", "&lt;", "#", "# ", "-", "1.", "*", "_",
    "~", "$", "\n", "\r", "\t", " ", "a", "word", "\u202e", "\x00", "https://e.x", "www.e.x",
)  # fmt: skip


def test_random_hostile_text_stays_inert_in_every_context() -> None:
    rng = random.Random(13)
    for _ in range(500):
        value = "".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 12)))
        for context in CONTEXTS:
            cell = context.startswith("|")
            for shown in (md.code(value, cell=cell), md.text(value), md.inline(value, cell=cell)):
                found = problems(context.format(shown))
                assert not found, (value, context, shown, found)
        block = md.fence(value) + "\n\n" + md.prose(value) + "\n\n" + md.quote(value)
        assert not problems(block), (value, block)
