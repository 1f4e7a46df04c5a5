"""What the bot says in answer to a delivery: queued summaries, `/ask` answers, notices."""

from __future__ import annotations

from app.bot.repo_config import CONFIG_PATH
from app.engine import markdown as md

__all__ = [
    "IGNORE_NOTICE",
    "ask_answer",
    "ask_error",
    "ask_public",
    "ask_refusal",
    "no_marker_reply",
    "no_store_reply",
    "queued_summary",
]


def queued_summary(trigger: str, requested_by: str | None) -> str:
    """The queued check run's summary: who asked, how, and that audits run one at a time."""
    who = f" by {md.text('@' + requested_by, 60)}" if requested_by else ""
    return (
        f"An audit was requested{who} ({md.text(trigger, 40)}) and waits for a worker. "
        "Audits of one repository run one at a time."
    )


def ask_refusal(login: str, permission: str) -> str:
    """`/ask` from someone without write access."""
    held = "no access" if permission in ("", "none") else f"`{permission}` access"
    return (
        f"@{login}, only people with write access to this repository can use `/ask` (its "
        f"answers come from the database); you have {held}."
    )


def ask_public(login: str) -> str:
    """`/ask` in a public repository, where answers (rows of the database) would be public."""
    return (
        f"@{login}, `/ask` answers with rows from the database, and this repository is public, "
        "so DB Architect does not answer here. Ask in a private repository that uses the same "
        "target."
    )


def ask_error(login: str, problem: object) -> str:
    """A malformed `/ask`: the parser's message, addressed to its author."""
    return f"@{login}, {problem}"


def ask_answer(login: str, text: str) -> str:
    """The answer to an `/ask`, addressed to its author."""
    return f"@{login}\n\n{text}"


def no_store_reply(login: str) -> str:
    """A PR command that needs reviewer memory when the App runs without its store."""
    return (
        f"{md.mention(login)}, this DB Architect runs without its store (DBARCH_STORE_DSN), so "
        "it cannot remember ignores or explain its history. The operator can configure one."
    )


def no_marker_reply(login: str) -> str:
    """``ignore`` on a pull request whose description lost our marker."""
    return (
        f"{md.mention(login)}, this pull request carries no DB Architect marker (was its "
        "description edited?), so there is nothing to ignore. Close it, or use "
        "`@db-architect ignore table <table>`."
    )


#: Posted on our pull request when it is closed without merging.
IGNORE_NOTICE = (
    "### DB Architect ignore notification\n\n"
    "Because this pull request was closed without merging, DB Architect will not propose "
    "this change again unless the recommendation itself changes (other columns, another "
    "table, a different index). Its branch was deleted; to get the change back, restore the "
    "branch (the button above) and reopen this pull request.\n\n"
    f"To silence a whole table or rule, use `ignore` in `{CONFIG_PATH}`."
)
