"""What every event handler shares: the worker's deps, one delivery, and its reply and audit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.adapters.github.models import RepoRef
from app.adapters.github.repo import Effects, RepoReader
from app.bot.commands.ask import AskCommand
from app.flows.feedback import FeedbackDeps
from app.flows.requests import MEMO_TTL_S, AuditRequest, Memo, queue_audit

__all__ = [
    "MEMBERS",
    "WRITE_ROLES",
    "Delivery",
    "DeliveryDeps",
    "Event",
    "Lifecycle",
    "from_member",
]

WRITE_ROLES = frozenset({"admin", "maintain", "write"})
#: Whose words count as feedback: people of the repository, not drive-by commenters (on a
#: public repository anyone can comment, and memory would let them sway later audits).
MEMBERS = frozenset({"OWNER", "MEMBER", "COLLABORATOR"})


class Lifecycle(Protocol):
    """The store's side of installations: onboard, pause, purge."""

    async def upsert_installation(self, installation_id: int, account: str) -> None: ...
    async def suspend_installation(self, installation_id: int, suspended: bool) -> None: ...
    async def purge_installation(self, installation_id: int) -> None: ...
    async def add_repositories(
        self, installation_id: int, repos: list[tuple[int, str]]
    ) -> None: ...
    async def remove_repositories(self, installation_id: int, repo_ids: list[int]) -> None: ...
    async def is_paused(self, installation_id: int) -> bool: ...


@dataclass(slots=True)
class DeliveryDeps:
    """What handling a delivery talks to; the worker builds it per job."""

    bot_login: str
    github: Callable[[RepoRef], Awaitable[tuple[RepoReader, Effects]]]
    enqueue_audit: Callable[[AuditRequest], Awaitable[bool]]
    memo: Memo
    lifecycle: Lifecycle | None = None
    #: Reviewer memory; None without a store (feedback is then not kept, commands refused).
    feedback: FeedbackDeps | None = None
    #: Answers an `/ask` (``app.flows.ask.answer`` bound to its deps); None: not offered.
    ask: Callable[[RepoReader, AskCommand], Awaitable[str]] | None = None
    #: The App's slug, as people mention it (``db-architect``): ``bot_login`` without ``[bot]``.
    slug: str = field(init=False)

    def __post_init__(self) -> None:
        self.slug = self.bot_login.removesuffix("[bot]")


@dataclass(frozen=True, slots=True)
class Event:
    """One queued delivery as its handler sees it: the job, its decoded payload and the deps."""

    job: Mapping[str, Any]
    payload: Mapping[str, Any]
    deps: DeliveryDeps
    event: str
    #: The payload's action (for ``repository_dispatch``, its ``event_type``).
    action: str | None


@dataclass(frozen=True, slots=True)
class Delivery(Event):
    """A delivery about one repository, from someone (``sender``) who is not the App itself."""

    repo: RepoRef
    #: The login of whoever caused the delivery, when the payload names one.
    sender: str | None
    #: Whether a person (not an App or a bot account) caused it.
    from_person: bool

    async def reply_once(self, effects: Effects, number: int, body: str) -> int:
        """One reply per delivery, even when the job runs twice."""
        key = f"dbarch:reply:{self.job['delivery_id']}"
        known = await self.deps.memo.get(key)
        comment_id = await effects.comment(number, body, comment_id=int(known) if known else None)
        if not known:
            await self.deps.memo.set(key, str(comment_id), MEMO_TTL_S)
        return comment_id

    async def audit(self, trigger: str, requested_by: str | None, **options: Any) -> str:
        """Queue the audit this delivery asks for, its check run shown queued first.

        The delivery id makes the request unique (and its job id).
        """
        repo = self.repo
        request = AuditRequest(
            installation_id=repo.installation_id,
            owner=repo.owner,
            name=repo.name,
            trigger=trigger,
            trigger_key=str(self.job["delivery_id"]),
            requested_by=requested_by,
            **options,
        )
        deps = self.deps
        return await queue_audit(
            request, github=deps.github, memo=deps.memo, enqueue=deps.enqueue_audit
        )


def from_member(item: Mapping[str, Any]) -> bool:
    """Whether a review or comment comes from the repository's people (see :data:`MEMBERS`)."""
    return str(item.get("author_association") or "") in MEMBERS
