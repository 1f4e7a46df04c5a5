"""Comments in our PR's conversation: `@db-architect` commands, or feedback for memory."""

from __future__ import annotations

from dataclasses import replace

from app.adapters.github.repo import Effects
from app.bot.commands.pr import PrCommand, PrCommandError, parse_pr_command
from app.bot.pulls.fixpr import BRANCH_PREFIX
from app.bot.pulls.ours import BotPull, bot_pull
from app.bot.replies.delivery import no_store_reply
from app.bot.replies.pr import command_error_reply, command_refusal_reply, queued_reply
from app.flows import feedback
from app.flows.events.common import WRITE_ROLES, Delivery, from_member

__all__ = ["handle"]


async def handle(d: Delivery) -> str:
    """A comment in a pull request's conversation: a command or feedback when the PR is ours."""
    deps = d.deps
    pull = bot_pull((d.payload.get("issue") or {}), deps.bot_login)
    comment = d.payload.get("comment") or {}
    if pull is None:
        return "ignored: comment on a pull request that is not ours"
    if not d.from_person:
        return "ignored: commands come from people"
    body = str(comment.get("body") or "")
    problem: PrCommandError | None = None
    try:
        command = parse_pr_command(body, deps.slug)
    except PrCommandError as err:
        command, problem = None, err
    if command is None and problem is None:
        if deps.feedback is None:
            return "ignored: no store for feedback"
        if not from_member(comment):
            return "ignored: feedback counts from the repository's members"
        return await feedback.record_feedback(
            deps.feedback,
            d.repo.full_name,
            pull,
            source="comment",
            source_id=f"comment:{comment.get('id')}",
            author=d.sender,
            text=body,
        )
    reader, effects = await deps.github(d.repo)
    login = str(d.sender)
    await effects.react(int(comment["id"]), "eyes")
    if command is not None and command.verb == "explain":
        if deps.feedback is None:
            await d.reply_once(effects, pull.number, no_store_reply(login))
            return "refused: no store"
        text = await feedback.explain(deps.feedback, deps.memo, d.repo.full_name, pull, login=login)
        await d.reply_once(effects, pull.number, text)
        return "explained"
    permission = await reader.permission(login)
    if permission not in WRITE_ROLES:
        await d.reply_once(
            effects, pull.number, command_refusal_reply(login, permission, deps.slug)
        )
        return f"refused: {login} has {permission} access"
    if command is None:
        if problem is not None:
            reply = command_error_reply(login, problem, deps.slug)
            await d.reply_once(effects, pull.number, reply)
        return "refused: bad command"
    if command.verb in ("ignore", "ignore_table"):
        return await _ignore(d, pull, command, login, int(comment["id"]))
    return await _reaudit(d, effects, pull, command.verb, login)


async def _ignore(
    d: Delivery, pull: BotPull, command: PrCommand, login: str, comment_id: int
) -> str:
    """``ignore`` / ``ignore table``: remember, close the PR if it is covered, answer."""
    reader, effects = await d.deps.github(d.repo)
    if d.deps.feedback is None:
        await d.reply_once(effects, pull.number, no_store_reply(login))
        return "refused: no store"
    if pull.branch is None:  # the issue side of a PR does not name its branch
        found = await reader.pull(pull.number)
        if found is not None and found.head_ref.startswith(BRANCH_PREFIX):
            pull = replace(pull, branch=found.head_ref)
    text = await feedback.ignore(
        d.deps.feedback,
        effects,
        d.repo.full_name,
        pull,
        command,
        login=login,
        source_id=f"command:{comment_id}",
    )
    await d.reply_once(effects, pull.number, text)
    return f"{command.verb}: done"


async def _reaudit(d: Delivery, effects: Effects, pull: BotPull, verb: str, login: str) -> str:
    """``recheck`` / ``recreate``: audit the PR's table again; the audit edits our reply."""
    if pull.table is None:
        return "refused: the pull request has no DB Architect marker"
    reply = await d.reply_once(effects, pull.number, queued_reply(login, verb, pull.table))
    return await d.audit(
        "command",
        login,
        tables=(pull.table,),
        issue_number=pull.number,
        comment_id=reply,
        force_fingerprint=pull.fingerprint if verb == "recreate" else None,
        extra={"verb": verb},
    )
