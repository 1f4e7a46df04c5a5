"""`/ask`: the comment command (guard: app.engine.guard; replies: app.bot.replies.ask)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from app.bot import comment
from app.bot.comment import Line
from app.engine.guard import MAX_SQL_CHARS

__all__ = [
    "ASK_USAGE",
    "AskCommand",
    "AskError",
    "parse_ask_command",
]

ASK_USAGE = (
    "`/ask <a question about the data>`, or `/ask` followed by a ```` ```sql ```` block "
    "holding one SELECT"
)
MAX_QUESTION_CHARS = 500

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
