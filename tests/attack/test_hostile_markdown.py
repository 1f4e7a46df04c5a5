"""A target whose table and column are named to inject Markdown into what the App posts.

The table and its column are called ``md @octocat ![t](https://e.x/p.png) <img src=x> | `x`
<!--``: a mention, an external image, raw HTML, a table pipe, code and an HTML comment that
would hide the rest of a body. A real ``/audit`` (signed webhook → inbox → arq workers → an
audit of a real PostgreSQL 15 → the GitHub fake) must open its pull request, and every
Markdown text it sends to GitHub must render that name as code: no mention, image, HTML or
broken table, as a CommonMark/GFM parser reads it. A reviewer who writes the same text gets
quoted back by ``@db-architect explain`` as plain text.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from app.adapters.pgserver import PgServer
from app.settings import Settings
from tests import payloads
from tests.github_fake import BODY_LIMIT, FakeGitHub
from tests.integration.github_e2e import (
    BASE_REVISION,
    ISSUE,
    REPO,
    app_settings,
    drain,
    fake_repository,
    seed_target,
    send,
)
from tests.integration.webhook_app import AppServer
from tests.markdown_check import HOSTILE, assert_inert, in_code

SECRET = "hostile-markdown-secret"
NAME = '"' + HOSTILE.replace('"', '""') + '"'
CONFIG = "version: 1\ntarget: shop\nmigrations:\n  path: migrations/versions\n"
SEED = f"""
CREATE TABLE {NAME} AS
  SELECT g AS id, 'user' || g || '@example.com' AS {NAME}
  FROM generate_series(1, 100000) g;
ALTER TABLE {NAME} ADD PRIMARY KEY (id);
VACUUM ANALYZE {NAME}
"""
CHECK_RUN_LIMIT = 65_535


@pytest.fixture(scope="module")
def target(pg15: PgServer) -> str:
    lookups = [
        (f"SELECT * FROM {NAME} WHERE {NAME} = %s", (f"user{n * 97}@example.com",))
        for n in range(1, 40)
    ]
    return seed_target(pg15, "hostile_md_target", SEED, lookups)


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    files = {".github/db-architect.yml": CONFIG, "migrations/versions/0001_base.py": BASE_REVISION}
    github = fake_repository(files, {"alice": "write"})
    with github.mock():
        yield github


@pytest.fixture
def settings(fake: FakeGitHub, target: str, redis_url: str, tmp_path: Path) -> Settings:
    return app_settings(fake, SECRET, target, redis_url, tmp_path)


@pytest.fixture
async def client(settings: Settings, module_store: str) -> AsyncIterator[httpx.AsyncClient]:
    with AppServer(settings, module_store) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            yield http


@pytest.mark.timeout(120)
async def test_a_hostile_table_name_reaches_github_only_as_code(
    fake: FakeGitHub, settings: Settings, module_store: str, client: httpx.AsyncClient
) -> None:
    comment_id = fake.add_comment(REPO, ISSUE, "/audit", user="alice")
    payload = payloads.issue_comment("/audit", login="alice", number=ISSUE, comment_id=comment_id)
    _, response = await send(client, SECRET, "issue_comment", payload)
    assert response.status_code == 202, response.text

    await drain(settings, module_store)

    pulls = [p for p in fake.pulls(REPO) if p["head"]["ref"].startswith("db-architect/")]
    assert len(pulls) == 1, fake.paths()
    body = pulls[0]["body"]
    assert "@octocat" not in pulls[0]["title"]  # a title is not Markdown, but it never mentions
    assert len(body) <= BODY_LIMIT
    assert_inert(body)
    assert in_code(body, HOSTILE)  # the name is there, whole, as code

    checks = fake.calls("PATCH", rf"/repos/{REPO}/check-runs/\d+")
    output = checks[-1].json["output"]
    assert checks[-1].json["conclusion"] in ("neutral", "success")
    for part in (output["summary"], output.get("text") or ""):
        assert len(part) <= CHECK_RUN_LIMIT
        assert_inert(part)
    assert in_code(output["summary"], HOSTILE)

    posted = [c.json["body"] for c in fake.calls("POST", rf"/repos/{REPO}/issues/\d+/comments")]
    edited = [c.json["body"] for c in fake.calls("PATCH", rf"/repos/{REPO}/issues/comments/\d+")]
    assert edited and in_code(edited[-1], HOSTILE)
    for comment in (*posted, *edited):
        assert len(comment) <= BODY_LIMIT
        # The requester is the one mention the App makes on purpose.
        assert_inert(comment.replace("@alice", "alice"))

    # A reviewer answers with the same text; `explain` then quotes the reviewer back.
    review = payloads.pull_request_review(
        pulls[0], "changes_requested", f"{HOSTILE} is write-heavy, no", login="carol"
    )
    await send(client, SECRET, "pull_request_review", review)
    await drain(settings, module_store)
    number = pulls[0]["number"]
    said = fake.add_comment(REPO, number, "@db-architect explain", user="alice")
    asked = payloads.pull_comment(pulls[0], "@db-architect explain", login="alice", comment_id=said)
    await send(client, SECRET, "issue_comment", asked)
    await drain(settings, module_store)

    (reply,) = [
        c.json["body"] for c in fake.calls("POST", rf"/repos/{REPO}/issues/{number}/comments")
    ]
    assert "What reviewers said" in reply and "carol" in reply
    assert_inert(reply.replace("@alice", "alice"))
