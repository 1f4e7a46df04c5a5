"""An audit job's request (a JSON-safe job argument), the memo jobs share, and queueing one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from app.adapters.github.models import CheckOutput, CheckRun, RepoRef
from app.adapters.github.repo import Effects, RepoReader
from app.bot.replies.checkrun import CHECK_NAME
from app.bot.replies.delivery import queued_summary

__all__ = ["AuditRequest", "Memo", "queue_audit"]

#: How long a job's memo entries (check run ids, reply ids) are kept.
MEMO_TTL_S = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class AuditRequest:
    """One requested audit of one repository, whoever asked (comment, dispatch, check run)."""

    installation_id: int
    owner: str
    name: str
    #: ``comment`` | ``dispatch`` | ``check_run`` | ``command`` | ``schedule`` | ``api``.
    trigger: str
    #: What makes this request unique (the delivery id, the schedule slot): the job id.
    trigger_key: str
    requested_by: str | None = None
    #: ``True``/``False`` overrides the repository config; ``None`` lets it decide.
    dry_run: bool | None = None
    tables: tuple[str, ...] = ()
    min_confidence: float | None = None
    #: The issue of an ``/audit`` comment and the result comment edited in place.
    issue_number: int | None = None
    comment_id: int | None = None
    #: ``@db-architect recreate``: the one recommendation whose branch is rebuilt by force.
    force_fingerprint: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        """``owner/name``."""
        return f"{self.owner}/{self.name}"

    @property
    def check_run_key(self) -> str:
        """The memo key of this request's check run (created queued, finished by the audit)."""
        return f"dbarch:check:{self.full_name}:{self.trigger_key}"

    def to_job(self) -> dict[str, Any]:
        """A JSON-safe dict for the arq job argument."""
        data = asdict(self)
        data["tables"] = list(self.tables)
        return data

    @classmethod
    def from_job(cls, data: dict[str, Any]) -> AuditRequest:
        """The inverse of :meth:`to_job` (unknown keys are ignored: old jobs stay readable)."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["tables"] = tuple(known.get("tables") or ())
        return cls(**known)


class Memo(Protocol):
    """A small shared key-value memory, so a job that runs twice reuses what it created."""

    async def get(self, key: str) -> str | None:
        """The value, or ``None``."""
        ...

    async def set(self, key: str, value: str, ttl_s: int) -> None:
        """Remember ``value`` for ``ttl_s`` seconds."""
        ...


async def queue_audit(
    request: AuditRequest,
    *,
    github: Callable[[RepoRef], Awaitable[tuple[RepoReader, Effects]]],
    memo: Memo,
    enqueue: Callable[[AuditRequest], Awaitable[bool]],
) -> str:
    """Show a queued check run on the default branch's head, then enqueue the audit.

    The check run is created first and remembered under the request's key, so the audit
    job (which may start at once) moves that run forward instead of creating a second one.
    """
    if await memo.get(request.check_run_key) is None:
        repo = RepoRef(request.installation_id, request.owner, request.name)
        reader, effects = await github(repo)
        info = await reader.repo_info()
        check_id = await effects.check_run(
            CheckRun(
                info.head_sha,
                name=CHECK_NAME,
                status="queued",
                output=CheckOutput(
                    "Audit queued", queued_summary(request.trigger, request.requested_by)
                ),
                external_id=request.trigger_key,
            )
        )
        await memo.set(request.check_run_key, str(check_id), MEMO_TTL_S)
    return "audit queued" if await enqueue(request) else "audit already queued"
