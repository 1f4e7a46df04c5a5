"""`/ask`: the comment command and the replies; the SQL guard is :mod:`app.engine.guard`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from app.bot import comment
from app.bot.comment import Line
from app.engine import markdown as md
from app.engine.guard import MAX_SQL_CHARS

__all__ = [
    "ASK_USAGE",
    "MAX_COMMENT_CHARS",
    "AskCommand",
    "AskError",
    "answer_markdown",
    "parse_ask_command",
    "problem_markdown",
    "quote_block",
    "refusal_markdown",
]

ASK_USAGE = (
    "`/ask <a question about the data>`, or `/ask` followed by a ```` ```sql ```` block "
    "holding one SELECT"
)
MAX_QUESTION_CHARS = 500
MAX_CELL_CHARS = 80
MAX_COLUMNS = 20
MAX_COMMENT_CHARS = 60_000

# ----------------------------------------------------------------------------- the command

#: Matched against the line with its blanks stripped (no backtracking over a run of blanks).
_COMMAND = re.compile(r"/ask(?:[ \t]+(?P<rest>.*))?")
_SQL_INFO = frozenset({"", "sql", "postgresql", "postgres", "pgsql", "psql"})


class AskError(ValueError):
    """The `/ask` comment is malformed; the message (what was wrong, then usage) is for the user."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(f"{problem}\n\nUsage: {ASK_USAGE}")


@dataclass(frozen=True, slots=True)
class AskCommand:
    """What one `/ask` comment asked: a question, SQL the user wrote, or both."""

    #: The natural-language question ("" when only SQL was given).
    question: str
    #: SQL the user wrote in a ```sql fence after `/ask`, if any.
    sql: str | None = None


def parse_ask_command(body: str) -> AskCommand | None:
    """The first `/ask` command that starts a line, or None when there is none.

    The question is the rest of that line plus the prose lines right after it, up to a blank
    line or a code fence. A ```` ```sql ```` (or ``postgresql``, or plain) fenced block after the
    command gives SQL to run as written. Lines in fences, ``>`` quotes and HTML comments are not
    commands, and ``/asking`` is not ``/ask``.

    >>> parse_ask_command("/ask how many orders\\nwere paid last week?\\n\\nthanks")
    AskCommand(question='how many orders were paid last week?', sql=None)
    >>> parse_ask_command("/ask\\n```sql\\nSELECT count(*) FROM orders\\n```")
    AskCommand(question='', sql='SELECT count(*) FROM orders')
    >>> parse_ask_command("> /ask quoted") is None
    True

    Raises:
        AskError: nothing asked, a question over 500 characters, an overlong SQL block.
    """
    lines = list(comment.lines(body))
    found = next(
        (
            (i, match)
            for i, line in enumerate(lines)
            if line.kind == "text" and (match := _COMMAND.fullmatch(line.text.strip(" \t")))
        ),
        None,
    )
    if found is None:
        return None
    start, command = found
    words = [command["rest"] or ""]
    for line in lines[start + 1 :]:
        if line.kind != "text" or not line.text.strip():
            break
        words.append(line.text)
    question = " ".join(" ".join(words).split())
    sql = _fenced_sql(lines[start + 1 :])
    if not question and sql is None:
        raise AskError(
            "`/ask` needs a question, e.g. `/ask how many orders were placed last week?`"
        )
    if len(question) > MAX_QUESTION_CHARS:
        raise AskError(
            f"The question is {len(question)} characters long; keep it under "
            f"{MAX_QUESTION_CHARS} characters."
        )
    if sql is not None and len(sql) > MAX_SQL_CHARS:
        raise AskError(
            f"The SQL block is {len(sql)} characters long; at most {MAX_SQL_CHARS} can be checked."
        )
    return AskCommand(question=question, sql=sql)


def _fenced_sql(lines: Sequence[Line]) -> str | None:
    """The body of the first SQL (or unlabelled) fenced block, or None; blank blocks don't count."""
    body: list[str] | None = None
    for line in lines:
        if body is None:
            if line.kind == "open" and line.info in _SQL_INFO:
                body = []
            continue
        if line.kind != "code":
            break
        body.append(line.text)
    text = "\n".join(body).strip() if body is not None else ""
    return text or None


# ----------------------------------------------------------------------------- the replies


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
