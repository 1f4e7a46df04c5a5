"""``pull_request`` closed: delete our branch, remember the merge or the close in memory."""

from __future__ import annotations

from app.bot.pulls.fixpr import BRANCH_PREFIX
from app.bot.pulls.ours import bot_pull
from app.bot.replies.delivery import IGNORE_NOTICE
from app.flows.events.common import Delivery
from app.flows.feedback import record_feedback

__all__ = ["handle"]


async def handle(d: Delivery) -> str:
    """Delete our branch when its PR closes; a close without merge is remembered as "ignored"."""
    pull = d.payload.get("pull_request") or {}
    branch = str((pull.get("head") or {}).get("ref") or "")
    author = (pull.get("user") or {}).get("login")
    if not branch.startswith(BRANCH_PREFIX) or author != d.deps.bot_login:
        return "ignored: not our pull request"
    _, effects = await d.deps.github(d.repo)
    await effects.delete_branch(branch)
    merged = bool(pull.get("merged"))
    remembered = await _remember(d, merged)
    if merged:
        return f"merged: deleted {branch}{remembered}"
    await d.reply_once(effects, int(pull["number"]), IGNORE_NOTICE)
    return (
        f"closed unmerged: deleted {branch}; ignored until the recommendation changes{remembered}"
    )


async def _remember(d: Delivery, merged: bool) -> str:
    """A merge accepts the recommendation and a close rejects it: both go into memory."""
    pull = bot_pull((d.payload.get("pull_request") or {}), d.deps.bot_login)
    memory = d.deps.feedback
    if memory is None or pull is None:
        return ""
    repository = d.repo.full_name
    if pull.fingerprint:
        state = "merged" if merged else "ignored"
        await memory.memory.set_state(repository, pull.fingerprint, state, pull.number)
    outcome = await record_feedback(
        memory,
        repository,
        pull,
        source="merge" if merged else "close",
        source_id=f"pull:{pull.number}",
        author=d.sender,
        merged=merged,
    )
    return f"; {outcome}"
