"""One repository through GitHub's REST API: reading it, and every change the App makes to it.

Commits go through the Git Data API (tree → commit → ref) with the installation token and no
custom author, so GitHub attributes them to the App's bot and signs them; the git CLI is never
used. A branch whose head commit is not the bot's is never overwritten.
"""
# Long module: one REST surface (read, branch, commit, PR) behind one client and one error map.

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import structlog
from githubkit import GitHub

from app.adapters.github import operations as ops
from app.adapters.github.client import api
from app.adapters.github.errors import GitHubError
from app.adapters.github.models import (
    CheckOutput,
    CheckRun,
    Effects,
    FixChange,
    PublishAction,
    Published,
    PullInfo,
    RepoInfo,
    RepoReader,
    RepoRef,
    trim,
)

__all__ = ["MAX_FILE_BYTES", "Effects", "GitHubRepo", "RepoReader", "pull_from_json"]

log = structlog.get_logger(__name__)

#: Files above this are not read as migrations (the contents API stops inlining at 1 MB).
MAX_FILE_BYTES = 1024 * 1024
#: The largest file :meth:`GitHubRepo.file_text` downloads (GitHub serves blobs up to 100 MB,
#: base64 in JSON: a hostile config that size would cost the worker hundreds of MB). What the
#: App reads is small: a config (64 KiB at most) and migration files.
MAX_TEXT_BYTES = 4 * 1024 * 1024
PULL_PAGES = 3
PER_PAGE = 100
#: How many files of a directory are fetched at once (GitHub dislikes bursts of concurrency).
FETCH_CONCURRENCY = 4
ROLES = ("admin", "maintain", "write", "triage", "read", "none")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _same_text(a: str, b: str) -> bool:
    """Equal up to line endings (GitHub's editor turns a body's ``\\n`` into ``\\r\\n``)."""
    return a.replace("\r\n", "\n") == b.replace("\r\n", "\n")


def pull_from_json(data: dict[str, Any]) -> PullInfo:
    """A :class:`PullInfo` from a pull-request object of the REST API."""
    return PullInfo(
        number=int(data["number"]),
        state=str(data["state"]),
        merged=data.get("merged_at") is not None or bool(data.get("merged")),
        head_ref=str(data["head"]["ref"]),
        title=str(data.get("title") or ""),
        body=str(data.get("body") or ""),
        created_at=_time(str(data["created_at"])),
        html_url=str(data["html_url"]),
        user_login=str((data.get("user") or {}).get("login") or ""),
    )


def _check_body(
    name: str,
    status: str,
    output: CheckOutput | None,
    conclusion: str | None,
    external_id: str | None,
) -> dict[str, Any]:
    """The JSON of a check-run create or update; a conclusion implies ``completed``."""
    body: dict[str, Any] = {"name": name, "status": "completed" if conclusion else status}
    if body["status"] == "in_progress":
        body["started_at"] = _now()
    if body["status"] == "completed":
        body["completed_at"] = _now()
    if conclusion:
        body["conclusion"] = conclusion
    if external_id is not None:
        body["external_id"] = external_id
    if output is not None:
        out: dict[str, Any] = {"title": output.title, "summary": output.summary}
        if output.text is not None:
            out["text"] = output.text
        body["output"] = out
        if output.actions:
            body["actions"] = [
                {"label": a.label, "description": a.description, "identifier": a.identifier}
                for a in output.actions
            ]
    return body


class GitHubRepo:
    """:class:`RepoReader` and :class:`Effects` for one repository, through githubkit.

    ``gh`` is an installation client (:func:`~.client.installation_client`); ``bot_login`` is
    the App's bot (``<slug>[bot]``), whose commits and pull requests count as ours.
    """

    dry_run = False

    def __init__(self, gh: GitHub[Any], repo: RepoRef, *, bot_login: str) -> None:
        self.gh = gh
        self.repo = repo
        self.bot_login = bot_login

    async def _json(
        self,
        op: ops.Operation,
        *,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
        **path: str | int,
    ) -> Any:
        """Call ``op`` on this repository (``path``: the template's other parameters)."""
        where = op.path(owner=self.repo.owner, repo=self.repo.name, **path)
        response = await api(self.gh, op.method, where, json=json, params=params)
        return response.json() if response.content else None

    # ---------------------------------------------------------------- reading

    async def repo_info(self) -> RepoInfo:
        """The default branch (``GET /repos/{o}/{r}``) and its head commit."""
        data = await self._json(ops.REPOS_GET)
        branch = str(data["default_branch"])
        return RepoInfo(default_branch=branch, head_sha=await self._ref_sha(branch))

    async def file_text(self, path: str, ref: str) -> str | None:
        """``path`` at ``ref`` (branch, tag or sha) as text; ``None`` if absent or a directory."""
        data = await self._contents(path, ref)
        if not isinstance(data, dict) or data.get("type") != "file":
            return None
        size = int(data.get("size") or 0)
        if size > MAX_TEXT_BYTES:
            raise GitHubError(
                f"`{path}` at {ref} is {size:,} bytes; files over {MAX_TEXT_BYTES >> 20} MiB "
                "are not read: shrink it (a config file must be under 64 KiB)"
            )
        if data.get("encoding") == "base64" and data.get("content") is not None:
            raw = base64.b64decode(str(data["content"]))
        else:  # 1-100 MB files come without inline content: read the blob instead
            blob = await self._json(ops.GIT_GET_BLOB, file_sha=str(data["sha"]))
            raw = base64.b64decode(str(blob["content"]))
        return raw.decode("utf-8", errors="replace")

    async def python_files(self, directory: str, ref: str) -> dict[str, str]:
        """The ``*.py`` files directly in ``directory`` at ``ref``; files over 1 MB are skipped."""
        listing = await self._contents(directory, ref)
        if not isinstance(listing, list):
            return {}
        wanted = [
            entry
            for entry in listing
            if entry.get("type") == "file"
            and str(entry.get("name", "")).endswith(".py")
            and int(entry.get("size") or 0) <= MAX_FILE_BYTES
        ]
        skipped = len([e for e in listing if str(e.get("name", "")).endswith(".py")]) - len(wanted)
        if skipped:
            log.info("github.python_files.skipped_large", directory=directory, skipped=skipped)
        gate = asyncio.Semaphore(FETCH_CONCURRENCY)

        async def fetch(entry: dict[str, Any]) -> tuple[str, str | None]:
            async with gate:
                return str(entry["name"]), await self.file_text(str(entry["path"]), ref)

        fetched = await asyncio.gather(*(fetch(entry) for entry in wanted))
        return {name: text for name, text in sorted(fetched) if text is not None}

    async def bot_pulls(self, branch_prefix: str) -> list[PullInfo]:
        """Our PRs (newest first, up to 300) on branches starting with ``branch_prefix``.

        Only PRs opened by the bot count: anyone can open a PR from a fork with a branch of
        the same name, and those are not ours to update.
        """
        found: list[PullInfo] = []
        for page in range(1, PULL_PAGES + 1):
            params: dict[str, str | int] = {
                "state": "all",
                "sort": "created",
                "direction": "desc",
                "per_page": PER_PAGE,
                "page": page,
            }
            pulls = await self._json(ops.PULLS_LIST, params=params)
            found += [
                pull_from_json(p)
                for p in pulls
                if str(p["head"]["ref"]).startswith(branch_prefix)
                and (p.get("user") or {}).get("login") == self.bot_login
            ]
            if len(pulls) < PER_PAGE:
                break
        return found

    async def permission(self, login: str) -> str:
        """``login``'s role: admin, maintain, write, triage, read or none (404 → none)."""
        try:
            data = await self._json(ops.REPOS_GET_PERMISSION, username=login)
        except GitHubError as exc:
            if exc.status == 404:
                return "none"
            raise
        role = str(data.get("role_name") or "")
        # Custom organisation roles have their own names: fall back to the base permission.
        return role if role in ROLES else str(data.get("permission") or "none")

    async def pull(self, number: int) -> PullInfo | None:
        """Pull request ``number``, or ``None`` when GitHub has none (404)."""
        try:
            return pull_from_json(await self._json(ops.PULLS_GET, pull_number=number))
        except GitHubError as exc:
            if exc.status == 404:
                return None
            raise

    async def _contents(self, path: str, ref: str) -> Any:
        try:
            return await self._json(
                ops.REPOS_GET_CONTENT, params={"ref": ref}, path=path.strip("/")
            )
        except GitHubError as exc:
            if exc.status == 404:
                return None
            raise

    async def _ref_sha(self, branch: str) -> str:
        data = await self._json(ops.GIT_GET_REF, ref=f"heads/{branch}")
        return str(data["object"]["sha"])

    async def _is_ours(self, sha: str) -> bool:
        """Whether commit ``sha`` was made by our bot (GitHub may commit as ``GitHub``)."""
        commit = await self._json(ops.GIT_GET_COMMIT, commit_sha=sha)
        author, committer = commit.get("author") or {}, commit.get("committer") or {}
        return bool(
            author.get("name") == self.bot_login
            and committer.get("name") in (self.bot_login, "GitHub")
        )

    # ---------------------------------------------------------------- effects

    async def react(self, comment_id: int, content: str) -> None:
        """React on an issue comment (GitHub answers 200 if the reaction already exists)."""
        await self._json(
            ops.REACTIONS_CREATE_FOR_ISSUE_COMMENT, json={"content": content}, comment_id=comment_id
        )

    async def comment(self, issue_number: int, body: str, comment_id: int | None = None) -> int:
        """Create a comment, or edit ``comment_id`` in place; the body is cut to fit."""
        text = trim(body)
        if comment_id is not None:
            data = await self._json(
                ops.ISSUES_UPDATE_COMMENT, json={"body": text}, comment_id=comment_id
            )
        else:
            data = await self._json(
                ops.ISSUES_CREATE_COMMENT, json={"body": text}, issue_number=issue_number
            )
        return int(data["id"])

    async def check_run(self, run: CheckRun) -> int:
        """Create ``run`` on its head, or update the check run ``run.id``; returns its id."""
        body = _check_body(run.name, run.status, run.output, run.conclusion, run.external_id)
        if run.id is not None:
            data = await self._json(ops.CHECKS_UPDATE, json=body, check_run_id=run.id)
        else:
            data = await self._json(ops.CHECKS_CREATE, json={"head_sha": run.head_sha, **body})
        return int(data["id"])

    async def delete_branch(self, branch: str) -> None:
        """Delete ``branch``; already gone (404 or 422) is fine."""
        try:
            await self._json(ops.GIT_DELETE_REF, ref=f"heads/{branch}")
        except GitHubError as exc:
            if exc.status not in (404, 422):
                raise

    async def close_pull(self, number: int) -> None:
        """Close pull request ``number`` without merging (closing a closed one changes nothing)."""
        await self._json(ops.PULLS_UPDATE, json={"state": "closed"}, pull_number=number)

    async def publish(self, change: FixChange) -> Published:
        """Open or refresh the PR for ``change``; never overwrite a branch a human pushed to.

        Only ``change.force`` (a reviewer's ``@db-architect recreate``) rebuilds the branch
        from the base over other commits.
        """
        existing = change.existing if change.existing and change.existing.state == "open" else None
        if existing is None:
            commit = await self._commit(change)
            if not await self._create_branch(change.branch, commit, force=change.force):
                return self._blocked(change, None)
            return await self._open_pull(change)
        if not change.force and not await self._is_ours(await self._ref_sha(change.branch)):
            return self._blocked(change, existing)
        if not change.force and await self._files_match(change):
            edited = await self._edit_pull(existing.number, existing, change)
            action: PublishAction = "updated" if edited else "unchanged"
            return Published(existing.number, existing.html_url, action)
        await self._move_branch(change.branch, await self._commit(change))
        await self._edit_pull(existing.number, existing, change)
        return Published(existing.number, existing.html_url, "updated")

    def _blocked(self, change: FixChange, existing: PullInfo | None) -> Published:
        log.info("github.publish.blocked", repo=self.repo.full_name, branch=change.branch)
        if existing is None:
            return Published(0, "", "blocked")
        return Published(existing.number, existing.html_url, "blocked")

    async def _files_match(self, change: FixChange) -> bool:
        for file in change.files:
            current = await self.file_text(file.path, change.branch)
            if current is None or not _same_text(current, file.content):
                return False
        return True

    async def _commit(self, change: FixChange) -> str:
        """A new commit with ``change.files`` on top of the base branch's current head."""
        base_sha = await self._ref_sha(change.base_branch)
        base = await self._json(ops.GIT_GET_COMMIT, commit_sha=base_sha)
        entries = [
            {"path": f.path, "mode": "100644", "type": "blob", "content": f.content}
            for f in change.files
        ]
        tree = await self._json(
            ops.GIT_CREATE_TREE, json={"base_tree": base["tree"]["sha"], "tree": entries}
        )
        commit = await self._json(
            ops.GIT_CREATE_COMMIT,
            json={"message": change.commit_message, "tree": tree["sha"], "parents": [base_sha]},
        )
        return str(commit["sha"])

    async def _create_branch(self, branch: str, sha: str, *, force: bool = False) -> bool:
        """Create ``branch`` at ``sha``; if it exists (a retried job) and is ours, move it.

        Returns ``False`` when the existing branch's head commit is not the bot's (and
        ``force`` is off).
        """
        try:
            await self._json(ops.GIT_CREATE_REF, json={"ref": f"refs/heads/{branch}", "sha": sha})
            return True
        except GitHubError as exc:
            if exc.status != 422 or "already exists" not in exc.message.lower():
                raise
        if not force and not await self._is_ours(await self._ref_sha(branch)):
            return False
        await self._move_branch(branch, sha)
        return True

    async def _move_branch(self, branch: str, sha: str) -> None:
        """Force ``branch`` to ``sha`` (the new commit sits on the base head, not on the branch)."""
        await self._json(
            ops.GIT_UPDATE_REF, json={"sha": sha, "force": True}, ref=f"heads/{branch}"
        )

    async def _open_pull(self, change: FixChange) -> Published:
        body = {
            "title": change.title,
            "head": change.branch,
            "base": change.base_branch,
            "body": trim(change.body),
            "maintainer_can_modify": True,
        }
        try:
            data = await self._json(ops.PULLS_CREATE, json=body)
            action: PublishAction = "created"
        except GitHubError as exc:
            if exc.status != 422 or "pull request already exists" not in exc.message.lower():
                raise
            found = await self._open_pull_on(change.branch)
            if found is None:
                raise
            await self._edit_pull(found.number, found, change)
            data, action = {"number": found.number, "html_url": found.html_url}, "updated"
        number = int(data["number"])
        if change.labels:
            await self._json(
                ops.ISSUES_ADD_LABELS, json={"labels": list(change.labels)}, issue_number=number
            )
        return Published(number, str(data["html_url"]), action)

    async def _open_pull_on(self, branch: str) -> PullInfo | None:
        params = {"head": f"{self.repo.owner}:{branch}", "state": "open"}
        pulls = await self._json(ops.PULLS_LIST, params=params)
        return pull_from_json(pulls[0]) if pulls else None

    async def _edit_pull(self, number: int, current: PullInfo, change: FixChange) -> bool:
        """Bring the PR's title and body up to date; ``False`` when they already were."""
        body = trim(change.body)
        if current.title == change.title and _same_text(current.body, body):
            return False
        await self._json(
            ops.PULLS_UPDATE, json={"title": change.title, "body": body}, pull_number=number
        )
        return True
