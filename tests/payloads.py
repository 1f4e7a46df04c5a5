"""Webhook payloads shaped like GitHub's (field names and types from the docs' examples)."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import Any

from tests import github_shapes
from tests.contract.session import CONTRACT
from tests.github_fake import FakeGitHub

INSTALLATION_ID = 42
REPO_ID = 118
OWNER, NAME = "acme", "shop"
FULL_NAME = f"{OWNER}/{NAME}"
NOW = "2026-11-28T09:00:00Z"


def user(login: str, *, kind: str = "User", uid: int = 1001) -> dict[str, Any]:
    return github_shapes.user(login, uid, kind)


def repository() -> dict[str, Any]:
    owner = user(OWNER, kind="Organization", uid=900)
    return github_shapes.repository(owner, NAME, REPO_ID, updated_at=NOW)


def installation() -> dict[str, Any]:
    return {"id": INSTALLATION_ID, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNDI="}


def reactions(url: str) -> dict[str, Any]:
    """The reaction counts (all zero) every comment carries."""
    kinds = ("+1", "-1", "laugh", "confused", "heart", "hooray", "eyes", "rocket")
    return {"url": f"{url}/reactions", "total_count": 0} | dict.fromkeys(kinds, 0)


def issue_comment(
    body: str,
    *,
    login: str = "alice",
    kind: str = "User",
    on_pull: bool = False,
    number: int = 7,
    comment_id: int = 5550001,
) -> dict[str, Any]:
    """``issue_comment`` / ``created`` in issue #7 (or in PR #7 with ``on_pull``)."""
    api = f"https://api.github.com/repos/{FULL_NAME}"
    issue_api = f"{api}/issues/{number}"
    issue: dict[str, Any] = {
        "url": issue_api,
        "repository_url": api,
        "labels_url": f"{issue_api}/labels{{/name}}",
        "comments_url": f"{issue_api}/comments",
        "events_url": f"{issue_api}/events",
        "html_url": f"https://github.com/{FULL_NAME}/{'pull' if on_pull else 'issues'}/{number}",
        "id": 2001,
        "node_id": "I_kwDOAAAAds4AAAfR",
        "number": number,
        "title": "Checkout is slow",
        "user": user("bob", uid=1002),
        "labels": [],
        "state": "open",
        "locked": False,
        "assignee": None,
        "assignees": [],
        "milestone": None,
        "comments": 1,
        "created_at": "2026-11-27T15:00:00Z",
        "updated_at": NOW,
        "closed_at": None,
        "author_association": "MEMBER",
        "active_lock_reason": None,
        "body": "p95 of the order page doubled this week.",
        "reactions": reactions(issue_api),
    }
    if on_pull:
        issue["pull_request"] = {
            "url": f"{api}/pulls/{number}",
            "html_url": f"https://github.com/{FULL_NAME}/pull/{number}",
            "diff_url": f"https://github.com/{FULL_NAME}/pull/{number}.diff",
            "patch_url": f"https://github.com/{FULL_NAME}/pull/{number}.patch",
        }
    comment_api = f"{api}/issues/comments/{comment_id}"
    return {
        "action": "created",
        "issue": issue,
        "comment": {
            "url": comment_api,
            "html_url": f"{issue['html_url']}#issuecomment-{comment_id}",
            "issue_url": issue_api,
            "id": comment_id,
            "node_id": "IC_kwDOAAAAds5AAAAB",
            "user": user(login, kind=kind),
            "created_at": NOW,
            "updated_at": NOW,
            "author_association": "MEMBER",
            "performed_via_github_app": None,
            "body": body,
            "reactions": reactions(comment_api),
        },
        "repository": repository(),
        "sender": user(login, kind=kind),
        "installation": installation(),
    }


def repository_dispatch(client_payload: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "action": "db-architect-audit",
        "branch": "main",
        "client_payload": client_payload or {},
        "repository": repository(),
        "sender": user("github-actions[bot]", kind="Bot", uid=41898282),
        "installation": installation(),
    }


def _webhook_app() -> dict[str, Any]:
    """The App as webhooks carry it (no permissions or events there)."""
    app = github_shapes.app(
        1, "db-architect", user(OWNER, kind="Organization", uid=900), {"checks": "write"}
    )
    del app["permissions"], app["events"]
    return app


def _suite(sid: int, sha: str, status: str, conclusion: str | None) -> dict[str, Any]:
    """A check suite on ``main`` at ``sha`` (what check_run and check_suite events carry)."""
    return {
        "id": sid,
        "node_id": f"CS_kwDO{sid}",
        "head_branch": "main",
        "head_sha": sha,
        "status": status,
        "conclusion": conclusion,
        "url": f"https://api.github.com/repos/{FULL_NAME}/check-suites/{sid}",
        "before": "b" * 40,
        "after": sha,
        "pull_requests": [],
        "app": _webhook_app(),
        "created_at": NOW,
        "updated_at": NOW,
    }


def check_run(action: str, identifier: str | None = None) -> dict[str, Any]:
    sha = "a" * 40
    api = f"https://api.github.com/repos/{FULL_NAME}"
    payload: dict[str, Any] = {
        "action": action,
        "check_run": {
            "id": 4001,
            "node_id": "CR_kwDOAAAAds8AAAAPoQ",
            "name": "DB Architect / audit",
            "head_sha": sha,
            "external_id": "",
            "url": f"{api}/check-runs/4001",
            "html_url": f"https://github.com/{FULL_NAME}/runs/4001",
            "details_url": "https://github.com/apps/db-architect",
            "status": "completed",
            "conclusion": "neutral",
            "started_at": NOW,
            "completed_at": NOW,
            "output": {
                "title": "DB Architect",
                "summary": "2 findings",
                "text": None,
                "annotations_count": 0,
                "annotations_url": f"{api}/check-runs/4001/annotations",
            },
            "check_suite": _suite(3001, sha, "completed", "neutral"),
            "app": _webhook_app(),
            "pull_requests": [],
        },
        "repository": repository(),
        "sender": user("alice"),
        "installation": installation(),
    }
    if identifier is not None:
        payload["requested_action"] = {"identifier": identifier}
    return payload


def installation_event(action: str) -> dict[str, Any]:
    inst = installation() | {
        "account": user(OWNER, kind="Organization", uid=900),
        "repository_selection": "selected",
        "access_tokens_url": (
            f"https://api.github.com/app/installations/{INSTALLATION_ID}/access_tokens"
        ),
        "repositories_url": "https://api.github.com/installation/repositories",
        "html_url": f"https://github.com/organizations/{OWNER}/settings/installations/42",
        "app_id": 1,
        "app_slug": "db-architect",
        "target_id": 900,
        "target_type": "Organization",
        "permissions": {"checks": "write", "contents": "write", "metadata": "read"},
        "events": ["check_run", "issue_comment", "pull_request"],
        "created_at": "2026-11-01T08:00:00Z",
        "updated_at": NOW,
        "single_file_name": None,
        "suspended_at": NOW if action == "suspend" else None,
        "suspended_by": user("alice") if action == "suspend" else None,
    }
    del inst["node_id"]  # the full installation object has none
    return {
        "action": action,
        "installation": inst,
        "repositories": [
            {"id": REPO_ID, "node_id": "R_1", "name": NAME, "full_name": FULL_NAME, "private": True}
        ],
        "sender": user("alice"),
    }


def check_suite(action: str = "requested") -> dict[str, Any]:
    """``check_suite``: GitHub sends it to every App with the checks permission on a push."""
    sha = "c" * 40
    suite_url = f"https://api.github.com/repos/{FULL_NAME}/check-suites/3002"
    committer = {"name": "Octo Cat", "email": "octocat@example.com"}
    return {
        "action": action,
        "check_suite": _suite(3002, sha, "queued", None)
        | {
            "latest_check_runs_count": 0,
            "check_runs_url": f"{suite_url}/check-runs",
            "head_commit": {
                "id": sha,
                "tree_id": "d" * 40,
                "message": "Add orders",
                "timestamp": NOW,
                "author": committer,
                "committer": committer,
            },
        },
        "repository": repository(),
        "sender": user("alice"),
        "installation": installation(),
    }


def star() -> dict[str, Any]:
    """``star`` / ``created``: an event the App subscribes to nowhere (it must be ignored)."""
    return {
        "action": "created",
        "starred_at": NOW,
        "repository": repository(),
        "sender": user("alice"),
        "installation": installation(),
    }


def ping(zen: str = "Avoid administrative distraction.") -> dict[str, Any]:
    """``ping``: what GitHub sends once when the App's webhook is set up."""
    return {
        "zen": zen,
        "hook_id": 480001,
        "hook": {
            "type": "App",
            "id": 480001,
            "name": "web",
            "active": True,
            "app_id": 1,
            "events": ["check_run", "issue_comment", "pull_request"],
            "config": {
                "content_type": "json",
                "url": "https://dbarch.example/webhooks/github",
                "insecure_ssl": "0",
            },
            "updated_at": NOW,
            "created_at": NOW,
            "url": "https://api.github.com/app/hook/config",
            "ping_url": "https://api.github.com/app/hook/pings",
            "deliveries_url": "https://api.github.com/app/hook/deliveries",
        },
    }


def queued(
    event: str, payload: dict[str, Any], delivery_id: str = "d-1", *, checked: bool = True
) -> dict[str, Any]:
    """The job the receiver queues for a delivery (``payload`` checked as in :func:`delivery`)."""
    if checked:
        CONTRACT.webhook(event, payload)
    return {
        "delivery_id": delivery_id,
        "event": event,
        "action": payload.get("action"),
        "installation_id": INSTALLATION_ID,
        "repository": FULL_NAME,
        "payload": json.loads(json.dumps(payload)),
    }


def pull(
    *,
    number: int = 12,
    user: str = "db-architect[bot]",
    branch: str = "db-architect/add-index/orders-3f9a1c2b",
    state: str = "open",
    title: str = "perf(db): add index on orders (customer_id)",
    body: str = "",
) -> dict[str, Any]:
    """Pull request ``number`` of acme/shop as GitHub sends it (``state``: open, closed or
    merged), made by the fake GitHub so REST answers and webhooks carry the same object."""
    fake = FakeGitHub()
    fake.add_repo(FULL_NAME)
    fake.open_pull(FULL_NAME, branch, title=title, body=body, user=user, number=number)
    if state != "open":
        fake.close_pull(FULL_NAME, number, merged=state == "merged")
    return fake.pulls(FULL_NAME)[0]


def sign(body: bytes, secret: str) -> str:
    """``X-Hub-Signature-256`` for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def delivery(
    event: str,
    payload: dict[str, Any],
    secret: str,
    *,
    delivery_id: str | None = None,
    checked: bool = True,
) -> tuple[bytes, dict[str, str]]:
    """The body and headers GitHub sends for one delivery.

    ``payload`` is checked against the event's published schema (a violation fails the
    test); ``checked=False`` is for bodies that are not GitHub's on purpose (hostile input).
    """
    if checked:
        CONTRACT.webhook(event, payload)
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/5f3a2b1",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "480001",
        "X-GitHub-Hook-Installation-Target-Type": "integration",
        "X-GitHub-Hook-Installation-Target-ID": "1",
        "X-Hub-Signature-256": sign(body, secret),
    }
    return body, headers


#: What a full pull request has over the simple one that reviews and review comments carry.
_FULL_ONLY = (
    "merged",
    "mergeable",
    "rebaseable",
    "mergeable_state",
    "merged_by",
    "comments",
    "review_comments",
    "maintainer_can_modify",
    "commits",
    "additions",
    "deletions",
    "changed_files",
)


def simple_pull(pull: dict[str, Any]) -> dict[str, Any]:
    """``pull`` (a full PR object, e.g. the fake's) as review events carry it."""
    return {key: value for key, value in pull.items() if key not in _FULL_ONLY}


def _on_pull(action: str, pull: dict[str, Any], login: str, kind: str) -> dict[str, Any]:
    return {
        "action": action,
        "pull_request": pull,
        "repository": repository(),
        "sender": user(login, kind=kind),
        "installation": installation(),
    }


def pull_request_review(
    pull: dict[str, Any],
    state: str,
    body: str | None,
    *,
    login: str = "carol",
    kind: str = "User",
    review_id: int = 80001,
) -> dict[str, Any]:
    """``pull_request_review`` / ``submitted`` on ``pull`` (a PR object, e.g. the fake's).

    ``state`` is the webhook's lower-case review state: ``approved``, ``changes_requested``
    or ``commented``.
    """
    payload = _on_pull("submitted", simple_pull(pull), login, kind)
    html = f"{pull['html_url']}#pullrequestreview-{review_id}"
    payload["review"] = {
        "id": review_id,
        "node_id": f"PRR_kwDO{review_id}",
        "user": user(login, kind=kind),
        "body": body,
        "commit_id": pull["head"]["sha"],
        "submitted_at": NOW,
        "state": state,
        "html_url": html,
        "pull_request_url": pull["url"],
        "author_association": "MEMBER",
        "_links": {"html": {"href": html}, "pull_request": {"href": pull["url"]}},
    }
    return payload


def pull_request_review_comment(
    pull: dict[str, Any],
    body: str,
    *,
    path: str = "migrations/versions/x.py",
    login: str = "carol",
    kind: str = "User",
    comment_id: int = 90001,
) -> dict[str, Any]:
    """``pull_request_review_comment`` / ``created``: a comment on a line of the diff."""
    payload = _on_pull("created", simple_pull(pull), login, kind)
    url = f"{pull['url'].rpartition('/pulls/')[0]}/pulls/comments/{comment_id}"
    html = f"{pull['html_url']}#discussion_r{comment_id}"
    payload["comment"] = {
        "url": url,
        "id": comment_id,
        "node_id": f"PRRC_kwDO{comment_id}",
        "pull_request_review_id": comment_id + 1,
        "diff_hunk": "@@ -0,0 +1,20 @@",
        "path": path,
        "position": 12,
        "original_position": 12,
        "start_line": None,
        "original_start_line": None,
        "line": 12,
        "original_line": 12,
        "start_side": None,
        "side": "RIGHT",
        "subject_type": "line",
        "commit_id": pull["head"]["sha"],
        "original_commit_id": pull["head"]["sha"],
        "user": user(login, kind=kind),
        "body": body,
        "created_at": NOW,
        "updated_at": NOW,
        "html_url": html,
        "pull_request_url": pull["url"],
        "author_association": "MEMBER",
        "_links": {
            "self": {"href": url},
            "html": {"href": html},
            "pull_request": {"href": pull["url"]},
        },
        "reactions": reactions(url),
    }
    return payload


def pull_comment(
    pull: dict[str, Any],
    body: str,
    *,
    login: str = "carol",
    kind: str = "User",
    comment_id: int = 5560001,
) -> dict[str, Any]:
    """``issue_comment`` / ``created`` in the conversation of ``pull`` (its issue side)."""
    payload = issue_comment(
        body, login=login, kind=kind, on_pull=True, number=pull["number"], comment_id=comment_id
    )
    payload["issue"] |= {
        "title": pull["title"],
        "user": pull["user"],
        "body": pull["body"],
        "state": pull["state"],
    }
    return payload


def pull_request_closed(
    pull: dict[str, Any], *, login: str = "carol", kind: str = "User"
) -> dict[str, Any]:
    """``pull_request`` / ``closed`` (``pull["merged"]`` tells a merge from a close)."""
    return _on_pull("closed", pull, login, kind) | {"number": pull["number"]}
