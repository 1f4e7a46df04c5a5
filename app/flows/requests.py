"""What an audit job is asked to do (a JSON-safe job argument) and the memo jobs share."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

__all__ = ["AuditRequest", "DictMemo", "Memo"]


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


class DictMemo:
    """An in-process :class:`Memo` (tests and single-process runs)."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    async def get(self, key: str) -> str | None:
        """The value, or ``None``."""
        return self.values.get(key)

    async def set(self, key: str, value: str, ttl_s: int) -> None:
        """Remember ``value`` (``ttl_s`` is ignored in process)."""
        self.values[key] = value
