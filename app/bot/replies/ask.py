"""The replies to `/ask`: the answer (question, SQL, a small table), a problem, a refusal."""

from __future__ import annotations

from collections.abc import Sequence

from app.bot.commands.ask import MAX_QUESTION_CHARS
from app.engine import markdown as md
from app.engine.guard import MAX_SQL_CHARS

__all__ = [
    "MAX_COMMENT_CHARS",
    "answer_markdown",
    "problem_markdown",
    "quote_block",
    "refusal_markdown",
]

MAX_CELL_CHARS = 80
MAX_COLUMNS = 20
MAX_COMMENT_CHARS = 60_000


def quote_block(question: str) -> str:
    """The question asked, as a blockquote that renders as plain text ("" when empty)."""
    return md.quote(question, MAX_QUESTION_CHARS) if question.strip() else ""


def _sql_block(sql: str) -> str:
    return md.fence(sql.strip(), "sql", MAX_SQL_CHARS)


def _cell(value: str) -> str:
    return md.text(value, MAX_CELL_CHARS) or " "


def _elapsed(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def answer_markdown(
    question: str,
    sql: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    truncated: bool,
    row_cap: int,
    elapsed_ms: float,
    drafted_by: str | None,
) -> str:
    """The GitHub comment that answers an `/ask`: question, SQL, a small table, provenance.

    Cells are escaped (``|``, newlines, backticks, HTML, mentions) and cut to 80 characters;
    at most 20 columns are shown and rows stop before the comment would pass 60,000 characters.
    """
    head = ["### `/ask` answer", ""]
    if question.strip():
        head += [quote_block(question), ""]
    head += [_sql_block(sql), ""]
    shown = list(columns[:MAX_COLUMNS])
    if drafted_by:
        who = f"SQL drafted by {md.text(drafted_by, 40)}, checked by DB Architect's SQL guard"
    else:
        who = "SQL as written, checked by DB Architect's SQL guard"
    notes: list[str] = []
    table: list[str] = []
    if not shown:
        notes.append("_The query returned no columns._")
    elif not rows:
        notes.append("_No rows._")
    else:
        table = [
            "| " + " | ".join(_cell(c) for c in shown) + " |",
            "|" + "---|" * len(shown),
        ]
    if len(columns) > MAX_COLUMNS:
        notes.append(f"_Showing the first {MAX_COLUMNS} of {len(columns)} columns._")
    footer = [
        "",
        f"_{who}. Ran in a read-only transaction with a statement timeout; "
        f"took {_elapsed(elapsed_ms)}._",
    ]
    budget = MAX_COMMENT_CHARS - 400 - sum(len(x) + 1 for x in [*head, *table, *notes, *footer])
    fitted = 0
    for row in rows[:row_cap]:
        line = "| " + " | ".join(_cell(str(v)) for v in list(row)[: len(shown)]) + " |"
        if len(line) + 1 > budget:
            break
        table.append(line)
        budget -= len(line) + 1
        fitted += 1
    if shown and rows and fitted < min(len(rows), row_cap):
        notes.append(f"_Only the first {fitted} rows fit in a comment._")
    elif truncated:
        notes.append(f"_Showing the first {row_cap} rows; the query returned more._")
    body = [*head, *table]
    if notes:
        body += ["", *notes]
    return "\n".join([*body, *footer])


def problem_markdown(question: str, problem: str, what_to_do: str) -> str:
    """The GitHub comment for an `/ask` that could not be answered, and what to do."""
    said = f"{quote_block(question)}\n\n" if question.strip() else ""
    return (
        f"### `/ask`: not answered\n\n{said}{md.inline(problem, 1000)}\n\n"
        f"**What to do:** {md.inline(what_to_do, 600)}"
    )


def refusal_markdown(question: str, sql: str | None, problem: str, what_to_do: str) -> str:
    """The GitHub comment for an `/ask` that was not run: what was refused and what to do."""
    parts = ["### `/ask`: not run", ""]
    if question.strip():
        parts += [quote_block(question), ""]
    parts += [f"DB Architect's SQL guard refused the query: {md.inline(problem, 400)}.", ""]
    if sql and sql.strip():
        parts += [_sql_block(sql), ""]
    parts.append(f"**What to do:** {md.inline(what_to_do, 600)}")
    return "\n".join(parts)
