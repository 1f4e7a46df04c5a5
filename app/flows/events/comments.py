"""``issue_comment``: `/audit` and `/ask` in issues; comments on our PRs go to ``pull_comments``."""

from __future__ import annotations

from app.bot.commands.ask import AskCommand, AskError, parse_ask_command
from app.bot.commands.audit import AuditCommand, CommandError, parse_audit_command
from app.bot.replies.checkrun import command_error_comment, queued_comment, refusal_comment
from app.bot.replies.delivery import ask_answer, ask_error, ask_public, ask_refusal
from app.flows.events import pull_comments
from app.flows.events.common import WRITE_ROLES, Delivery

__all__ = ["handle"]


async def handle(d: Delivery) -> str:
    """A new comment: a command in an issue, or a command or feedback on our pull request."""
    if (d.payload.get("issue") or {}).get("pull_request") is not None:
        return await pull_comments.handle(d)
    if not d.from_person:
        return "ignored: commands come from people"
    body = str((d.payload.get("comment") or {}).get("body") or "")
    asked = _parse_ask(body)
    if asked is not None:
        return await _ask(d, asked)
    problem: CommandError | None = None
    try:
        command = parse_audit_command(body)
    except CommandError as err:
        command, problem = AuditCommand(), err
    if command is None:
        return "ignored: no command"
    reader, effects = await d.deps.github(d.repo)
    login = str(d.sender)
    await effects.react(int((d.payload.get("comment") or {})["id"]), "eyes")
    permission = await reader.permission(login)
    number = int((d.payload.get("issue") or {})["number"])
    if permission not in WRITE_ROLES:
        await d.reply_once(effects, number, refusal_comment(login, permission))
        return f"refused: {login} has {permission} access"
    if problem is not None:
        await d.reply_once(effects, number, command_error_comment(login, problem))
        return "refused: bad command"
    comment_id = await d.reply_once(effects, number, queued_comment(login, command))
    return await d.audit(
        "comment",
        login,
        dry_run=command.dry_run,
        tables=command.tables,
        min_confidence=command.min_confidence,
        issue_number=number,
        comment_id=comment_id,
    )


def _parse_ask(body: str) -> AskCommand | AskError | None:
    try:
        return parse_ask_command(body)
    except AskError as err:
        return err


async def _ask(d: Delivery, asked: AskCommand | AskError) -> str:
    """`/ask`: people with write access, private repositories only (answers hold data)."""
    reader, effects = await d.deps.github(d.repo)
    login = str(d.sender)
    number = int((d.payload.get("issue") or {})["number"])
    await effects.react(int((d.payload.get("comment") or {})["id"]), "eyes")
    permission = await reader.permission(login)
    if permission not in WRITE_ROLES:
        await d.reply_once(effects, number, ask_refusal(login, permission))
        return f"refused: {login} has {permission} access"
    if isinstance(asked, AskError):
        await d.reply_once(effects, number, ask_error(login, asked))
        return "refused: bad /ask"
    if (d.payload.get("repository") or {}).get("private") is not True:
        await d.reply_once(effects, number, ask_public(login))
        return "refused: /ask in a public repository"
    if d.deps.ask is None:
        return "refused: /ask is not available"
    text = await d.deps.ask(reader, asked)
    await d.reply_once(effects, number, ask_answer(login, text))
    return "answered /ask"
