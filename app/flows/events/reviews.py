"""``pull_request_review`` and ``pull_request_review_comment`` on our PRs become feedback."""

from __future__ import annotations

from app.bot.pulls.ours import bot_pull
from app.flows.events.common import Delivery, from_member
from app.flows.feedback import record_feedback

__all__ = ["handle"]


async def handle(d: Delivery) -> str:
    """Record a submitted review, or a comment on the migration's lines, as feedback."""
    pull = bot_pull((d.payload.get("pull_request") or {}), d.deps.bot_login)
    review = d.event == "pull_request_review"
    item = d.payload.get("review" if review else "comment") or {}
    store = d.deps.feedback
    if pull is None:
        return "ignored: not our pull request"
    if store is None:
        return "ignored: no store for feedback"
    if not d.from_person:
        return "ignored: feedback counts from people"
    if not from_member(item):
        return "ignored: feedback counts from the repository's members"
    text = str(item.get("body") or "")
    state = str(item.get("state") or "").lower() if review else None
    if state == "commented" and not text.strip():
        # GitHub wraps every lone review comment in an empty "commented" review: the comment
        # itself arrives as pull_request_review_comment.
        return "ignored: empty review"
    source = "review" if review else "review_comment"
    return await record_feedback(
        store,
        d.repo.full_name,
        pull,
        source=source,
        source_id=f"{source}:{item.get('id')}",
        author=d.sender,
        text=text,
        review_state=state,
    )
