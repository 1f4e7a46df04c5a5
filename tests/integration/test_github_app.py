"""End to end: a signed ``/audit`` over real HTTP → inbox → arq workers → a real audit → GitHub.

GitHub is the stateful respx fake (tests/github_fake.py); everything else is real: the web
app under uvicorn, the store on PostgreSQL 18, Redis, arq workers, and the audited target on
PostgreSQL 15 with HypoPG, whose pg_stat_statements holds the workload.
"""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.adapters.pgserver import PgServer
from app.settings import Settings
from tests import payloads
from tests.github_fake import FakeGitHub
from tests.integration.github_e2e import (
    BASE_REVISION,
    ISSUE,
    REPO,
    app_settings,
    drain,
    fake_repository,
    seed_target,
)
from tests.integration.github_e2e import send as send_signed
from tests.integration.webhook_app import AppServer, inbox_row
from worker.main import build_workers, close_worker

SECRET = "e2e-webhook-secret"
CONFIG = """\
version: 1
target: shop
migrations:
  path: migrations/versions
labels: [db-architect, performance]
"""
SEED = """
CREATE TABLE accounts AS
  SELECT g AS id, 'user' || g || '@example.com' AS email, (g % 50) AS plan
  FROM generate_series(1, 100000) g;
ALTER TABLE accounts ADD PRIMARY KEY (id);
VACUUM ANALYZE accounts
"""


@pytest.fixture(scope="module")
def target(pg15: PgServer) -> str:
    """A seeded target whose pg_stat_statements holds one slow, frequent lookup."""
    lookups = [
        ("SELECT * FROM accounts WHERE email = %s", (f"user{n * 97}@example.com",))
        for n in range(1, 40)
    ]
    return seed_target(pg15, "gh_target", SEED, lookups)


@pytest.fixture(scope="module")
def store_dsn(module_store: str) -> str:
    return module_store


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    files = {
        ".github/db-architect.yml": CONFIG,
        "migrations/versions/0001_base.py": BASE_REVISION,
        "README.md": "# shop\n",
    }
    github = fake_repository(files, {"alice": "write", "mallory": "read"})
    with github.mock():
        yield github


@pytest.fixture
def settings(fake: FakeGitHub, target: str, redis_url: str, tmp_path: Path) -> Settings:
    return app_settings(fake, SECRET, target, redis_url, tmp_path)


@pytest.fixture
def app(settings: Settings, store_dsn: str) -> Iterator[AppServer]:
    with AppServer(settings, store_dsn) as server:
        yield server


@pytest.fixture
async def client(app: AppServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=app.url, timeout=10) as http:
        yield http


async def send(
    client: httpx.AsyncClient, event: str, payload: dict[str, Any], delivery_id: str | None = None
) -> tuple[str, httpx.Response]:
    return await send_signed(client, SECRET, event, payload, delivery_id)


def audit_comment(fake: FakeGitHub, body: str = "/audit", login: str = "alice") -> dict[str, Any]:
    """A comment made on the fake, and the ``issue_comment`` delivery GitHub sends for it."""
    comment_id = fake.add_comment(REPO, ISSUE, body, user=login)
    return payloads.issue_comment(body, login=login, number=ISSUE, comment_id=comment_id)


def pull_requests(fake: FakeGitHub) -> list[dict[str, Any]]:
    return [p for p in fake.pulls(REPO) if p["head"]["ref"].startswith("db-architect/")]


async def test_an_audit_comment_ends_in_one_pull_request_with_evidence(
    fake: FakeGitHub, settings: Settings, store_dsn: str, client: httpx.AsyncClient
) -> None:
    delivery_id, response = await send(client, "issue_comment", audit_comment(fake))
    assert response.status_code == 202, response.text

    await drain(settings, store_dsn)

    paths = fake.paths()
    repo = f"/repos/{REPO}"
    expected_order = [
        f"GET {repo}/collaborators/alice/permission",
        f"POST {repo}/issues/{ISSUE}/comments",
        f"POST {repo}/check-runs",
        f"GET {repo}/contents/.github/db-architect.yml",
        f"POST {repo}/git/trees",
        f"POST {repo}/git/commits",
        f"POST {repo}/git/refs",
        f"POST {repo}/pulls",
    ]
    positions = [paths.index(p) for p in expected_order]
    assert positions == sorted(positions), paths
    (reaction,) = fake.calls("POST", rf"{repo}/issues/comments/\d+/reactions")
    assert reaction.json == {"content": "eyes"}

    (pull,) = pull_requests(fake)
    assert re.fullmatch(r"db-architect/add-index/accounts-[0-9a-f]{8}", pull["head"]["ref"])
    assert pull["title"] == "perf(db): add index on accounts (email)"
    assert "<!-- db-architect:meta " in pull["body"] and "accounts_email_idx" in pull["body"]
    assert "@example.com" not in pull["body"]  # measured with real values, never printed
    assert {label["name"] for label in pull["labels"]} == {"db-architect", "performance"}
    commit = fake.head_commit(REPO, pull["head"]["ref"])
    assert commit["author"]["name"] == fake.bot_login
    revision_path = next(
        path
        for path in _changed_files(fake, pull["head"]["ref"])
        if path.startswith("migrations/versions/") and path != "migrations/versions/0001_base.py"
    )
    revision = fake.file(REPO, revision_path, ref=pull["head"]["ref"])
    assert revision is not None and 'down_revision = "0001base"' in revision
    assert "CREATE INDEX CONCURRENTLY IF NOT EXISTS accounts_email_idx" in revision

    (created,) = fake.calls("POST", rf"{repo}/check-runs")
    checks = fake.calls("PATCH", rf"{repo}/check-runs/\d+")
    statuses = [created.json["status"], *(c.json["status"] for c in checks)]
    assert statuses == ["queued", "in_progress", "completed"]
    assert created.json["name"] == "DB Architect / audit"
    assert created.json["head_sha"] == fake.head_commit(REPO, "main")["sha"]
    assert checks[-1].json["conclusion"] == "neutral"
    assert "1 pull request opened" in checks[-1].json["output"]["title"]
    result = fake.calls("PATCH", rf"{repo}/issues/comments/\d+")[-1]
    assert f"#{pull['number']}" in result.json["body"]
    row = inbox_row(store_dsn, delivery_id)
    assert row is not None and row["done_at"] is not None and row["outcome"] == "audit queued"

    # The same delivery again (a redelivery), then a new /audit: nothing new is opened.
    _, again = await send(client, "issue_comment", audit_comment(fake), delivery_id=delivery_id)
    assert again.status_code == 202 and again.json()["status"] == "duplicate"
    _, second = await send(client, "issue_comment", audit_comment(fake))
    assert second.status_code == 202
    await drain(settings, store_dsn)

    assert len(pull_requests(fake)) == 1
    assert len(fake.calls("POST", rf"{repo}/pulls")) == 1
    assert len(fake.calls("POST", rf"{repo}/git/commits")) == 1  # nothing changed: no commit
    final = fake.calls("PATCH", rf"{repo}/check-runs/\d+")[-1].json["output"]["summary"]
    assert f"#{pull['number']}" in final


def _changed_files(fake: FakeGitHub, branch: str) -> list[str]:
    trees = fake.calls("POST", rf"/repos/{REPO}/git/trees")
    return [entry["path"] for call in trees for entry in call.json["tree"]]


async def test_a_commenter_without_write_access_is_refused_politely(
    fake: FakeGitHub, settings: Settings, store_dsn: str, client: httpx.AsyncClient
) -> None:
    _, response = await send(client, "issue_comment", audit_comment(fake, login="mallory"))
    assert response.status_code == 202

    await drain(settings, store_dsn)

    (reply,) = fake.calls("POST", rf"/repos/{REPO}/issues/{ISSUE}/comments")
    assert "@mallory" in reply.json["body"] and "write" in reply.json["body"]
    assert not fake.calls("POST", rf"/repos/{REPO}/check-runs") and not pull_requests(fake)


async def test_a_worker_stopped_mid_audit_is_retried_and_opens_exactly_one_pr(
    fake: FakeGitHub, settings: Settings, store_dsn: str, client: httpx.AsyncClient
) -> None:
    _, response = await send(client, "issue_comment", audit_comment(fake))
    assert response.status_code == 202
    events, audits = build_workers(
        settings, store_dsn=store_dsn, burst=True, handle_signals=False, poll_delay_s=0.05
    )
    await events.main()
    await close_worker(events)

    # The worker is told to stop (SIGTERM, as a deploy does) right after GitHub created the PR,
    # before the check run and the comment were completed.
    audits = build_workers(settings, store_dsn=store_dsn, handle_signals=False, poll_delay_s=0.05)[
        1
    ]
    serve = fake.handle

    def stop_after_pull(request: httpx.Request) -> httpx.Response:
        answer = serve(request)
        if request.method == "POST" and request.url.path.endswith("/pulls"):
            audits.handle_sig(signal.SIGTERM)
        return answer

    fake.handle = stop_after_pull  # type: ignore[method-assign]
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(audits.async_run(), timeout=120)
    await close_worker(audits)
    fake.handle = serve  # type: ignore[method-assign]
    assert len(pull_requests(fake)) == 1
    updates = fake.calls("PATCH", rf"/repos/{REPO}/check-runs/\d+")
    assert all(update.json.get("status") != "completed" for update in updates)

    await drain(settings, store_dsn)

    assert len(pull_requests(fake)) == 1
    assert len(fake.calls("POST", rf"/repos/{REPO}/pulls")) == 1
    assert len(fake.calls("POST", rf"/repos/{REPO}/check-runs")) == 1  # the same run, resumed
    last = fake.calls("PATCH", rf"/repos/{REPO}/check-runs/\d+")[-1].json
    assert last["status"] == "completed" and last["conclusion"] == "neutral"


async def test_github_5xx_and_rate_limits_are_retried_with_backoff(
    fake: FakeGitHub, settings: Settings, store_dsn: str, client: httpx.AsyncClient
) -> None:
    repo = f"/repos/{REPO}"
    payload = audit_comment(fake)
    reactions_path = f"{repo}/issues/comments/{payload['comment']['id']}/reactions"
    fake.fail_next("POST", reactions_path, status=502)
    fake.secondary_rate_limit("POST", f"{repo}/pulls", retry_after=1)
    fake.fail_next("POST", f"{repo}/git/trees", status=503)
    _, response = await send(client, "issue_comment", payload)
    assert response.status_code == 202

    await drain(settings, store_dsn, backoff_base_s=0.05)

    reactions = fake.calls("POST", reactions_path)
    assert [r.status for r in reactions] == [502, 201]
    assert [r.status for r in fake.calls("POST", rf"{repo}/pulls")] == [403, 201]
    assert [r.status for r in fake.calls("POST", rf"{repo}/git/trees")][:2] == [503, 201]
    assert len(pull_requests(fake)) == 1
    assert len(fake.calls("POST", rf"{repo}/issues/{ISSUE}/comments")) == 1  # one reply, edited


async def test_a_broken_config_fails_the_check_run_naming_the_key(
    fake: FakeGitHub, settings: Settings, store_dsn: str, client: httpx.AsyncClient
) -> None:
    fake.push(REPO, "main", {".github/db-architect.yml": CONFIG + "pr_hourly_limit: two\n"})
    _, response = await send(client, "issue_comment", audit_comment(fake))
    assert response.status_code == 202

    await drain(settings, store_dsn)

    final = fake.calls("PATCH", rf"/repos/{REPO}/check-runs/\d+")[-1].json
    assert final["conclusion"] == "failure"
    assert "pr_hourly_limit" in final["output"]["summary"]
    assert not pull_requests(fake) and not fake.calls("POST", rf"/repos/{REPO}/git/trees")
    result = fake.calls("PATCH", rf"/repos/{REPO}/issues/comments/\d+")[-1].json["body"]
    assert "pr_hourly_limit" in result


async def test_a_dry_run_writes_the_pull_request_to_the_outbox_and_changes_nothing(
    fake: FakeGitHub, settings: Settings, store_dsn: str, client: httpx.AsyncClient
) -> None:
    _, response = await send(client, "issue_comment", audit_comment(fake, "/audit --dry-run"))
    assert response.status_code == 202

    await drain(settings, store_dsn)

    assert not pull_requests(fake)
    assert not [p for p in fake.paths("POST", "PATCH", "DELETE") if "/git/" in p]
    drafts = list((settings.outbox / payloads.OWNER / payloads.NAME).rglob("pr.md"))
    assert len(drafts) == 1 and "perf(db): add index on accounts (email)" in drafts[0].read_text()
    final = fake.calls("PATCH", rf"/repos/{REPO}/check-runs/\d+")[-1].json
    assert "would open (dry run)" in final["output"]["summary"]
    assert [a["identifier"] for a in final["actions"]] == ["open_prs"]


async def test_a_repository_without_config_is_told_how_to_configure_and_not_audited(
    fake: FakeGitHub, settings: Settings, store_dsn: str, client: httpx.AsyncClient
) -> None:
    empty = f"{payloads.OWNER}/empty"
    fake.add_repo(empty, installation_id=payloads.INSTALLATION_ID)
    fake.set_permission(empty, "alice", "admin")
    issue = fake.open_issue(empty, "Audit please")
    comment_id = fake.add_comment(empty, issue, "/audit", user="alice")
    payload = payloads.issue_comment("/audit", number=issue, comment_id=comment_id)
    payload["repository"] |= {"name": "empty", "full_name": empty}
    _, response = await send(client, "issue_comment", payload)
    assert response.status_code == 202

    await drain(settings, store_dsn)

    final = fake.calls("PATCH", rf"/repos/{empty}/check-runs/\d+")[-1].json
    assert final["conclusion"] == "neutral" and final["output"]["title"] == "Not configured"
    assert ".github/db-architect.yml" in final["output"]["summary"]
    assert not fake.calls("POST", rf"/repos/{empty}/git/trees")


async def test_an_audit_past_its_deadline_ends_its_check_run_as_timed_out(
    fake: FakeGitHub, settings: Settings, store_dsn: str, client: httpx.AsyncClient
) -> None:
    async def slow_audit(resolved: object) -> None:
        await asyncio.sleep(30)

    _, response = await send(client, "issue_comment", audit_comment(fake))
    assert response.status_code == 202

    await drain(
        settings.model_copy(update={"audit_timeout_seconds": 1.0}), store_dsn, run_audit=slow_audit
    )

    final = fake.calls("PATCH", rf"/repos/{REPO}/check-runs/\d+")[-1].json
    assert (final["status"], final["conclusion"]) == ("completed", "timed_out")
    assert "took longer than 1 s" in final["output"]["summary"]
    result = fake.calls("PATCH", rf"/repos/{REPO}/issues/comments/\d+")[-1].json["body"]
    assert "timed out" in result.lower()
