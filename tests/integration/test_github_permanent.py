"""End to end: GitHub refusing for good (4xx) is reported once and never retried.

The same real pipeline as test_github_app.py (signed webhook over HTTP → inbox → arq workers
→ GitHub as the respx fake), with the web's inbox recovery running every 0.2 s: a delivery
left unfinished would be enqueued again within a second.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from app.settings import Settings
from tests import payloads
from tests.github_fake import DOCS, FakeGitHub
from tests.integration.github_e2e import ISSUE, REPO, drain, fake_repository
from tests.integration.github_e2e import send as send_signed
from tests.integration.webhook_app import AppServer, inbox_row

SECRET = "permanent-webhook-secret"
CONFIG = "version: 1\ntarget: shop\n"
RECOVERY_S = 0.2


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    github = fake_repository({".github/db-architect.yml": CONFIG}, {"alice": "write"})
    with github.mock():
        yield github


@pytest.fixture
def settings(fake: FakeGitHub, redis_url: str, tmp_path: Path) -> Settings:
    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()
    return fake.settings(
        github_webhook_secret=SECRET,
        redis_url=redis_url,
        targets={"shop": {"dsn": "postgresql://nobody@127.0.0.1:1/none"}},
        data_dir=tmp_path,
        inbox_recovery_seconds=RECOVERY_S,
    )


@pytest.fixture
async def client(settings: Settings, module_store: str) -> AsyncIterator[httpx.AsyncClient]:
    with AppServer(settings, module_store) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            yield http


def _audit_comment(fake: FakeGitHub) -> dict[str, object]:
    comment_id = fake.add_comment(REPO, ISSUE, "/audit", user="alice")
    return payloads.issue_comment("/audit", login="alice", number=ISSUE, comment_id=comment_id)


async def test_a_refused_delivery_is_finished_not_requeued(
    fake: FakeGitHub, settings: Settings, module_store: str, client: httpx.AsyncClient
) -> None:
    payload = _audit_comment(fake)
    reactions = f"/repos/{REPO}/issues/comments/{payload['comment']['id']}/reactions"  # type: ignore[index]
    body = {
        "message": "Resource not accessible by integration",
        "documentation_url": DOCS,
        "status": "403",
    }
    headers = {"x-accepted-github-permissions": "issues=write; pull_requests=write"}
    fake.fail_next("POST", reactions, status=403, json=body, headers=headers, times=10)
    delivery_id, response = await send_signed(client, SECRET, "issue_comment", payload)
    assert response.status_code == 202

    await drain(settings, module_store)
    await asyncio.sleep(8 * RECOVERY_S)  # several recovery turns
    await drain(settings, module_store)

    assert [c.status for c in fake.calls("POST", reactions)] == [403]
    row = inbox_row(module_store, delivery_id)
    assert row is not None and row["done_at"] is not None
    assert row["outcome"].startswith("failed: GitHub 403: the App lacks issues=write")


async def test_an_audit_github_refuses_says_so_in_its_check_run(
    fake: FakeGitHub, settings: Settings, module_store: str, client: httpx.AsyncClient
) -> None:
    config = f"/repos/{REPO}/contents/.github/db-architect.yml"
    body = {"message": "Resource not accessible by integration", "status": "403"}
    headers = {"x-accepted-github-permissions": "contents=read"}
    fake.fail_next("GET", config, status=403, json=body, headers=headers, times=10)
    _, response = await send_signed(client, SECRET, "issue_comment", _audit_comment(fake))
    assert response.status_code == 202

    await drain(settings, module_store)
    await asyncio.sleep(8 * RECOVERY_S)
    await drain(settings, module_store)

    assert len(fake.calls("GET", config)) == 1
    final = fake.calls("PATCH", rf"/repos/{REPO}/check-runs/\d+")[-1].json
    assert final["conclusion"] == "failure"
    assert final["output"]["title"] == "Audit failed: GitHub refused a request"
    assert "the App lacks contents=read" in final["output"]["summary"]
    assert "`/audit` again" in final["output"]["summary"]
