"""The `@db-architect …` commands reviewers write on the bot's pull requests, and their help."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from app.bot.comment import command_lines, shown_word
from app.bot.repo_config import table_problem

__all__ = [
    "PR_VERBS",
    "PrCommand",
    "PrCommandError",
    "PrVerb",
    "parse_pr_command",
    "pr_commands_help",
    "pr_usage",
]

PrVerb = Literal["ignore", "ignore_table", "recreate", "recheck", "explain"]
_VERBS: dict[str, PrVerb] = {
    "ignore": "ignore",
    "recreate": "recreate",
    "recheck": "recheck",
    "explain": "explain",
}
#: The words a reviewer types after the mention (``ignore table`` is ``ignore`` + a table).
PR_VERBS: tuple[str, ...] = tuple(_VERBS)


def pr_usage(slug: str = "db-architect") -> str:
    """One line naming every command, for error replies."""
    return (
        f"`@{slug} ignore` · `@{slug} ignore table <table>` · `@{slug} recreate` · "
        f"`@{slug} recheck` · `@{slug} explain`"
    )


class PrCommandError(ValueError):
    """A mention that is not a valid command; the message (problem, then usage) is for the user."""

    def __init__(self, problem: str, slug: str = "db-architect") -> None:
        self.problem = problem
        super().__init__(f"{problem}\n\nUsage: {pr_usage(slug)}")


@dataclass(frozen=True, slots=True)
class PrCommand:
    """What one comment on a bot pull request asked for (``table`` only for ``ignore_table``)."""

    verb: PrVerb
    table: str | None = None


def _mention(slug: str) -> re.Pattern[str]:
    # ``@db-architect`` or ``@db-architect[bot]``, not ``@db-architect-staging``; GitHub
    # logins are case-insensitive, so the mention is too. Matched against the line with its
    # blanks stripped, so nothing can backtrack over a run of blanks.
    return re.compile(
        rf"@{re.escape(slug)}(?:\[bot\])?(?![\w-])[,:]?(?:[ \t]+(?P<args>.*))?",
        re.IGNORECASE,
    )


def parse_pr_command(body: str, slug: str = "db-architect") -> PrCommand | None:
    """The first `@db-architect` command that starts a line, or None when there is none.

    Like `/audit`: lines in code fences, ``>`` quotes and HTML comments are not commands, and
    a mention in the middle of a sentence is just a mention.

    >>> parse_pr_command("Thanks!\\n@db-architect ignore table events")
    PrCommand(verb='ignore_table', table='events')
    >>> parse_pr_command("> @db-architect recreate") is None
    True

    Raises:
        PrCommandError: a mention that starts a line but names no known command.
    """
    mention = _mention(slug)
    for line in command_lines(body):
        match = mention.fullmatch(line.strip(" \t"))
        if match:
            return _command((match["args"] or "").split(), slug)
    return None


def _command(words: list[str], slug: str) -> PrCommand:
    if not words:
        raise PrCommandError(f"`@{slug}` needs a command.", slug)
    verb, rest = words[0].lower().rstrip(".!"), words[1:]
    if verb in ("help", "--help", "-h"):
        raise PrCommandError(f"`@{slug}` understands these commands on its pull requests.", slug)
    if verb not in _VERBS:
        raise PrCommandError(f"`{shown_word(words[0])}` is not a command of `@{slug}`.", slug)
    if verb == "ignore" and rest:
        return _ignore_table(rest, slug)
    if rest:
        raise PrCommandError(f"`@{slug} {verb}` takes no arguments.", slug)
    return PrCommand(_VERBS[verb])


def _ignore_table(rest: list[str], slug: str) -> PrCommand:
    if rest[0].lower() != "table":
        raise PrCommandError(
            f"`@{slug} ignore` ignores this recommendation; to ignore a whole table write "
            f"`@{slug} ignore table <table>`.",
            slug,
        )
    if len(rest) != 2:
        raise PrCommandError(f"`@{slug} ignore table` needs exactly one table name.", slug)
    name = rest[1].strip("`")
    if table_problem(name):
        raise PrCommandError(f"`{shown_word(rest[1])}` is not a table name.", slug)
    return PrCommand("ignore_table", name)


def pr_commands_help(slug: str = "db-architect") -> str:
    """The pull-request commands as a Markdown list, for pull-request bodies and replies."""
    return "\n".join(
        [
            f"Comment on this pull request (people with write access only); **{slug}[bot]** "
            "reacts with 👀 and answers in one comment it keeps up to date:",
            "",
            f"- `@{slug} ignore`: close this pull request and never propose this "
            "recommendation again (until it changes)",
            f"- `@{slug} ignore table <table>`: never propose anything on this table "
            "(`orders` means `public.orders`)",
            f"- `@{slug} recreate`: rebuild the branch from scratch, dropping commits added to it",
            f"- `@{slug} recheck`: measure again and refresh the evidence",
            f"- `@{slug} explain`: explain the recommendation in plain language",
            "",
            "Reviews and comments here are remembered: a similar recommendation later is "
            "scored with what reviewers said about this one.",
        ]
    )
