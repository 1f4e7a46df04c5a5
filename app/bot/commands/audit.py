"""The `/audit` comment command: where it counts as a command, its options, and the help text."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import NoReturn

from app.bot.comment import command_lines, shown_word
from app.bot.repo_config import CONFIG_PATH, table_problem
from app.engine.proof.confidence import MIN_CONFIDENCE

__all__ = [
    "AUDIT_USAGE",
    "AuditCommand",
    "CommandError",
    "commands_help",
    "parse_audit_command",
]

AUDIT_USAGE = "`/audit [--dry-run] [--tables orders,sales.events] [--min-confidence 0.9]`"
MAX_TABLES = 50

# Matched against the line with its blanks stripped: a lazy ``.*?`` before ``[ \t]*`` made a
# long run of blanks backtrack quadratically (18 s for one 64 KiB comment).
_COMMAND = re.compile(r"/audit(?:[ \t]+(?P<args>.*))?")


class CommandError(ValueError):
    """The `/audit` line is malformed; the message (what was wrong, then usage) is for the user."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(f"{problem}\n\nUsage: {AUDIT_USAGE}")


@dataclass(frozen=True, slots=True)
class AuditCommand:
    """What one `/audit` comment asked for; None / empty means "as configured"."""

    dry_run: bool | None = None
    #: Only recommendations on these tables (``orders`` means public.orders).
    tables: tuple[str, ...] = ()
    #: Raise the confidence bar for this run (never below 0.80).
    min_confidence: float | None = None


def parse_audit_command(body: str) -> AuditCommand | None:
    """The first `/audit` command that starts a line, or None when there is none.

    Lines in code fences, ``>`` quotes and HTML comments are not commands, and ``/auditing``
    is not ``/audit``.

    >>> parse_audit_command("Please run\\n/audit --dry-run --tables orders")
    AuditCommand(dry_run=True, tables=('orders',), min_confidence=None)
    >>> parse_audit_command("```\\n/audit\\n```\\n> /audit") is None
    True

    Raises:
        CommandError: unknown options or bad values.
    """
    for line in command_lines(body):
        match = _COMMAND.fullmatch(line.strip(" \t"))
        if match:
            return _options((match["args"] or "").split())
    return None


def _options(words: list[str]) -> AuditCommand:
    dry_run: bool | None = None
    tables: tuple[str, ...] | None = None
    min_confidence: float | None = None
    words = list(words)
    while words:
        word = words.pop(0)
        name, equals, value = word.partition("=")
        if name in ("--help", "-h"):
            raise CommandError("`/audit` audits the target this repository names and reports here.")
        if name == "--dry-run" and not equals:
            dry_run = True
        elif name in ("--tables", "--min-confidence"):
            if not equals:
                if not words:
                    raise CommandError(f"`{name}` needs a value.")
                value = words.pop(0)
            if name == "--tables":
                while value.endswith(",") and words:
                    value += words.pop(0)  # "--tables orders, events"
                tables = _tables(value) if tables is None else _twice(name)
            else:
                min_confidence = _confidence(value) if min_confidence is None else _twice(name)
        else:
            raise CommandError(f"`{shown_word(word)}` is not an option of `/audit`.")
    return AuditCommand(dry_run=dry_run, tables=tables or (), min_confidence=min_confidence)


def _twice(name: str) -> NoReturn:
    raise CommandError(f"`{name}` is given twice.")


def _tables(value: str) -> tuple[str, ...]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise CommandError("`--tables` needs at least one table, e.g. `--tables orders`.")
    if len(names) > MAX_TABLES:
        raise CommandError(f"`--tables` names {len(names)} tables; at most {MAX_TABLES}.")
    for name in names:
        problem = table_problem(name)
        if problem:
            raise CommandError(f"`--tables`: `{shown_word(name)}` is not a table name.")
    return tuple(dict.fromkeys(names))


def _confidence(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if MIN_CONFIDENCE <= number <= 1.0:
        return number
    if 0 <= number < MIN_CONFIDENCE:
        raise CommandError(
            f"`--min-confidence {shown_word(value)}` would lower the bar: it can be raised from "
            f"{MIN_CONFIDENCE:.2f} up to 1.0, never lowered."
        )
    raise CommandError(
        f"`--min-confidence` must be a number from {MIN_CONFIDENCE:.2f} to 1.0, "
        f"got `{shown_word(value)}`."
    )


def commands_help(slug: str = "db-architect") -> str:
    """The commands as a Markdown list, for pull-request bodies and replies."""
    return "\n".join(
        [
            f"Comment in any issue of this repository (people with write access only); "
            f"**{slug}[bot]** reacts with 👀 and answers in one comment it keeps up to date:",
            "",
            "- `/audit`: audit the database this repository names and open pull requests for "
            "recommendations that clear the confidence bar",
            "- `/audit --dry-run`: audit and report, but open or change nothing",
            "- `/audit --tables orders,sales.events`: only recommendations on these tables "
            "(`orders` means `public.orders`)",
            "- `/audit --min-confidence 0.9`: a higher bar for this run (it is never below 0.80)",
            "- `/ask <question>`: answer a question about the data with one read-only SELECT "
            "(drafted by Claude when configured, or given in a ```` ```sql ```` block after "
            "`/ask`); private repositories only",
            "",
            f"Settings (target, limits, labels, schedule, `ignore`) live in `{CONFIG_PATH}` "
            "on the default branch.",
        ]
    )
