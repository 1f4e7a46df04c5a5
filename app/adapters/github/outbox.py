"""The dry-run effects layer: what the App would change on GitHub, written to a directory.

Layout under ``<outbox>/<owner>/<name>/``: one directory per branch (``/`` → ``__``) holding
``pr.md``, ``files/<path>`` and ``meta.json``; ``comments/`` and ``check-runs/``; and
``actions.jsonl``, one line per effect in order. Branches, commits and pull requests never
reach GitHub from here; with ``report_to`` (a dry run that has App credentials) reactions,
comments and check runs still do, so people see the report where they asked for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import structlog

from app.adapters.github.models import (
    CheckOutput,
    CheckRun,
    Effects,
    FixChange,
    PublishAction,
    Published,
    PullInfo,
    RepoRef,
)
from app.engine import markdown as md

__all__ = ["OutboxEffects", "branch_dir_name"]

log = structlog.get_logger(__name__)

#: Pseudo numbers and ids start here, far above real issue numbers, so they cannot be mixed up.
PSEUDO_BASE = 1_000_000_000


def branch_dir_name(branch: str) -> str:
    """The outbox directory of ``branch``: ``db-architect/x/y`` → ``db-architect__x__y``."""
    name = branch.replace("/", "__")
    if not branch or name in (".", "..") or "\\" in branch or "\0" in branch:
        raise ValueError(f"not a branch name the outbox can hold: {branch!r}")
    return name


def _relative(path: str) -> PurePosixPath:
    """``path`` as a safe relative path (a change must not write outside its directory)."""
    rel = PurePosixPath(path)
    if rel.is_absolute() or not rel.parts or ".." in rel.parts or "\\" in path:
        raise ValueError(f"not a repository-relative file path: {path!r}")
    return rel


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class OutboxEffects:
    """:class:`Effects` that write to ``outbox_dir`` instead of changing GitHub."""

    dry_run = True

    def __init__(
        self,
        outbox_dir: Path,
        repo: RepoRef,
        *,
        report_to: Effects | None = None,
        bot_login: str = "db-architect[bot]",
    ) -> None:
        self.repo = repo
        self.report_to = report_to
        self.bot_login = bot_login
        self.root = outbox_dir / branch_dir_name(repo.owner) / branch_dir_name(repo.name)

    # ---------------------------------------------------------------- effects

    async def publish(self, change: FixChange) -> Published:
        """Write the PR the change would open; ``unchanged`` if the outbox already holds it."""
        return await asyncio.to_thread(self._publish, change)

    async def react(self, comment_id: int, content: str) -> None:
        """Record the reaction (or put it on GitHub when reporting there)."""
        if self.report_to is not None:
            await self.report_to.react(comment_id, content)
            return
        await asyncio.to_thread(
            self._record, {"action": "react", "comment_id": comment_id, "content": content}
        )

    async def comment(self, issue_number: int, body: str, comment_id: int | None = None) -> int:
        """Write the comment to ``comments/<id>.md`` (or post it when reporting to GitHub).

        Comments on the outbox's own pseudo pull requests always stay in the outbox.
        """
        if self.report_to is not None and issue_number < PSEUDO_BASE:
            return await self.report_to.comment(issue_number, body, comment_id)
        return await asyncio.to_thread(self._comment, issue_number, body, comment_id)

    async def check_run(self, run: CheckRun) -> int:
        """Write the check run to ``check-runs/<id>.json`` and ``.md`` (or report it)."""
        if self.report_to is not None:
            return await self.report_to.check_run(run)
        shown = {
            "head_sha": run.head_sha,
            "name": run.name,
            "status": "completed" if run.conclusion else run.status,
            "conclusion": run.conclusion,
            "external_id": run.external_id,
        }
        return await asyncio.to_thread(self._check_run, shown, run.output, run.id)

    async def delete_branch(self, branch: str) -> None:
        """Mark the outbox's PR for ``branch`` closed (never touches GitHub: it is a branch)."""
        await asyncio.to_thread(self._close, branch)

    async def close_pull(self, number: int) -> None:
        """Record that the pull request would be closed (a dry run closes nothing on GitHub)."""
        await asyncio.to_thread(self._record, {"action": "close_pull", "number": number})

    # ---------------------------------------------------------------- reading

    def pulls(self, branch_prefix: str) -> list[PullInfo]:
        """The PRs the outbox holds open on branches starting with ``branch_prefix``."""
        found: list[PullInfo] = []
        for meta_file in sorted(self.root.glob("*/meta.json")):
            meta = json.loads(meta_file.read_text())
            if meta["state"] == "open" and str(meta["branch"]).startswith(branch_prefix):
                found.append(self._pull(meta_file.parent, meta))
        return sorted(found, key=lambda p: (p.created_at, p.number), reverse=True)

    def _pull(self, directory: Path, meta: dict[str, Any]) -> PullInfo:
        pr = (directory / "pr.md").read_text()
        return PullInfo(
            number=int(meta["number"]),
            state=str(meta["state"]),
            merged=False,
            head_ref=str(meta["branch"]),
            title=str(meta["title"]),
            body=pr.partition("\n\n")[2].removesuffix("\n"),
            created_at=datetime.fromisoformat(meta["created_at"]),
            html_url=directory.absolute().as_uri(),
            user_login=self.bot_login,
        )

    # ---------------------------------------------------------------- writing

    def pseudo_id(self, kind: str, key: str) -> int:
        """A stable made-up number for an outbox PR, comment or check run."""
        digest = hashlib.sha256(f"{self.repo.full_name}:{kind}:{key}".encode()).hexdigest()
        return PSEUDO_BASE + int(digest[:12], 16) % PSEUDO_BASE

    def _record(self, entry: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"at": _now(), "repo": self.repo.full_name, **entry}, sort_keys=True)
        with (self.root / "actions.jsonl").open("a", encoding="utf-8") as out:
            out.write(line + "\n")

    def _publish(self, change: FixChange) -> Published:
        directory = self.root / branch_dir_name(change.branch)
        files = {str(_relative(f.path)): f.content for f in change.files}
        meta = {
            "branch": change.branch,
            "base": change.base_branch,
            "title": change.title,
            "labels": list(change.labels),
            "commit_message": change.commit_message,
            "existing_pr": change.existing.number if change.existing else None,
            "files": sorted(files),
        }
        pr_text = f"# {md.text(change.title)}\n\n{change.body}\n"
        action = self._compare(directory, meta, pr_text, files)
        old = self._meta(directory)
        number = int(old["number"]) if old else self.pseudo_id("pr", change.branch)
        if action != "unchanged":
            created = old["created_at"] if old and action == "updated" else _now()
            self._write_pull(directory, pr_text, files)
            meta |= {"number": number, "state": "open", "created_at": created}
            meta["written_at"] = _now()
            (directory / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        url = directory.absolute().as_uri()
        self._record(
            {"action": "publish", "result": action, "branch": change.branch, "number": number}
        )
        log.info("outbox.publish", repo=self.repo.full_name, branch=change.branch, action=action)
        return Published(number, url, action)

    def _meta(self, directory: Path) -> dict[str, Any] | None:
        path = directory / "meta.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def _compare(
        self, directory: Path, meta: dict[str, Any], pr_text: str, files: dict[str, str]
    ) -> PublishAction:
        """``created`` (new or closed before), ``updated`` or ``unchanged``."""
        old = self._meta(directory)
        if old is None or old.get("state") != "open":
            return "created"
        same = (
            all(old.get(key) == value for key, value in meta.items() if key != "existing_pr")
            and (directory / "pr.md").read_text() == pr_text
            and all(
                (directory / "files" / path).is_file()
                and (directory / "files" / path).read_text() == text
                for path, text in files.items()
            )
        )
        return "unchanged" if same else "updated"

    def _write_pull(self, directory: Path, pr_text: str, files: dict[str, str]) -> None:
        shutil.rmtree(directory / "files", ignore_errors=True)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "pr.md").write_text(pr_text)
        for path, text in files.items():
            target = directory / "files" / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)

    def _comment(self, issue_number: int, body: str, comment_id: int | None) -> int:
        folder = self.root / "comments"
        folder.mkdir(parents=True, exist_ok=True)
        if comment_id is None:
            seq = len(list(folder.glob(f"{issue_number}-*.md")))
            comment_id = self.pseudo_id("comment", f"{issue_number}:{seq}")
        path = folder / f"{issue_number}-{comment_id}.md"
        edited = path.is_file()
        path.write_text(body)
        self._record(
            {
                "action": "comment",
                "issue": issue_number,
                "comment_id": comment_id,
                "edited": edited,
                "file": str(path.relative_to(self.root)),
            }
        )
        return comment_id

    def _check_run(
        self, run: dict[str, Any], output: CheckOutput | None, check_run_id: int | None
    ) -> int:
        folder = self.root / "check-runs"
        folder.mkdir(parents=True, exist_ok=True)
        if check_run_id is None:
            key = f"{run['head_sha']}:{run['name']}:{run['external_id']}"
            check_run_id = self.pseudo_id("check_run", key)
        path = folder / f"{check_run_id}.json"
        previous = json.loads(path.read_text()) if path.is_file() else {}
        known = {key: value for key, value in run.items() if value is not None}
        record = {**previous, **known, "id": check_run_id, "updated_at": _now()}
        if output is not None:
            record["output"] = {
                "title": output.title,
                "summary": output.summary,
                "text": output.text,
                "actions": [a.identifier for a in output.actions],
            }
            report = f"# {output.title}\n\n{output.summary}\n"
            if output.text:
                report += f"\n{output.text}\n"
            (folder / f"{check_run_id}.md").write_text(report)
        path.write_text(json.dumps(record, indent=2, sort_keys=True))
        self._record(
            {
                "action": "check_run",
                "check_run_id": check_run_id,
                "status": record["status"],
                "conclusion": record.get("conclusion"),
            }
        )
        return check_run_id

    def _close(self, branch: str) -> None:
        directory = self.root / branch_dir_name(branch)
        meta = self._meta(directory)
        if meta is not None and meta.get("state") == "open":
            meta["state"] = "closed"
            (directory / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        self._record({"action": "delete_branch", "branch": branch})
