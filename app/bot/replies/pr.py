"""The bot's answers to `@db-architect …` commands on its pull requests (one comment each)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from app.bot.commands.pr import PrCommandError, pr_commands_help
from app.bot.memory.feedback import quote
from app.bot.pulls.fixpr import short_table
from app.engine import markdown as md

__all__ = [
    "COMMAND_HEADING",
    "PastFeedback",
    "command_error_reply",
    "command_refusal_reply",
    "explain_reply",
    "ignore_reply",
    "ignore_table_reply",
    "queued_reply",
]

COMMAND_HEADING = "### DB Architect"
MAX_CHARS = 60_000
_MAX_FEEDBACK = 5


def _reply(text: str) -> str:
    body = f"{COMMAND_HEADING}\n\n{text.rstrip()}\n"
    return md.fit(body, MAX_CHARS, "… cut to stay within GitHub's size limit.")


def command_refusal_reply(user: str, permission: str, slug: str = "db-architect") -> str:
    """A polite no for someone without write access."""
    held = "no access" if permission in ("", "none") else f"{md.code(permission, 40)} access"
    return _reply(
        f"{md.mention(user)}, only people with write access to this repository can give "
        f"{md.code('@' + slug)} commands (except {md.code(f'@{slug} explain')}); you have {held}."
    )


def command_error_reply(user: str, err: PrCommandError, slug: str = "db-architect") -> str:
    """What was wrong with the command, and every command there is."""
    return _reply(f"{md.mention(user)}, {md.inline(err.problem, 400)}\n\n{pr_commands_help(slug)}")


def ignore_reply(user: str, fingerprint: str, *, closed: bool) -> str:
    """``@db-architect ignore``: this recommendation is never proposed again."""
    done = " I closed this pull request and deleted its branch." if closed else ""
    return _reply(
        f"{md.mention(user)}, ignored: DB Architect will not propose this change (fingerprint "
        f"{md.code(fingerprint, 40)}) in this repository again.{done} Reviewer memory keeps the "
        "decision, so similar recommendations elsewhere start with a little less confidence."
    )


def ignore_table_reply(user: str, table: str, *, closed: bool) -> str:
    """``@db-architect ignore table T``: nothing on that table is proposed again."""
    done = (
        " This pull request is on that table, so I closed it and deleted its branch."
        if closed
        else ""
    )
    return _reply(
        f"{md.mention(user)}, ignored: DB Architect will not propose changes on "
        f"{md.code(short_table(table), 200)} in "
        f"this repository again.{done} To see them anyway, run the CLI "
        "(`dbarchitect audit`), which ignores nothing."
    )


def queued_reply(user: str, verb: str, table: str) -> str:
    """``recheck`` / ``recreate``: an audit of the table is queued; its result replaces this."""
    what = (
        "re-measure it and refresh the evidence"
        if verb == "recheck"
        else "rebuild this branch from the base branch, over any other commits on it"
    )
    return _reply(
        f"{md.mention(user)} asked to {what}: an audit of {md.code(short_table(table), 200)} "
        "is queued. This "
        "comment shows the result when it is done."
    )


@dataclass(frozen=True, slots=True)
class PastFeedback:
    """What someone said about this recommendation (newest first in ``explain_reply``)."""

    author: str | None
    classification: str | None
    reason: str | None
    body: str | None


def explain_reply(
    user: str,
    *,
    title: str,
    confidence: float | None,
    breakdown: Mapping[str, float],
    descriptor: str | None,
    feedback: Sequence[PastFeedback],
    prose: str | None,
    slug: str = "db-architect",
) -> str:
    """``@db-architect explain``: what the PR does, why, how sure, and what reviewers said.

    ``prose`` is Claude's plain-language explanation when one is configured, shown as inert
    text (links only to PostgreSQL's documentation); without it the answer is built from
    the stored facts alone.
    """
    lines = [f"{md.mention(user)}, here is what this pull request does and why.", ""]
    if prose and prose.strip():
        lines += [md.prose(prose, md.MAX_PROSE, links=md.DOC_HOSTS), ""]
    lines += [f"**{md.text(title, 300)}**", ""]
    if descriptor:
        lines += [f"- What it is: {md.text(descriptor, 400)}"]
    if confidence is not None:
        lines += [f"- Confidence: **{confidence:.0%}** (a pull request needs at least 80%)."]
        if breakdown:
            parts = sorted(breakdown.items(), key=lambda kv: -abs(kv[1]))
            shown = ", ".join(f"{md.text(k.replace('_', ' '), 40)} {v:+.3f}" for k, v in parts)
            lines += [f"- Where it comes from: {shown}."]
    else:
        lines += ["- Confidence: not recorded yet; the next audit stores it."]
    said = [f for f in feedback if f.classification][:_MAX_FEEDBACK]
    if said:
        lines += ["", "What reviewers said so far:"]
        for item in said:
            who = md.text(f"@{item.author}", 60) if item.author else "someone"
            words = f': "{md.text(quote(item.body))}"' if item.body and item.body.strip() else ""
            why = f" ({md.text(item.reason, 100)})" if item.reason else ""
            lines.append(f"- {who}: {md.text(item.classification or '', 20)}{why}{words}")
    lines += [
        "",
        "The evidence above (measured before/after timings, plans and the confidence table) "
        f"is what the decision rests on; {md.code(f'@{slug} recheck')} measures again.",
        "",
        f"<details><summary>Commands</summary>\n\n{pr_commands_help(slug)}\n\n</details>",
    ]
    return _reply("\n".join(lines))
