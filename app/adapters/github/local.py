"""Reading a repository from a local checkout, for runs without GitHub (no App credentials).

``make run`` and the CLI's offline mode audit a working tree: files come from disk (the
working tree, whatever ``ref`` says), "our pull requests" are what the outbox holds, and the
local operator may do anything.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

from app.adapters.github.models import PullInfo, RepoInfo
from app.adapters.github.outbox import OutboxEffects
from app.adapters.github.repo import MAX_FILE_BYTES

__all__ = ["NO_SHA", "LocalReader"]

#: The head sha reported when ``root`` is not a git checkout.
NO_SHA = "0" * 40
GIT_TIMEOUT_S = 10.0


def _git(root: Path, *args: str) -> str | None:
    """The stripped output of a read-only git command in ``root``, or ``None`` if it fails."""
    git = shutil.which("git")
    if git is None:
        return None
    try:
        done = subprocess.run(  # noqa: S603 (fixed read-only git commands, no shell)
            [git, "-C", str(root), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    out = done.stdout.strip()
    return out if done.returncode == 0 and out else None


def _repo_info(root: Path) -> RepoInfo:
    if _git(root, "rev-parse", "--is-inside-work-tree") != "true":
        return RepoInfo(default_branch="main", head_sha=NO_SHA)
    remote_head = _git(root, "symbolic-ref", "--short", "refs/remotes/origin/HEAD")
    branch = (
        remote_head.partition("/")[2]
        if remote_head
        else _git(root, "symbolic-ref", "--short", "HEAD") or "main"
    )
    return RepoInfo(default_branch=branch, head_sha=_git(root, "rev-parse", "HEAD") or NO_SHA)


class LocalReader:
    """:class:`~.models.RepoReader` over a directory on disk."""

    def __init__(self, root: Path, outbox: OutboxEffects | None = None) -> None:
        self.root = root
        self.outbox = outbox

    def _inside(self, path: str) -> Path | None:
        """``root/path`` if it stays inside ``root`` (no ``..`` or absolute escapes)."""
        base = self.root.resolve()
        target = (base / path.strip("/")).resolve()
        return target if target.is_relative_to(base) else None

    async def repo_info(self) -> RepoInfo:
        """The checkout's default branch (``origin/HEAD``, else the current one) and HEAD."""
        return await asyncio.to_thread(_repo_info, self.root)

    async def file_text(self, path: str, ref: str) -> str | None:
        """The working tree's ``path`` (``ref`` is ignored); ``None`` if it is not a file."""
        return await asyncio.to_thread(self._read, path)

    def _read(self, path: str) -> str | None:
        target = self._inside(path)
        if target is None or not target.is_file():
            return None
        return target.read_text(encoding="utf-8", errors="replace")

    async def python_files(self, directory: str, ref: str) -> dict[str, str]:
        """The ``*.py`` files directly in ``directory``; files over 1 MB are skipped."""
        return await asyncio.to_thread(self._python_files, directory)

    def _python_files(self, directory: str) -> dict[str, str]:
        folder = self._inside(directory)
        if folder is None or not folder.is_dir():
            return {}
        return {
            path.name: path.read_text(encoding="utf-8", errors="replace")
            for path in sorted(folder.glob("*.py"))
            if path.is_file() and path.stat().st_size <= MAX_FILE_BYTES
        }

    async def bot_pulls(self, branch_prefix: str) -> list[PullInfo]:
        """What the outbox holds open (so a second dry run updates instead of duplicating)."""
        if self.outbox is None:
            return []
        return await asyncio.to_thread(self.outbox.pulls, branch_prefix)

    async def permission(self, login: str) -> str:
        """``admin``: whoever runs the tool locally owns the checkout."""
        return "admin"

    async def pull(self, number: int) -> PullInfo | None:
        """A local checkout has no pull requests of its own."""
        return None
