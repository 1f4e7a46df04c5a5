"""A stateful in-memory GitHub REST API for tests, served through respx.

``FakeGitHub`` keeps repositories (git objects, branches, pull requests, issues, comments,
reactions, check runs, collaborators) and answers the endpoints the App uses with JSON shaped
like api.github.com's (field names and types as on docs.github.com), including GitHub's
validation errors (422 "Reference already exists", "A pull request already exists…", bodies
over 65,536 characters, check-run limits), authentication (a JWT of the right shape mints
``ghs_…`` installation tokens; repository endpoints want such a token) and App permissions
(a missing one gives 403 with ``x-accepted-github-permissions``).

Usage::

    fake = FakeGitHub()
    repo = fake.add_repo("octo/shop", files={".github/db-architect.yml": "version: 1\\n"})
    with fake.mock():
        ...  # code under test, e.g. installation_client(fake.settings(), repo.installation_id)
    assert fake.paths("POST")[-1] == "POST /repos/octo/shop/pulls"

respx patches httpx for the whole process, so code running in another thread or event loop
(an ASGI test client, a worker) reaches the fake too; its state is guarded by a lock.
Requests to loopback addresses pass through (a test may talk to a real local server).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import itertools
import json
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import respx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from githubkit.cache import BaseCacheStrategy

from app.adapters.github import GitHubRepo, RepoRef, installation_client
from app.settings import Settings
from tests import github_shapes
from tests.contract.session import CONTRACT, body_of

__all__ = [
    "BOT_LOGIN",
    "FakeGitHub",
    "FakeRepo",
    "Recorded",
    "private_key_pem",
]

BOT_LOGIN = "db-architect[bot]"
BOT_ID = 41898282
HUMAN = {"name": "Octo Cat", "email": "octocat@example.com"}
DOCS = "https://docs.github.com/rest"
ROLE_PERMISSION = {
    "admin": "admin",
    "maintain": "write",
    "write": "write",
    "triage": "read",
    "read": "read",
    "none": "none",
}
REACTIONS = {"+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"}
CHECK_STATUSES = {"queued", "in_progress", "completed"}
CHECK_CONCLUSIONS = {
    "action_required",
    "cancelled",
    "failure",
    "neutral",
    "success",
    "skipped",
    "timed_out",
}
BODY_LIMIT = 65_536
CHECK_TEXT_LIMIT = 65_535
INLINE_LIMIT = 1024 * 1024
ALL_PERMISSIONS = {
    "metadata": "read",
    "contents": "write",
    "pull_requests": "write",
    "checks": "write",
    "issues": "write",
}


@functools.cache
def private_key_pem() -> str:
    """A throwaway RSA private key (PEM), made once per test session, for AppAuthStrategy."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _git_sha(kind: str, data: bytes) -> str:
    return hashlib.sha1(f"{kind} {len(data)}\0".encode() + data, usedforsecurity=False).hexdigest()


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64_lines(data: bytes) -> str:
    """Base64 the way the contents API sends it: a newline after every 60 characters."""
    text = base64.b64encode(data).decode()
    return "".join(text[i : i + 60] + "\n" for i in range(0, len(text), 60))


def _user(login: str, uid: int, kind: str = "User") -> dict[str, Any]:
    return github_shapes.user(login, uid, kind)


def _uid(login: str) -> int:
    if login == BOT_LOGIN:
        return BOT_ID
    return 1000 + int(hashlib.sha256(login.encode()).hexdigest()[:6], 16)


class _Reply(Exception):
    """Raised by handlers to answer with an error status."""

    def __init__(
        self, status: int, message: str, *, errors: list[Any] | None = None, **headers: str
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {
            "message": message,
            "documentation_url": DOCS,
            "status": str(status),
        }
        if errors is not None:
            self.body["errors"] = errors
        self.headers = {k.replace("_", "-"): v for k, v in headers.items()}


def _found(items: dict[int, Any], key: int) -> Any:
    """``items[key]``, or GitHub's 404."""
    if key not in items:
        raise _not_found()
    return items[key]


def _not_found() -> _Reply:
    return _Reply(404, "Not Found")


def _invalid(text: str, **error: Any) -> _Reply:
    """422 with GitHub's ``message`` and, when given, one entry of ``errors``."""
    return _Reply(422, text, errors=[error] if error else None)


Answer = tuple[int, Any, dict[str, str]]
_Handler = Callable[..., Answer]


@dataclass
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    headers: dict[str, str]
    status: int = 0

    @property
    def line(self) -> str:
        """``METHOD /path`` (what :meth:`FakeGitHub.paths` lists)."""
        return f"{self.method} {self.path}"


@dataclass
class _Commit:
    sha: str
    tree: dict[str, str]
    tree_sha: str
    parents: list[str]
    message: str
    author: dict[str, str]
    committer: dict[str, str]
    verified: bool


@dataclass
class _Failure:
    method: str
    path: str
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    times: int
    error: Exception | None = None


@dataclass
class FakeRepo:
    """One repository's state (read it in assertions; change it through FakeGitHub helpers)."""

    owner: str
    name: str
    installation_id: int
    id: int
    default_branch: str
    private: bool
    blobs: dict[str, bytes] = field(default_factory=dict)
    trees: dict[str, dict[str, str]] = field(default_factory=dict)
    commits: dict[str, _Commit] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    pulls: dict[int, dict[str, Any]] = field(default_factory=dict)
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)
    reactions: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[int, list[str]] = field(default_factory=dict)
    check_runs: dict[int, dict[str, Any]] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    role_permissions: dict[str, str] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        """``owner/name``."""
        return f"{self.owner}/{self.name}"

    @property
    def api(self) -> str:
        """The repository's API URL."""
        return f"https://api.github.com/repos/{self.full_name}"

    @property
    def html(self) -> str:
        """The repository's web URL."""
        return f"https://github.com/{self.full_name}"

    def commit_sha(self, ref: str) -> str | None:
        """The commit a branch name or sha points at."""
        if ref in self.refs:
            return self.refs[ref]
        return ref if ref in self.commits else None

    def tree_at(self, ref: str) -> dict[str, str] | None:
        """``path → blob sha`` of the commit ``ref`` points at."""
        sha = self.commit_sha(ref)
        return self.commits[sha].tree if sha else None

    def owner_json(self) -> dict[str, Any]:
        """The owner as a simple user object."""
        return _user(self.owner, _uid(self.owner), "Organization")

    def json(self) -> dict[str, Any]:
        """A repository object as pull requests and webhooks carry it."""
        return github_shapes.repository(
            self.owner_json(),
            self.name,
            self.id,
            private=self.private,
            default_branch=self.default_branch,
        )


class FakeGitHub:
    """An in-memory GitHub for one or more repositories (see the module docstring)."""

    def __init__(
        self,
        *,
        base_url: str = "https://api.github.com",
        app_id: int = 12345,
        app_slug: str = "db-architect",
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.url = httpx.URL(self.base_url)
        self.app_id = app_id
        self.app_slug = app_slug
        self.bot_login = f"{app_slug}[bot]"
        self.now = now
        self.repos: dict[str, FakeRepo] = {}
        self.requests: list[Recorded] = []
        self.unserved: list[str] = []
        #: Installation permissions by installation id (missing → every permission we use).
        self.installation_permissions: dict[int, dict[str, str]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.rate_remaining = 5000
        self._failures: list[_Failure] = []
        self._ids = itertools.count(1_000_001)
        self._lock = threading.RLock()
        self._routes = self._route_table()

    # ---------------------------------------------------------------- setup helpers

    def settings(self, **overrides: Any) -> Settings:
        """Settings with this fake's App id, a generated private key and its API URL."""
        values: dict[str, Any] = {
            "github_app_id": self.app_id,
            "github_private_key": private_key_pem(),
            "github_api_url": self.base_url,
            "github_app_slug": self.app_slug,
        }
        return Settings(**(values | overrides))

    def github_repo(self, full_name: str, *, cache: BaseCacheStrategy | None = None) -> GitHubRepo:
        """The adapter for ``full_name`` through an installation client of this fake.

        Pass a fresh ``MemCacheStrategy()`` to keep installation tokens from leaking between
        tests (githubkit's default cache is process-wide).
        """
        repo = self.repo(full_name)
        ref = RepoRef(repo.installation_id, repo.owner, repo.name)
        gh = installation_client(self.settings(), repo.installation_id, repo.name, cache=cache)
        return GitHubRepo(gh, ref, bot_login=self.bot_login)

    def add_repo(
        self,
        full_name: str,
        *,
        installation_id: int = 1,
        default_branch: str = "main",
        files: dict[str, str] | None = None,
        private: bool = True,
    ) -> FakeRepo:
        """A repository whose default branch has one commit holding ``files``."""
        owner, _, name = full_name.partition("/")
        repo = FakeRepo(owner, name, installation_id, next(self._ids), default_branch, private)
        with self._lock:
            self.repos[full_name.lower()] = repo
            sha = self._make_commit(
                repo, {}, files or {"README.md": "# hello\n"}, [], HUMAN, "init"
            )
            repo.refs[default_branch] = sha
        return repo

    def repo(self, full_name: str) -> FakeRepo:
        """The repository called ``full_name``."""
        return self.repos[full_name.lower()]

    def push(
        self,
        full_name: str,
        branch: str,
        files: dict[str, str],
        *,
        author: dict[str, str] | None = None,
        message: str = "A human change",
    ) -> str:
        """A commit by a person on ``branch`` (created from the default branch if missing)."""
        with self._lock:
            repo = self.repo(full_name)
            parent = repo.refs.get(branch) or repo.refs[repo.default_branch]
            tree = repo.commits[parent].tree
            who = author or HUMAN
            sha = self._make_commit(repo, tree, files, [parent], who, message)
            repo.commits[sha].verified = who.get("name") == self.bot_login
            repo.refs[branch] = sha
            self._sync_pull_heads(repo, branch)
            return sha

    def file(self, full_name: str, path: str, ref: str | None = None) -> str | None:
        """The text of ``path`` at ``ref`` (default branch by default)."""
        with self._lock:
            repo = self.repo(full_name)
            tree = repo.tree_at(ref or repo.default_branch) or {}
            return repo.blobs[tree[path]].decode() if path in tree else None

    def head_commit(self, full_name: str, branch: str) -> dict[str, Any]:
        """The git commit object at the head of ``branch`` (as ``GET git/commits`` shows it)."""
        with self._lock:
            repo = self.repo(full_name)
            return self._commit_json(repo, repo.commits[repo.refs[branch]])

    def set_permission(
        self, full_name: str, login: str, role: str, *, permission: str | None = None
    ) -> None:
        """``login``'s role: admin, maintain, write, triage, read, none, or a custom role name
        (an organisation's own role) with the base ``permission`` it grants."""
        base = permission or ROLE_PERMISSION.get(role)
        if base not in ("admin", "write", "read", "none"):
            raise ValueError(f"role {role!r} needs a base permission (admin, write, read, none)")
        with self._lock:
            self.repo(full_name).roles[login] = role
            self.repo(full_name).role_permissions[login] = base

    def open_issue(self, full_name: str, title: str = "Audit please", user: str = "octocat") -> int:
        """A new issue; returns its number."""
        with self._lock:
            repo = self.repo(full_name)
            number = self._next_number(repo)
            repo.issues[number] = {"number": number, "title": title, "user": user}
            return number

    def add_comment(self, full_name: str, issue: int, body: str, user: str = "octocat") -> int:
        """A comment by a person on an issue or PR; returns its id."""
        with self._lock:
            repo = self.repo(full_name)
            return int(self._new_comment(repo, issue, body, user)["id"])

    def open_pull(
        self,
        full_name: str,
        branch: str,
        *,
        title: str = "A change",
        body: str = "",
        user: str | None = None,
        files: dict[str, str] | None = None,
        base: str | None = None,
        number: int | None = None,
    ) -> int:
        """An open PR from ``branch`` (pushed with ``files`` first if missing) by ``user``.

        ``user`` defaults to the App's bot; the branch's commit is the bot's then too.
        ``number`` defaults to the repository's next issue number.
        """
        login = user or self.bot_login
        with self._lock:
            repo = self.repo(full_name)
            if branch not in repo.refs:
                author = self._bot() if login == self.bot_login else HUMAN
                self.push(full_name, branch, files or {"CHANGE.md": branch}, author=author)
            number = number or self._next_number(repo)
            stamp = _stamp(self.now())
            repo.pulls[number] = {
                "number": number,
                "id": next(self._ids),
                "state": "open",
                "title": title,
                "body": body,
                "user": login,
                "created_at": stamp,
                "updated_at": stamp,
                "head": {"ref": branch, "sha": repo.refs[branch]},
                "base": {"ref": base or repo.default_branch},
                "maintainer_can_modify": True,
            }
            return number

    def close_pull(self, full_name: str, number: int, *, merged: bool = False) -> None:
        """Close a PR (merging squashes its head tree onto the base branch)."""
        with self._lock:
            repo = self.repo(full_name)
            pull = repo.pulls[number]
            pull["state"] = "closed"
            pull["closed_at"] = _stamp(self.now())
            if merged:
                head = repo.commits[repo.refs[pull["head"]["ref"]]]
                base_ref = pull["base"]["ref"]
                parent = repo.refs[base_ref]
                sha = self._store_commit(
                    repo, dict(head.tree), [parent], pull["title"], self._bot(), verified=True
                )
                repo.refs[base_ref] = sha
                pull["merged_at"] = pull["closed_at"]
                pull["merge_commit_sha"] = sha

    def pulls(self, full_name: str, state: str = "all") -> list[dict[str, Any]]:
        """The repository's PR objects (``state``: open, closed or all), oldest first."""
        with self._lock:
            repo = self.repo(full_name)
            return [
                self._pull_json(repo, p)
                for _, p in sorted(repo.pulls.items())
                if state == "all" or p["state"] == state
            ]

    def fail_next(
        self,
        method: str,
        path: str,
        *,
        status: int = 502,
        json: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` ``METHOD path`` requests (path without query) with an error."""
        body = json or {"message": "Server Error" if status >= 500 else "Error"}
        with self._lock:
            self._failures.append(
                _Failure(method.upper(), path, status, body, headers or {}, times)
            )

    def raise_next(self, method: str, path: str, error: Exception, *, times: int = 1) -> None:
        """Fail the next ``times`` such requests in transport (e.g. ``httpx.ConnectTimeout``)."""
        with self._lock:
            self._failures.append(_Failure(method.upper(), path, 0, {}, {}, times, error))

    def secondary_rate_limit(self, method: str, path: str, *, retry_after: int = 60) -> None:
        """The next such request hits a secondary rate limit (403 with ``retry-after``)."""
        message = (
            "You have exceeded a secondary rate limit. Please wait a few minutes before you"
            " try again. If you reach out to GitHub Support for help, please include the"
            " request ID 0000:1111:2222:3333:44444444."
        )
        self.fail_next(
            method,
            path,
            status=403,
            json={"message": message, "documentation_url": DOCS, "status": "403"},
            headers={"retry-after": str(retry_after)},
        )

    def primary_rate_limit(self, method: str, path: str, *, reset_in: int = 120) -> None:
        """The next such request finds the hourly quota spent (403, remaining 0, a reset time)."""
        reset = int((self.now() + timedelta(seconds=reset_in)).timestamp())
        self.fail_next(
            method,
            path,
            status=403,
            json={"message": "API rate limit exceeded for installation ID 1.", "status": "403"},
            headers={
                "x-ratelimit-limit": "5000",
                "x-ratelimit-remaining": "0",
                "x-ratelimit-used": "5000",
                "x-ratelimit-reset": str(reset),
                "x-ratelimit-resource": "core",
            },
        )

    def too_many_requests(self, method: str, path: str, *, retry_after: int = 30) -> None:
        """The next such request gets 429 with ``retry-after``."""
        self.fail_next(
            method,
            path,
            status=429,
            json={"message": "Too many requests", "status": "429"},
            headers={"retry-after": str(retry_after)},
        )

    # ---------------------------------------------------------------- assertions

    def paths(self, *methods: str) -> list[str]:
        """``METHOD /path`` of every request so far (only ``methods`` when given), in order."""
        with self._lock:
            wanted = {m.upper() for m in methods}
            return [r.line for r in self.requests if not wanted or r.method in wanted]

    def calls(self, method: str, path: str) -> list[Recorded]:
        """The requests made to ``METHOD path`` (a regular expression matched in full)."""
        pattern = re.compile(path)
        with self._lock:
            return [
                r for r in self.requests if r.method == method.upper() and pattern.fullmatch(r.path)
            ]

    @property
    def tokens_minted(self) -> int:
        """How many installation tokens were issued."""
        with self._lock:
            return len(self.tokens)

    # ---------------------------------------------------------------- respx

    @contextlib.contextmanager
    def mock(self, *, passthrough_local: bool = True) -> Iterator[respx.MockRouter]:
        """Serve this fake for every httpx request in the process while the block runs."""
        with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
            if passthrough_local:
                for host in ("127.0.0.1", "localhost", "::1"):
                    router.route(host=host).pass_through()
            # Looked up per request, so a test may wrap ``handle`` while the mock is active.
            router.route(scheme=self.url.scheme, host=self.url.host).mock(
                side_effect=lambda request: self.handle(request)
            )
            yield router

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request (respx calls this; tests may call it directly)."""
        prefix = self.url.path.rstrip("/")
        path = request.url.path.removeprefix(prefix) or "/"
        body = json.loads(request.content) if request.content else None
        record = Recorded(
            request.method,
            path,
            dict(request.url.params),
            body,
            {k.lower(): v for k, v in request.headers.items()},
        )
        with self._lock:
            self.requests.append(record)
            try:
                status, payload, headers = self._answer(request, path, record)
            except _Reply as reply:
                status, payload, headers = reply.status, reply.body, reply.headers
            except Exception:  # a transport failure injected by raise_next
                self._check_contract(request, path, None, None)
                raise
            record.status = status
            response = self._response(status, payload, headers, request)
            self._check_contract(request, path, status, body_of(response.content))
            return response

    def _check_contract(
        self, request: httpx.Request, path: str, status: int | None, answer: Any
    ) -> None:
        """Validate the exchange against GitHub's description (GHES's for a GHES base URL)."""
        CONTRACT.exchange(
            enterprise=self.url.host != "api.github.com",
            method=request.method,
            path=path,
            query=list(request.url.params.multi_items()),
            body=body_of(request.content),
            status=status,
            answer=answer,
        )

    # ---------------------------------------------------------------- internals: plumbing

    def _response(
        self, status: int, payload: Any, headers: dict[str, str], request: httpx.Request
    ) -> httpx.Response:
        self.rate_remaining = max(0, self.rate_remaining - 1)
        base = {
            "x-github-request-id": f"FAKE:{next(self._ids)}",
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": str(self.rate_remaining),
            "x-ratelimit-used": str(5000 - self.rate_remaining),
            "x-ratelimit-reset": str(int((self.now() + timedelta(hours=1)).timestamp())),
            "x-ratelimit-resource": "core",
            "x-github-api-version-selected": request.headers.get(
                "x-github-api-version", "2022-11-28"
            ),
        }
        base |= headers
        if status == 204 or payload is None:
            return httpx.Response(status, headers=base)
        return httpx.Response(status, json=payload, headers=base)

    def _answer(self, request: httpx.Request, path: str, record: Recorded) -> Answer:
        for failure in self._failures:
            if failure.method == request.method and failure.path == path and failure.times > 0:
                failure.times -= 1
                if failure.error is not None:
                    self.requests.remove(record)
                    raise failure.error
                return failure.status, failure.body, failure.headers
        for method, pattern, needs, handler in self._routes:
            match = pattern.fullmatch(path)
            if match is None or method != request.method:
                continue
            args = match.groupdict()
            if path.startswith("/app/"):
                self._check_jwt(request)
                return handler(record, **args)
            repo = self._authorised_repo(request, args.pop("owner"), args.pop("repo"), needs)
            return handler(record, repo, **args)
        self.unserved.append(f"{request.method} {path}")
        raise _Reply(501, f"FakeGitHub does not serve {request.method} {path}")

    def _check_jwt(self, request: httpx.Request) -> None:
        """A JWT of the right shape (RS256, iss = app id, at most 10 minutes), not its signature."""
        scheme, _, jwt = request.headers.get("authorization", "").partition(" ")
        parts = jwt.split(".")
        if scheme.lower() != "bearer" or len(parts) != 3:
            raise _Reply(401, "A JSON web token could not be decoded")
        try:
            header, claims = (
                json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in parts[:2]
            )
        except ValueError as exc:
            raise _Reply(401, "A JSON web token could not be decoded") from exc
        now = self.now().timestamp()
        if (
            header.get("alg") != "RS256"
            or str(claims.get("iss")) != str(self.app_id)
            or not isinstance(claims.get("exp"), int)
            or not isinstance(claims.get("iat"), int)
            or claims["exp"] - claims["iat"] > 660
            or claims["exp"] < now
        ):
            raise _Reply(401, "'Expiration time' claim ('exp') is too far in the future")

    def _authorised_repo(
        self, request: httpx.Request, owner: str, name: str, needs: tuple[str, ...]
    ) -> FakeRepo:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        grant = self.tokens.get(token) if scheme.lower() in ("token", "bearer") else None
        if grant is None or grant["expires"] < self.now():
            raise _Reply(401, "Bad credentials")
        repo = self.repos.get(f"{owner}/{name}".lower())
        if (
            repo is None
            or repo.installation_id != grant["installation_id"]
            or (grant["repositories"] and repo.name not in grant["repositories"])
        ):
            raise _not_found()
        if needs and not any(self._granted(grant["permissions"], need) for need in needs):
            raise _Reply(
                403,
                "Resource not accessible by integration",
                x_accepted_github_permissions="; ".join(needs),
            )
        return repo

    @staticmethod
    def _granted(permissions: dict[str, str], need: str) -> bool:
        name, _, level = need.partition("=")
        have = permissions.get(name)
        return have == "write" or (have == "read" and level == "read")

    def _route_table(self) -> list[tuple[str, re.Pattern[str], tuple[str, ...], _Handler]]:
        repo = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
        read, write = "contents=read", "contents=write"
        talk = ("issues=write", "pull_requests=write")
        table: list[tuple[str, str, tuple[str, ...], _Handler]] = [
            ("POST", r"/app/installations/(?P<iid>\d+)/access_tokens", (), self._token),
            ("GET", repo, ("metadata=read",), self._get_repo),
            ("GET", repo + r"/git/ref/heads/(?P<branch>.+)", (read,), self._get_ref),
            ("POST", repo + r"/git/refs", (write,), self._create_ref),
            ("PATCH", repo + r"/git/refs/heads/(?P<branch>.+)", (write,), self._update_ref),
            ("DELETE", repo + r"/git/refs/heads/(?P<branch>.+)", (write,), self._delete_ref),
            ("GET", repo + r"/git/commits/(?P<sha>[0-9a-f]{40})", (read,), self._get_commit),
            ("POST", repo + r"/git/commits", (write,), self._create_commit),
            ("POST", repo + r"/git/trees", (write,), self._create_tree),
            ("GET", repo + r"/git/blobs/(?P<sha>[0-9a-f]{40})", (read,), self._get_blob),
            ("GET", repo + r"/contents(?:/(?P<path>.*))?", (read,), self._contents),
            ("GET", repo + r"/pulls", ("pull_requests=read",), self._list_pulls),
            ("POST", repo + r"/pulls", ("pull_requests=write",), self._create_pull),
            ("GET", repo + r"/pulls/(?P<number>\d+)", ("pull_requests=read",), self._get_pull),
            ("PATCH", repo + r"/pulls/(?P<number>\d+)", ("pull_requests=write",), self._edit_pull),
            ("POST", repo + r"/issues/(?P<number>\d+)/labels", talk, self._add_labels),
            ("GET", repo + r"/issues/(?P<number>\d+)/comments", (), self._list_comments),
            ("POST", repo + r"/issues/(?P<number>\d+)/comments", talk, self._create_comment),
            ("GET", repo + r"/issues/comments/(?P<cid>\d+)", (), self._get_comment),
            ("PATCH", repo + r"/issues/comments/(?P<cid>\d+)", talk, self._edit_comment),
            ("POST", repo + r"/issues/comments/(?P<cid>\d+)/reactions", talk, self._react),
            (
                "GET",
                repo + r"/collaborators/(?P<login>[^/]+)/permission",
                ("metadata=read",),
                self._permission,
            ),
            ("POST", repo + r"/check-runs", ("checks=write",), self._create_check),
            ("PATCH", repo + r"/check-runs/(?P<cid>\d+)", ("checks=write",), self._update_check),
            ("GET", repo + r"/check-runs/(?P<cid>\d+)", ("checks=read",), self._get_check),
        ]
        return [(m, re.compile(p), needs, h) for m, p, needs, h in table]

    def _bot(self) -> dict[str, str]:
        return {
            "name": self.bot_login,
            "email": f"{BOT_ID}+{self.bot_login}@users.noreply.github.com",
        }

    def _next_number(self, repo: FakeRepo) -> int:
        return max([0, *repo.issues, *repo.pulls]) + 1

    # ---------------------------------------------------------------- internals: git objects

    def _blob(self, repo: FakeRepo, text: str) -> str:
        data = text.encode()
        sha = _git_sha("blob", data)
        repo.blobs[sha] = data
        return sha

    def _tree(self, repo: FakeRepo, tree: dict[str, str]) -> str:
        data = json.dumps(sorted(tree.items())).encode()
        sha = _git_sha("tree", data)
        repo.trees[sha] = dict(tree)
        return sha

    def _store_commit(
        self,
        repo: FakeRepo,
        tree: dict[str, str],
        parents: list[str],
        message: str,
        author: dict[str, str],
        *,
        verified: bool,
    ) -> str:
        tree_sha = self._tree(repo, tree)
        signed = {**author, "date": _stamp(self.now())}
        data = json.dumps([tree_sha, parents, message, signed, next(self._ids)]).encode()
        sha = _git_sha("commit", data)
        repo.commits[sha] = _Commit(sha, tree, tree_sha, parents, message, signed, signed, verified)
        return sha

    def _make_commit(
        self,
        repo: FakeRepo,
        base: dict[str, str],
        files: dict[str, str],
        parents: list[str],
        author: dict[str, str],
        message: str,
    ) -> str:
        tree = dict(base) | {path: self._blob(repo, text) for path, text in files.items()}
        return self._store_commit(repo, tree, parents, message, author, verified=False)

    def _commit_json(self, repo: FakeRepo, commit: _Commit) -> dict[str, Any]:
        return {
            "sha": commit.sha,
            "node_id": f"C_kwDO{commit.sha[:12]}",
            "url": f"{repo.api}/git/commits/{commit.sha}",
            "html_url": f"{repo.html}/commit/{commit.sha}",
            "author": dict(commit.author),
            "committer": dict(commit.committer),
            "tree": {"sha": commit.tree_sha, "url": f"{repo.api}/git/trees/{commit.tree_sha}"},
            "message": commit.message,
            "parents": [
                {
                    "sha": p,
                    "url": f"{repo.api}/git/commits/{p}",
                    "html_url": f"{repo.html}/commit/{p}",
                }
                for p in commit.parents
            ],
            "verification": {
                "verified": commit.verified,
                "reason": "valid" if commit.verified else "unsigned",
                "signature": "-----BEGIN PGP SIGNATURE-----\n…" if commit.verified else None,
                "payload": "tree …" if commit.verified else None,
                "verified_at": commit.author["date"] if commit.verified else None,
            },
        }

    def _ref_json(self, repo: FakeRepo, branch: str) -> dict[str, Any]:
        sha = repo.refs[branch]
        return {
            "ref": f"refs/heads/{branch}",
            "node_id": f"REF_kwDO{repo.id}{branch}",
            "url": f"{repo.api}/git/refs/heads/{branch}",
            "object": {"sha": sha, "type": "commit", "url": f"{repo.api}/git/commits/{sha}"},
        }

    def _sync_pull_heads(self, repo: FakeRepo, branch: str) -> None:
        for pull in repo.pulls.values():
            if pull["head"]["ref"] == branch and pull["state"] == "open":
                pull["head"]["sha"] = repo.refs[branch]

    # ---------------------------------------------------------------- handlers: app

    def _token(self, record: Recorded, iid: str) -> Answer:
        installation = int(iid)
        repos = [r for r in self.repos.values() if r.installation_id == installation]
        if not repos:
            raise _not_found()
        body = record.json or {}
        have = self.installation_permissions.get(installation, ALL_PERMISSIONS)
        wanted: dict[str, str] = body.get("permissions") or dict(have)
        for name, level in wanted.items():
            if not self._granted(have, f"{name}={level}"):
                raise _invalid("The permissions requested are not granted to this installation.")
        names = body.get("repositories") or []
        if any(n not in {r.name for r in repos} for n in names):
            raise _invalid(
                "There is at least one repository that does not exist or is not accessible"
                " to the parent installation."
            )
        token = "ghs_" + secrets.token_urlsafe(27)[:36]
        expires = self.now().replace(microsecond=0) + timedelta(hours=1)
        self.tokens[token] = {
            "installation_id": installation,
            "repositories": list(names),
            "permissions": wanted,
            "expires": expires,
        }
        answer = {
            "token": token,
            "expires_at": _stamp(expires),
            "permissions": wanted,
            "repository_selection": "selected" if names else "all",
        }
        return 201, answer, {}

    # ---------------------------------------------------------------- handlers: repo and git

    def _get_repo(self, record: Recorded, repo: FakeRepo) -> Answer:
        # ``full-repository``: two counts more, and what the installation may do.
        counts = {"network_count": 0, "subscribers_count": 0}
        rights = {"admin": False, "maintain": False, "push": True, "triage": True, "pull": True}
        return 200, repo.json() | counts | {"permissions": rights}, {}

    def _get_ref(self, record: Recorded, repo: FakeRepo, branch: str) -> Answer:
        if branch not in repo.refs:
            raise _not_found()
        return 200, self._ref_json(repo, branch), {}

    def _create_ref(self, record: Recorded, repo: FakeRepo) -> Answer:
        body = record.json or {}
        ref, sha = str(body.get("ref", "")), str(body.get("sha", ""))
        if not ref.startswith("refs/heads/") or ref.count("/") < 2:
            raise _invalid("Reference name is not valid")
        branch = ref.removeprefix("refs/heads/")
        if sha not in repo.commits:
            raise _invalid("Object does not exist")
        if branch in repo.refs:
            raise _invalid("Reference already exists")
        repo.refs[branch] = sha
        return 201, self._ref_json(repo, branch), {}

    def _update_ref(self, record: Recorded, repo: FakeRepo, branch: str) -> Answer:
        body = record.json or {}
        sha = str(body.get("sha", ""))
        if branch not in repo.refs:
            raise _invalid("Reference does not exist")
        if sha not in repo.commits:
            raise _invalid("Object does not exist")
        if not body.get("force") and not self._descends(repo, sha, repo.refs[branch]):
            raise _invalid("Update is not a fast forward")
        repo.refs[branch] = sha
        self._sync_pull_heads(repo, branch)
        return 200, self._ref_json(repo, branch), {}

    def _descends(self, repo: FakeRepo, sha: str, ancestor: str) -> bool:
        todo = [sha]
        while todo:
            current = todo.pop()
            if current == ancestor:
                return True
            todo += repo.commits[current].parents
        return False

    def _delete_ref(self, record: Recorded, repo: FakeRepo, branch: str) -> Answer:
        if branch not in repo.refs:
            raise _invalid("Reference does not exist")
        del repo.refs[branch]
        for pull in repo.pulls.values():  # GitHub closes a PR whose head branch is deleted
            if pull["head"]["ref"] == branch and pull["state"] == "open":
                pull["state"], pull["closed_at"] = "closed", _stamp(self.now())
        return 204, None, {}

    def _get_commit(self, record: Recorded, repo: FakeRepo, sha: str) -> Answer:
        if sha not in repo.commits:
            raise _not_found()
        return 200, self._commit_json(repo, repo.commits[sha]), {}

    def _create_commit(self, record: Recorded, repo: FakeRepo) -> Answer:
        body = record.json or {}
        tree_sha, parents = str(body.get("tree", "")), list(body.get("parents") or [])
        if tree_sha not in repo.trees:
            raise _invalid("Tree SHA does not exist")
        if any(p not in repo.commits for p in parents):
            raise _invalid("Parent SHA does not exist or is not a commit object")
        if not body.get("message"):
            raise _invalid('Invalid request.\n\n"message" wasn\'t supplied.')
        author = body.get("author")
        who = {"name": author["name"], "email": author["email"]} if author else self._bot()
        sha = self._store_commit(
            repo, repo.trees[tree_sha], parents, str(body["message"]), who, verified=not author
        )
        return 201, self._commit_json(repo, repo.commits[sha]), {}

    def _create_tree(self, record: Recorded, repo: FakeRepo) -> Answer:
        body = record.json or {}
        base = body.get("base_tree")
        if base is not None and base not in repo.trees:
            raise _invalid("base_tree is not a valid tree oid")
        tree = dict(repo.trees[base]) if base else {}
        for entry in body.get("tree") or []:
            if entry.get("mode") not in ("100644", "100755", "040000", "160000", "120000"):
                raise _invalid("Must supply a valid tree.mode")
            if entry.get("type") != "blob":
                raise _invalid("Must supply a valid tree.type")
            path = str(entry["path"])
            if "content" in entry:
                tree[path] = self._blob(repo, str(entry["content"]))
            elif entry.get("sha") is None:
                tree.pop(path, None)
            elif entry["sha"] in repo.blobs:
                tree[path] = entry["sha"]
            else:
                raise _invalid("Must supply a valid tree.sha")
        sha = self._tree(repo, tree)
        entries = [
            {
                "path": path,
                "mode": "100644",
                "type": "blob",
                "sha": blob,
                "size": len(repo.blobs[blob]),
                "url": f"{repo.api}/git/blobs/{blob}",
            }
            for path, blob in sorted(tree.items())
        ]
        answer = {"sha": sha, "url": f"{repo.api}/git/trees/{sha}", "tree": entries}
        return 201, answer | {"truncated": False}, {}

    def _get_blob(self, record: Recorded, repo: FakeRepo, sha: str) -> Answer:
        if sha not in repo.blobs:
            raise _not_found()
        data = repo.blobs[sha]
        answer = {
            "sha": sha,
            "node_id": f"B_kwDO{sha[:12]}",
            "size": len(data),
            "url": f"{repo.api}/git/blobs/{sha}",
            "content": _b64_lines(data),
            "encoding": "base64",
        }
        return 200, answer, {}

    def _contents(self, record: Recorded, repo: FakeRepo, path: str | None) -> Answer:
        ref = record.query.get("ref") or repo.default_branch
        tree = repo.tree_at(ref)
        if tree is None:
            raise _Reply(404, f"No commit found for the ref {ref}")
        path = (path or "").strip("/")
        if path in tree:
            return 200, self._content_entry(repo, path, tree[path], ref, full=True), {}
        prefix = f"{path}/" if path else ""
        children: dict[str, dict[str, Any]] = {}
        for file_path, blob in sorted(tree.items()):
            if not file_path.startswith(prefix):
                continue
            head, _, rest = file_path[len(prefix) :].partition("/")
            child = prefix + head
            if rest:
                children.setdefault(head, self._dir_entry(repo, child, ref))
            else:
                children[head] = self._content_entry(repo, child, blob, ref, full=False)
        if not children:
            raise _not_found()
        return 200, list(children.values()), {}

    def _content_entry(
        self, repo: FakeRepo, path: str, blob: str, ref: str, *, full: bool
    ) -> dict[str, Any]:
        data = repo.blobs[blob]
        url = f"{repo.api}/contents/{path}?ref={ref}"
        entry: dict[str, Any] = {
            "type": "file",
            "size": len(data),
            "name": path.rpartition("/")[2],
            "path": path,
            "sha": blob,
            "url": url,
            "git_url": f"{repo.api}/git/blobs/{blob}",
            "html_url": f"{repo.html}/blob/{ref}/{path}",
            "download_url": f"https://raw.githubusercontent.com/{repo.full_name}/{ref}/{path}",
            "_links": {
                "self": url,
                "git": f"{repo.api}/git/blobs/{blob}",
                "html": f"{repo.html}/blob/{ref}/{path}",
            },
        }
        if full:
            inline = len(data) <= INLINE_LIMIT
            entry["encoding"] = "base64" if inline else "none"
            entry["content"] = _b64_lines(data) if inline else ""
        return entry

    def _dir_entry(self, repo: FakeRepo, path: str, ref: str) -> dict[str, Any]:
        url = f"{repo.api}/contents/{path}?ref={ref}"
        sha = _git_sha("tree", path.encode())
        return {
            "type": "dir",
            "size": 0,
            "name": path.rpartition("/")[2],
            "path": path,
            "sha": sha,
            "url": url,
            "git_url": f"{repo.api}/git/trees/{sha}",
            "html_url": f"{repo.html}/tree/{ref}/{path}",
            "download_url": None,
            "_links": {"self": url, "git": f"{repo.api}/git/trees/{sha}", "html": None},
        }

    # ---------------------------------------------------------------- handlers: pulls

    def _pull_json(
        self, repo: FakeRepo, pull: dict[str, Any], *, full: bool = True
    ) -> dict[str, Any]:
        """``pull-request`` (one PR; webhooks carry the same), or ``pull-request-simple`` as
        the list endpoint returns it (no counts, no ``merged``) when ``full`` is off."""
        number = pull["number"]
        base_ref = pull["base"]["ref"]
        repo_json = repo.json()
        api, html = f"{repo.api}/pulls/{number}", f"{repo.html}/pull/{number}"
        head_sha = pull["head"]["sha"]
        login = pull["user"]
        links = {
            "self": api,
            "html": html,
            "issue": f"{repo.api}/issues/{number}",
            "comments": f"{repo.api}/issues/{number}/comments",
            "review_comments": f"{api}/comments",
            "review_comment": f"{repo.api}/pulls/comments{{/number}}",
            "commits": f"{api}/commits",
            "statuses": f"{repo.api}/statuses/{head_sha}",
        }
        answer: dict[str, Any] = {
            "url": api,
            "id": pull["id"],
            "node_id": f"PR_kwDO{pull['id']}",
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "issue_url": links["issue"],
            "number": number,
            "state": pull["state"],
            "locked": False,
            "title": pull["title"],
            "user": _user(login, _uid(login), "Bot" if "[bot]" in login else "User"),
            "body": pull["body"],
            "created_at": pull["created_at"],
            "updated_at": pull["updated_at"],
            "closed_at": pull.get("closed_at"),
            "merged_at": pull.get("merged_at"),
            "merge_commit_sha": pull.get("merge_commit_sha"),
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "labels": [
                github_shapes.label(name, _uid(name), repo.api)
                for name in repo.labels.get(number, [])
            ],
            "milestone": None,
            "draft": False,
            "commits_url": links["commits"],
            "review_comments_url": links["review_comments"],
            "review_comment_url": links["review_comment"],
            "comments_url": links["comments"],
            "statuses_url": links["statuses"],
            "head": {
                "label": f"{repo.owner}:{pull['head']['ref']}",
                "ref": pull["head"]["ref"],
                "sha": head_sha,
                "user": repo.owner_json(),
                "repo": repo_json,
            },
            "base": {
                "label": f"{repo.owner}:{base_ref}",
                "ref": base_ref,
                "sha": repo.refs.get(base_ref, ""),
                "user": repo.owner_json(),
                "repo": repo_json,
            },
            "_links": {key: {"href": href} for key, href in links.items()},
            "author_association": "NONE",
            "auto_merge": None,
            "active_lock_reason": None,
        }
        if not full:
            return answer
        merged = pull.get("merged_at") is not None
        return answer | {
            "merged": merged,
            "mergeable": None if pull["state"] == "closed" else True,
            "rebaseable": None if pull["state"] == "closed" else True,
            "mergeable_state": "unknown" if pull["state"] == "closed" else "clean",
            "merged_by": _user(self.bot_login, BOT_ID, "Bot") if merged else None,
            "comments": len([c for c in repo.comments.values() if c["issue"] == number]),
            "review_comments": 0,
            "maintainer_can_modify": pull["maintainer_can_modify"],
            "commits": 1,
            "additions": 1,
            "deletions": 0,
            "changed_files": 1,
        }

    def _list_pulls(self, record: Recorded, repo: FakeRepo) -> Answer:
        q = record.query
        state = q.get("state", "open")
        head = q.get("head")
        pulls = [
            p
            for p in repo.pulls.values()
            if (state == "all" or p["state"] == state)
            and (head is None or f"{repo.owner}:{p['head']['ref']}" == head)
            and ("base" not in q or p["base"]["ref"] == q["base"])
        ]
        pulls.sort(
            key=lambda p: (p["created_at"], p["number"]),
            reverse=q.get("direction", "desc") == "desc",
        )
        per_page = min(int(q.get("per_page", 30)), 100)
        page = int(q.get("page", 1))
        chosen = pulls[(page - 1) * per_page : page * per_page]
        return 200, [self._pull_json(repo, p, full=False) for p in chosen], {}

    def _create_pull(self, record: Recorded, repo: FakeRepo) -> Answer:
        body = record.json or {}
        head = str(body.get("head", "")).removeprefix(f"{repo.owner}:")
        base = str(body.get("base", ""))
        if head not in repo.refs:
            raise _invalid(
                "Validation Failed", resource="PullRequest", field="head", code="invalid"
            )
        if base not in repo.refs:
            raise _invalid(
                "Validation Failed", resource="PullRequest", field="base", code="invalid"
            )
        for pull in repo.pulls.values():
            if (
                pull["head"]["ref"] == head
                and pull["base"]["ref"] == base
                and pull["state"] == "open"
            ):
                raise _invalid(
                    "Validation Failed",
                    resource="PullRequest",
                    code="custom",
                    message=f"A pull request already exists for {repo.owner}:{head}.",
                )
        if repo.refs[head] == repo.refs[base]:
            raise _invalid(
                "Validation Failed",
                resource="PullRequest",
                code="custom",
                message=f"No commits between {base} and {head}",
            )
        self._check_body_length(body.get("body"))
        number = self._next_number(repo)
        stamp = _stamp(self.now())
        repo.pulls[number] = {
            "number": number,
            "id": next(self._ids),
            "state": "open",
            "title": str(body.get("title", "")),
            "body": body.get("body"),
            "user": self.bot_login,
            "created_at": stamp,
            "updated_at": stamp,
            "head": {"ref": head, "sha": repo.refs[head]},
            "base": {"ref": base},
            "maintainer_can_modify": bool(body.get("maintainer_can_modify", False)),
        }
        return 201, self._pull_json(repo, repo.pulls[number]), {}

    def _get_pull(self, record: Recorded, repo: FakeRepo, number: str) -> Answer:
        pull = _found(repo.pulls, int(number))
        return 200, self._pull_json(repo, pull), {}

    def _edit_pull(self, record: Recorded, repo: FakeRepo, number: str) -> Answer:
        pull = _found(repo.pulls, int(number))
        body = record.json or {}
        self._check_body_length(body.get("body"))
        for key in ("title", "body", "state"):
            if key in body:
                pull[key] = body[key]
        pull["updated_at"] = _stamp(self.now())
        return 200, self._pull_json(repo, pull), {}

    @staticmethod
    def _check_body_length(body: Any) -> None:
        if isinstance(body, str) and len(body) > BODY_LIMIT:
            raise _invalid(
                "Validation Failed",
                resource="Issue",
                code="custom",
                field="body",
                message=f"body is too long (maximum is {BODY_LIMIT} characters)",
            )

    # ---------------------------------------------------------------- handlers: issues

    def _issue_exists(self, repo: FakeRepo, number: int) -> bool:
        return number in repo.issues or number in repo.pulls

    def _add_labels(self, record: Recorded, repo: FakeRepo, number: str) -> Answer:
        n = int(number)
        if not self._issue_exists(repo, n):
            raise _not_found()
        labels = repo.labels.setdefault(n, [])
        for name in (record.json or {}).get("labels") or []:
            if name not in labels:
                labels.append(str(name))
        answer = [github_shapes.label(name, _uid(name), repo.api) for name in labels]
        return 200, answer, {}

    def _comment_json(self, repo: FakeRepo, comment: dict[str, Any]) -> dict[str, Any]:
        issue = comment["issue"]
        kind = "pull" if issue in repo.pulls else "issues"
        user = comment["user"]
        return {
            "id": comment["id"],
            "node_id": f"IC_kwDO{comment['id']}",
            "url": f"{repo.api}/issues/comments/{comment['id']}",
            "html_url": f"{repo.html}/{kind}/{issue}#issuecomment-{comment['id']}",
            "issue_url": f"{repo.api}/issues/{issue}",
            "body": comment["body"],
            "user": _user(user, _uid(user), "Bot" if "[bot]" in user else "User"),
            "created_at": comment["created_at"],
            "updated_at": comment["updated_at"],
            "author_association": "NONE" if "[bot]" in user else "MEMBER",
        }

    def _new_comment(self, repo: FakeRepo, issue: int, body: Any, user: str) -> dict[str, Any]:
        if not self._issue_exists(repo, issue):
            raise _not_found()
        if not isinstance(body, str) or not body:
            raise _invalid(
                "Validation Failed", resource="IssueComment", field="body", code="missing_field"
            )
        self._check_body_length(body)
        stamp = _stamp(self.now())
        comment: dict[str, Any] = {
            "id": next(self._ids),
            "issue": issue,
            "body": body,
            "user": user,
            "created_at": stamp,
            "updated_at": stamp,
        }
        repo.comments[comment["id"]] = comment
        return comment

    def _list_comments(self, record: Recorded, repo: FakeRepo, number: str) -> Answer:
        n = int(number)
        if not self._issue_exists(repo, n):
            raise _not_found()
        found = [self._comment_json(repo, c) for c in repo.comments.values() if c["issue"] == n]
        return 200, found, {}

    def _create_comment(self, record: Recorded, repo: FakeRepo, number: str) -> Answer:
        body = (record.json or {}).get("body")
        comment = self._new_comment(repo, int(number), body, self.bot_login)
        return 201, self._comment_json(repo, comment), {}

    def _get_comment(self, record: Recorded, repo: FakeRepo, cid: str) -> Answer:
        comment = _found(repo.comments, int(cid))
        return 200, self._comment_json(repo, comment), {}

    def _edit_comment(self, record: Recorded, repo: FakeRepo, cid: str) -> Answer:
        comment = _found(repo.comments, int(cid))
        body = (record.json or {}).get("body")
        self._check_body_length(body)
        comment["body"], comment["updated_at"] = body, _stamp(self.now())
        return 200, self._comment_json(repo, comment), {}

    def _react(self, record: Recorded, repo: FakeRepo, cid: str) -> Answer:
        if int(cid) not in repo.comments:
            raise _not_found()
        content = (record.json or {}).get("content")
        if content not in REACTIONS:
            raise _invalid(
                "Validation Failed", resource="Reaction", field="content", code="invalid"
            )
        for reaction in repo.reactions:
            if reaction["comment_id"] == int(cid) and reaction["content"] == content:
                return 200, reaction["json"], {}
        answer = {
            "id": next(self._ids),
            "node_id": "REA_lATO",
            "user": _user(self.bot_login, BOT_ID, "Bot"),
            "content": content,
            "created_at": _stamp(self.now()),
        }
        repo.reactions.append({"comment_id": int(cid), "content": content, "json": answer})
        return 201, answer, {}

    def _permission(self, record: Recorded, repo: FakeRepo, login: str) -> Answer:
        role = repo.roles.get(login, "none" if repo.private else "read")
        permission = repo.role_permissions.get(login) or ROLE_PERMISSION[role]
        user = _user(login, _uid(login)) | {
            "permissions": {
                "admin": role == "admin",
                "maintain": role in ("admin", "maintain"),
                "push": permission in ("admin", "write"),
                "triage": role in ("admin", "maintain", "write", "triage"),
                "pull": role != "none",
            },
            "role_name": role,
        }
        return 200, {"permission": permission, "role_name": role, "user": user}, {}

    # ---------------------------------------------------------------- handlers: checks

    def _check_json(self, repo: FakeRepo, run: dict[str, Any]) -> dict[str, Any]:
        output = run.get("output") or {}
        return {
            "id": run["id"],
            "node_id": f"CR_kwDO{run['id']}",
            "head_sha": run["head_sha"],
            "external_id": run.get("external_id", ""),
            "url": f"{repo.api}/check-runs/{run['id']}",
            "html_url": f"{repo.html}/runs/{run['id']}",
            "details_url": run.get("details_url", f"https://github.com/apps/{self.app_slug}"),
            "status": run["status"],
            "conclusion": run.get("conclusion"),
            "started_at": run.get("started_at"),
            "completed_at": run.get("completed_at"),
            "output": {
                "title": output.get("title"),
                "summary": output.get("summary"),
                "text": output.get("text"),
                "annotations_count": 0,
                "annotations_url": f"{repo.api}/check-runs/{run['id']}/annotations",
            },
            "name": run["name"],
            "check_suite": {"id": run["suite"]},
            "app": github_shapes.app(
                self.app_id, self.app_slug, repo.owner_json(), ALL_PERMISSIONS
            ),
            "pull_requests": [],
            "actions": run.get("actions", []),
        }

    def _validate_check(self, body: dict[str, Any], run: dict[str, Any]) -> None:
        status = body.get("status", run.get("status", "queued"))
        conclusion = body.get("conclusion", run.get("conclusion"))
        if status not in CHECK_STATUSES:
            raise _invalid(f"Invalid request.\n\n{status!r} is not a valid status.")
        if conclusion is not None and conclusion not in CHECK_CONCLUSIONS:
            raise _invalid(f"Invalid request.\n\n{conclusion!r} is not a valid conclusion.")
        if status == "completed" and conclusion is None:
            raise _invalid(
                'Invalid request.\n\n"conclusion" is required when "status" is "completed".'
            )
        output = body.get("output")
        if output is not None:
            if not output.get("title") or output.get("summary") is None:
                raise _invalid('Invalid request.\n\n"title", "summary" weren\'t supplied.')
            for key in ("summary", "text"):
                if len(output.get(key) or "") > CHECK_TEXT_LIMIT:
                    raise _invalid(
                        f"Invalid request.\n\nOnly {CHECK_TEXT_LIMIT} characters are allowed;"
                        f" {len(output[key])} were supplied."
                    )
        actions = body.get("actions") or []
        if len(actions) > 3:
            raise _invalid("Invalid request.\n\nOnly 3 actions are allowed.")
        for action in actions:
            for key, limit in (("label", 20), ("description", 40), ("identifier", 20)):
                if not action.get(key) or len(action[key]) > limit:
                    raise _invalid(
                        f"Invalid request.\n\n{key} is too long (maximum is {limit} characters)"
                    )

    def _apply_check(self, body: dict[str, Any], run: dict[str, Any]) -> None:
        for key in (
            "name",
            "status",
            "conclusion",
            "started_at",
            "completed_at",
            "external_id",
            "details_url",
            "output",
            "actions",
        ):
            if key in body:
                run[key] = body[key]
        if body.get("conclusion"):
            run["status"] = "completed"
        if run["status"] == "completed" and not run.get("completed_at"):
            run["completed_at"] = _stamp(self.now())

    def _create_check(self, record: Recorded, repo: FakeRepo) -> Answer:
        body = record.json or {}
        if not body.get("name"):
            raise _invalid('Invalid request.\n\n"name" wasn\'t supplied.')
        if body.get("head_sha") not in repo.commits:
            raise _invalid(f"No commit found for SHA: {body.get('head_sha')}")
        run: dict[str, Any] = {
            "id": next(self._ids),
            "suite": _uid(str(body["head_sha"])),
            "head_sha": body["head_sha"],
            "status": "queued",
        }
        self._validate_check(body, run)
        self._apply_check(body, run)
        repo.check_runs[run["id"]] = run
        return 201, self._check_json(repo, run), {}

    def _update_check(self, record: Recorded, repo: FakeRepo, cid: str) -> Answer:
        run = _found(repo.check_runs, int(cid))
        body = record.json or {}
        self._validate_check(body, run)
        self._apply_check(body, run)
        return 200, self._check_json(repo, run), {}

    def _get_check(self, record: Recorded, repo: FakeRepo, cid: str) -> Answer:
        run = _found(repo.check_runs, int(cid))
        return 200, self._check_json(repo, run), {}
