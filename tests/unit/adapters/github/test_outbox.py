"""The dry-run outbox: what would be published lands in files, and repeats are recognised."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from app.adapters.github import (
    CheckAction,
    CheckOutput,
    CheckRun,
    FileChange,
    FixChange,
    OutboxEffects,
    Published,
    RepoRef,
)
from app.adapters.github.outbox import PSEUDO_BASE

REF = RepoRef(installation_id=7, owner="octo", name="shop")
BRANCH = "db-architect/create_index/orders-3f9a1c2b"
REVISION = "migrations/versions/b2_add_index.py"


def change(**overrides: Any) -> FixChange:
    values: dict[str, Any] = {
        "branch": BRANCH,
        "base_branch": "main",
        "title": "perf(db): add index on orders (customer_id)",
        "body": "Evidence\n\n<!-- db-architect:meta e30= -->",
        "commit_message": "perf(db): add index",
        "files": (FileChange(REVISION, "revision = 'b2'\n"),),
        "labels": ("db-architect",),
    }
    return FixChange(**(values | overrides))


def actions(root: Path) -> list[dict[str, Any]]:
    lines = (root / "octo" / "shop" / "actions.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


class Recorder:
    """Effects that only remember what they were asked (the 'report to GitHub' side)."""

    dry_run = False

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def react(self, comment_id: int, content: str) -> None:
        self.calls.append(("react", (comment_id, content)))

    async def comment(self, issue_number: int, body: str, comment_id: int | None = None) -> int:
        self.calls.append(("comment", (issue_number, body, comment_id)))
        return 555

    async def check_run(self, run: CheckRun) -> int:
        self.calls.append(("check_run", (run.head_sha, run)))
        return 777

    async def publish(self, change: FixChange) -> Published:
        raise AssertionError("a dry run never publishes on GitHub")

    async def delete_branch(self, branch: str) -> None:
        raise AssertionError("a dry run never deletes branches on GitHub")

    async def close_pull(self, number: int) -> None:
        raise AssertionError("a dry run never closes pull requests on GitHub")


async def test_publish_writes_the_pull_request(tmp_path: Path) -> None:
    outbox = OutboxEffects(tmp_path, REF)
    assert outbox.dry_run is True
    published = await outbox.publish(change())
    directory = tmp_path / "octo" / "shop" / "db-architect__create_index__orders-3f9a1c2b"
    assert published.action == "created"
    assert published.number >= PSEUDO_BASE
    assert published.url == directory.absolute().as_uri()
    assert (directory / "pr.md").read_text() == (
        "# perf(db): add index on orders (customer_id)\n\n"
        "Evidence\n\n<!-- db-architect:meta e30= -->\n"
    )
    assert (directory / "files" / REVISION).read_text() == "revision = 'b2'\n"
    meta = json.loads((directory / "meta.json").read_text())
    assert meta["branch"] == BRANCH
    assert meta["base"] == "main"
    assert meta["labels"] == ["db-architect"]
    assert meta["commit_message"] == "perf(db): add index"
    assert meta["existing_pr"] is None
    assert meta["number"] == published.number
    assert "written_at" in meta
    (line,) = actions(tmp_path)
    assert line["action"] == "publish"
    assert line["result"] == "created"
    assert line["branch"] == BRANCH


async def test_second_publish_is_unchanged_then_updated(tmp_path: Path) -> None:
    outbox = OutboxEffects(tmp_path, REF)
    first = await outbox.publish(change())
    again = await OutboxEffects(tmp_path, REF).publish(change())
    assert again == dataclasses.replace(first, action="unchanged")
    new_file = (FileChange(REVISION, "revision = 'b2'  # v2\n"),)
    updated = await outbox.publish(change(files=new_file))
    assert (updated.action, updated.number) == ("updated", first.number)
    assert [a["result"] for a in actions(tmp_path)] == ["created", "unchanged", "updated"]
    retitled = await outbox.publish(change(files=new_file, title="perf(db): better title"))
    assert retitled.action == "updated"


async def test_updated_files_replace_the_old_ones(tmp_path: Path) -> None:
    outbox = OutboxEffects(tmp_path, REF)
    await outbox.publish(change())
    other = "migrations/versions/c3_other.py"
    await outbox.publish(change(files=(FileChange(other, "x\n"),)))
    files = tmp_path / "octo" / "shop" / "db-architect__create_index__orders-3f9a1c2b" / "files"
    assert sorted(p.relative_to(files).as_posix() for p in files.rglob("*.py")) == [other]


async def test_pulls_lists_what_the_outbox_opened(tmp_path: Path) -> None:
    outbox = OutboxEffects(tmp_path, REF)
    first = await outbox.publish(change())
    await outbox.publish(change(branch="db-architect/drop_index/x-1"))
    await outbox.publish(change(branch="someone-else/x"))
    pulls = outbox.pulls("db-architect/")
    assert {p.head_ref for p in pulls} == {BRANCH, "db-architect/drop_index/x-1"}
    mine = next(p for p in pulls if p.head_ref == BRANCH)
    assert (mine.number, mine.state, mine.merged) == (first.number, "open", False)
    assert mine.title == change().title
    assert mine.body == change().body
    assert mine.user_login == "db-architect[bot]"
    again = await outbox.publish(change(existing=mine))
    assert again.action == "unchanged"


async def test_delete_branch_closes_the_outbox_pull(tmp_path: Path) -> None:
    outbox = OutboxEffects(tmp_path, REF)
    await outbox.publish(change())
    await outbox.delete_branch(BRANCH)
    assert outbox.pulls("db-architect/") == []
    assert (await outbox.publish(change())).action == "created"
    line = actions(tmp_path)[1]
    assert (line["action"], line["branch"]) == ("delete_branch", BRANCH)


async def test_comments_and_check_runs_stay_local_without_credentials(tmp_path: Path) -> None:
    outbox = OutboxEffects(tmp_path, REF)
    first = await outbox.comment(12, "Auditing…")
    edited = await outbox.comment(12, "Done.", comment_id=first)
    second = await outbox.comment(12, "Another topic")
    assert edited == first != second
    comments = tmp_path / "octo" / "shop" / "comments"
    assert (comments / f"12-{first}.md").read_text() == "Done."
    output = CheckOutput(
        "1 finding", "Would open 1 PR", actions=(CheckAction("Open PRs", "Open them", "open_prs"),)
    )
    run = await outbox.check_run(CheckRun("a" * 40, name="DB Architect / audit", status="queued"))
    same = await outbox.check_run(
        CheckRun(
            "a" * 40,
            name="DB Architect / audit",
            status="completed",
            conclusion="neutral",
            output=output,
            id=run,
        )
    )
    assert same == run
    record = json.loads((tmp_path / "octo" / "shop" / "check-runs" / f"{run}.json").read_text())
    assert (record["status"], record["conclusion"], record["head_sha"]) == (
        "completed",
        "neutral",
        "a" * 40,
    )
    assert record["output"]["actions"] == ["open_prs"]
    report = (tmp_path / "octo" / "shop" / "check-runs" / f"{run}.md").read_text()
    assert report == "# 1 finding\n\nWould open 1 PR\n"
    await outbox.react(99, "eyes")
    kinds = [a["action"] for a in actions(tmp_path)]
    assert kinds == ["comment", "comment", "comment", "check_run", "check_run", "react"]


async def test_reporting_goes_to_github_when_credentials_exist(tmp_path: Path) -> None:
    github = Recorder()
    outbox = OutboxEffects(tmp_path, REF, report_to=github)
    await outbox.react(5, "eyes")
    assert await outbox.comment(3, "Done.") == 555
    assert await outbox.check_run(CheckRun("b" * 40, name="n", status="queued")) == 777
    published = await outbox.publish(change())
    await outbox.delete_branch(BRANCH)
    assert [kind for kind, _ in github.calls] == ["react", "comment", "check_run"]
    # a comment on the outbox's own pseudo PR cannot go to GitHub
    await outbox.comment(published.number, "about the dry-run PR")
    assert len(github.calls) == 3


@pytest.mark.parametrize("path", ["../escape.py", "/etc/passwd", "a/../../b.py"])
async def test_files_cannot_escape_the_outbox(tmp_path: Path, path: str) -> None:
    with pytest.raises(ValueError, match="repository-relative"):
        await OutboxEffects(tmp_path, REF).publish(change(files=(FileChange(path, "x"),)))
