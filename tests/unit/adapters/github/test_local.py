"""LocalReader: a checkout on disk stands in for GitHub when there are no App credentials."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from app.adapters.github import FileChange, FixChange, LocalReader, OutboxEffects, RepoRef
from app.adapters.github.local import NO_SHA


def checkout(root: Path) -> Path:
    (root / ".github").mkdir(parents=True)
    (root / ".github" / "db-architect.yml").write_text("version: 1\n")
    versions = root / "migrations" / "versions"
    versions.mkdir(parents=True)
    (versions / "a1_init.py").write_text("revision = 'a1'\n")
    (versions / "notes.txt").write_text("not python")
    (versions / "big.py").write_text("x" * (1024 * 1024 + 1))
    (versions / "sub").mkdir()
    (versions / "sub" / "c3.py").write_text("revision = 'c3'\n")
    return root


async def test_reads_files_from_the_working_tree(tmp_path: Path) -> None:
    reader = LocalReader(checkout(tmp_path / "repo"))
    assert await reader.file_text(".github/db-architect.yml", "main") == "version: 1\n"
    assert await reader.file_text(".github/missing.yml", "main") is None
    assert await reader.file_text("migrations/versions", "main") is None
    assert await reader.python_files("migrations/versions", "main") == {
        "a1_init.py": "revision = 'a1'\n"
    }
    assert await reader.python_files("nowhere", "main") == {}


async def test_paths_cannot_leave_the_checkout(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("s3cret")
    reader = LocalReader(checkout(tmp_path / "repo"))
    assert await reader.file_text("../secret.txt", "main") is None
    assert await reader.python_files("../", "main") == {}


async def test_a_plain_directory_is_main_at_no_commit(tmp_path: Path) -> None:
    info = await LocalReader(tmp_path).repo_info()
    assert (info.default_branch, info.head_sha) == ("main", NO_SHA)


def git_checkout(root: Path, branch: str) -> str:
    """Commit the tree at ``root`` on ``branch``; returns HEAD's sha."""
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", branch], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "init"], check=True)
    done = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True)
    return done.stdout.strip()


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
async def test_a_git_checkout_reports_its_branch_and_head(tmp_path: Path) -> None:
    root = checkout(tmp_path / "repo")
    head = git_checkout(root, "trunk")
    info = await LocalReader(root).repo_info()
    assert (info.default_branch, info.head_sha) == ("trunk", head)


async def test_pulls_come_from_the_outbox_and_the_operator_is_admin(tmp_path: Path) -> None:
    root = checkout(tmp_path / "repo")
    assert await LocalReader(root).bot_pulls("db-architect/") == []
    outbox = OutboxEffects(tmp_path / "outbox", RepoRef(0, "local", "repo"))
    change = FixChange(
        "db-architect/create_index/t-1",
        "main",
        "perf(db): add index",
        "body",
        "msg",
        (FileChange("migrations/versions/b2.py", "x"),),
        (),
    )
    published = await outbox.publish(change)
    (pull,) = await LocalReader(root, outbox).bot_pulls("db-architect/")
    assert (pull.number, pull.head_ref) == (published.number, change.branch)
    assert await LocalReader(root).permission("anyone") == "admin"
