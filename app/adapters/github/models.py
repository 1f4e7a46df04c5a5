"""What the flows exchange with GitHub: plain frozen values, and the two protocols behind them.

The flows only see these types, so the real API (:class:`~.repo.GitHubRepo`), the dry-run
outbox (:class:`~.outbox.OutboxEffects`) and a local checkout (:class:`~.local.LocalReader`)
are interchangeable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

__all__ = [
    "CHECK_TEXT_LIMIT",
    "MAX_CHECK_ACTIONS",
    "TEXT_LIMIT",
    "CheckAction",
    "CheckOutput",
    "CheckRun",
    "Effects",
    "FileChange",
    "FixChange",
    "PublishAction",
    "Published",
    "PullInfo",
    "RepoInfo",
    "RepoReader",
    "RepoRef",
    "trim",
]

#: Comment and PR bodies: GitHub rejects more than 65,536 characters; keep room for the note.
TEXT_LIMIT = 65_000
#: Check-run ``output.summary`` and ``output.text``: at most 65,535 characters each.
CHECK_TEXT_LIMIT = 65_535
#: GitHub shows at most three buttons on a check run.
MAX_CHECK_ACTIONS = 3

_TRIM_NOTE = "\n\n… (truncated: the full text is longer than GitHub allows)"

PublishAction = Literal["created", "updated", "unchanged", "blocked"]


def trim(text: str, limit: int = TEXT_LIMIT) -> str:
    """``text`` cut to at most ``limit`` characters, saying so when it was cut.

    >>> trim("abc", 10)
    'abc'
    >>> len(trim("x" * 200, 100))
    100
    """
    if len(text) <= limit:
        return text
    if limit <= len(_TRIM_NOTE):
        return text[:limit]
    return text[: limit - len(_TRIM_NOTE)] + _TRIM_NOTE


@dataclass(frozen=True, slots=True)
class RepoRef:
    """A repository and the installation that may act on it."""

    installation_id: int
    owner: str
    name: str

    @property
    def full_name(self) -> str:
        """``owner/name``, as GitHub writes it."""
        return f"{self.owner}/{self.name}"


@dataclass(frozen=True, slots=True)
class RepoInfo:
    """The default branch and the commit it points at (what an audit is reported against)."""

    default_branch: str
    head_sha: str


@dataclass(frozen=True, slots=True)
class PullInfo:
    """The few fields of a pull request the flows decide on."""

    number: int
    state: str
    merged: bool
    head_ref: str
    title: str
    body: str
    created_at: datetime
    html_url: str
    user_login: str


@dataclass(frozen=True, slots=True)
class FileChange:
    """One file to write (its whole new content) at a repository-relative path."""

    path: str
    content: str


@dataclass(frozen=True, slots=True)
class FixChange:
    """One pull request to open or refresh: a branch with files on top of ``base_branch``."""

    branch: str
    base_branch: str
    title: str
    body: str
    commit_message: str
    files: tuple[FileChange, ...]
    labels: tuple[str, ...]
    #: The open PR already proposing this change (from ``bot_pulls``), to update in place.
    existing: PullInfo | None = None
    #: ``@db-architect recreate``: rebuild the branch from the base even over people's commits.
    force: bool = False


@dataclass(frozen=True, slots=True)
class Published:
    """What :meth:`Effects.publish` did.

    ``blocked`` means the branch carries commits that are not ours: a human pushed, and we
    never overwrite people's work.
    """

    number: int
    url: str
    action: PublishAction


@dataclass(frozen=True, slots=True)
class CheckAction:
    """A check-run button; GitHub rejects labels over 20, descriptions over 40 characters."""

    label: str
    description: str
    identifier: str

    def __post_init__(self) -> None:
        for field, value, limit in (
            ("label", self.label, 20),
            ("description", self.description, 40),
            ("identifier", self.identifier, 20),
        ):
            if not value or len(value) > limit:
                raise ValueError(f"check action {field} must be 1-{limit} characters: {value!r}")


@dataclass(frozen=True, slots=True)
class CheckOutput:
    """A check run's report, cut to GitHub's limits so an update is never rejected for size."""

    title: str
    summary: str
    text: str | None = None
    actions: tuple[CheckAction, ...] = ()

    def __post_init__(self) -> None:
        if len(self.actions) > MAX_CHECK_ACTIONS:
            raise ValueError(f"a check run shows at most {MAX_CHECK_ACTIONS} actions")
        object.__setattr__(self, "summary", trim(self.summary, CHECK_TEXT_LIMIT))
        if self.text is not None:
            object.__setattr__(self, "text", trim(self.text, CHECK_TEXT_LIMIT))


@dataclass(frozen=True, slots=True)
class CheckRun:
    """One check run as we show it: created when ``id`` is None, else that run updated."""

    head_sha: str
    name: str
    status: str
    output: CheckOutput | None = None
    #: A conclusion completes the run whatever ``status`` says.
    conclusion: str | None = None
    id: int | None = None
    #: Ties the run to what triggered it (the audit request's trigger key).
    external_id: str | None = None


class RepoReader(Protocol):
    """Reading one repository: its default branch, files, our pull requests, people's rights."""

    async def repo_info(self) -> RepoInfo:
        """The default branch and its head commit."""
        ...

    async def file_text(self, path: str, ref: str) -> str | None:
        """The text of ``path`` at ``ref``; ``None`` when there is no such file."""
        ...

    async def python_files(self, directory: str, ref: str) -> dict[str, str]:
        """The ``*.py`` files directly in ``directory`` (file name → text); ``{}`` if none."""
        ...

    async def bot_pulls(self, branch_prefix: str) -> list[PullInfo]:
        """Our pull requests (any state, newest first) whose branch starts with the prefix."""
        ...

    async def permission(self, login: str) -> str:
        """``admin``, ``maintain``, ``write``, ``triage``, ``read`` or ``none``."""
        ...

    async def pull(self, number: int) -> PullInfo | None:
        """One pull request by number; ``None`` when there is no such pull request."""
        ...


class Effects(Protocol):
    """Every change the App makes on GitHub goes through here, so a dry run can divert it."""

    dry_run: bool

    async def react(self, comment_id: int, content: str) -> None:
        """Put a reaction (e.g. ``eyes``) on an issue comment."""
        ...

    async def comment(self, issue_number: int, body: str, comment_id: int | None = None) -> int:
        """Create a comment, or edit ``comment_id`` in place; returns the comment's id."""
        ...

    async def check_run(self, run: CheckRun) -> int:
        """Create ``run`` (no ``id``) or update the check run ``run.id``; returns its id."""
        ...

    async def publish(self, change: FixChange) -> Published:
        """Open or refresh the pull request for ``change``."""
        ...

    async def delete_branch(self, branch: str) -> None:
        """Delete one of our branches; a branch that is already gone is fine."""
        ...

    async def close_pull(self, number: int) -> None:
        """Close one of our pull requests (without merging); an already closed one is fine."""
        ...
