"""The replies to `/ask`: the answer table, problems and refusals, inert and bounded."""

from __future__ import annotations

import re

from app.bot.replies.ask import MAX_COMMENT_CHARS, answer_markdown, refusal_markdown

# ----------------------------------------------------------------------------- the replies


def test_answer_markdown() -> None:
    text = answer_markdown(
        "How many orders per status?",
        "SELECT status, count(*) FROM orders GROUP BY 1",
        ["status", "count"],
        [["paid", "3"], ["open", "NULL"]],
        truncated=False,
        row_cap=50,
        elapsed_ms=12.3,
        drafted_by="Claude",
    )
    assert "> How many orders per status?" in text
    assert "```sql\nSELECT status, count(*) FROM orders GROUP BY 1\n```" in text
    assert "| status | count |\n|---|---|\n| paid | 3 |\n| open | NULL |" in text
    assert "drafted by Claude, checked by DB Architect's SQL guard" in text
    assert "read-only" in text and "timeout" in text and "12 ms" in text
    assert "first 50 rows" not in text


def test_answer_markdown_escapes_cells() -> None:
    text = answer_markdown(
        "q",
        "SELECT 1",
        ["a|b"],
        [["x|y\nz `code` <img src=x> @octocat"], ["w" * 200]],
        truncated=True,
        row_cap=2,
        elapsed_ms=1500,
        drafted_by=None,
    )
    rows = text.split("|---|\n")[1].split("\n\n")[0].splitlines()
    assert rows[0] == "| x\\|y z \\`code\\` \\<img src=x\\> @\u200boctocat |"
    assert rows[1] == "| " + "w" * 73 + "… (cut) |"
    assert "| a\\|b |" in text
    assert "first 2 rows" in text
    assert "as written" in text and "1.5 s" in text
    assert not re.search(r"(?<!\\)<img", text) and "@octocat" not in text


def test_answer_markdown_sanitises_the_question_and_fences_the_sql() -> None:
    text = answer_markdown(
        "ping @admin <script>alert(1)</script>",
        "SELECT '```' AS fence",
        ["fence"],
        [["```"]],
        truncated=False,
        row_cap=50,
        elapsed_ms=3,
        drafted_by="Claude",
    )
    assert "> ping @\u200badmin \\<script\\>alert(1)\\</script\\>" in text
    assert "````sql\nSELECT '```' AS fence\n````" in text
    assert "<script>" not in text


def test_answer_markdown_without_rows_or_columns() -> None:
    none = answer_markdown("q", "SELECT 1 WHERE false", ["x"], [], truncated=False, row_cap=50,
                           elapsed_ms=1, drafted_by=None)  # fmt: skip
    assert "_No rows._" in none and "|---|" not in none
    empty = answer_markdown("q", "SELECT", [], [], truncated=False, row_cap=50, elapsed_ms=1,
                            drafted_by=None)  # fmt: skip
    assert "no columns" in empty


def test_answer_markdown_stays_under_the_comment_limit() -> None:
    columns = [f"c{i}" for i in range(30)]
    rows = [["<&|`@" * 20] * 30 for _ in range(50)]
    text = answer_markdown("q", "SELECT 1", columns, rows, truncated=True, row_cap=50,
                           elapsed_ms=1, drafted_by="Claude")  # fmt: skip
    assert len(text) < MAX_COMMENT_CHARS
    assert "first 20 of 30 columns" in text
    assert "rows fit in a comment" in text
    header = next(line for line in text.splitlines() if line.startswith("| c0 |"))
    assert header.count(" | ") == 19


def test_refusal_markdown() -> None:
    text = refusal_markdown(
        "delete everything @team",
        "DELETE FROM orders -- ```",
        "only a single SELECT can be run, not `DELETE`",
        "Ask a question that reads data <b>only</b>.",
    )
    assert "not run" in text
    assert "> delete everything @\u200bteam" in text
    assert "only a single SELECT can be run, not `DELETE`" in text
    assert "````sql\nDELETE FROM orders -- ```\n````" in text
    assert "**What to do:** Ask a question that reads data \\<b\\>only\\</b\\>." in text


def test_refusal_markdown_without_sql_or_question() -> None:
    text = refusal_markdown("", None, "the SQL is empty", "Write a SELECT.")
    assert "```" not in text and "> " not in text
