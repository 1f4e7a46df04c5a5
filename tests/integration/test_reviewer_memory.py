"""End to end: a reviewer's "write-heavy" review is remembered, lowers a later audit's confidence
with a citation, and `@db-architect ignore` stops the recommendation for good.

Real: uvicorn + Litestar, the store on PostgreSQL 18 with pgvector, Redis, arq workers, the
fastembed model, the target on PostgreSQL 15 with HypoPG. GitHub is the stateful respx fake.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import respx
from pydantic import SecretStr

from app.adapters.pgserver import PgServer
from app.bot.pulls.fixpr import read_meta
from app.settings import Settings
from tests import payloads
from tests.anthropic_mock import HTTPX2, MESSAGES_URL, message_response, request_json
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
from tests.integration.webhook_app import AppServer

SECRET = "memory-webhook-secret"
CONFIG = """\
version: 1
target: shop
migrations:
  path: migrations/versions
"""
SEED = """
CREATE TABLE accounts AS
  SELECT g AS id, 'user' || g || '@example.com' AS email, (g % 50) AS plan
  FROM generate_series(1, 100000) g;
ALTER TABLE accounts ADD PRIMARY KEY (id);
CREATE TABLE members AS
  SELECT g AS id, 'member' || g || '@example.org' AS email, (g % 7) AS team
  FROM generate_series(1, 100000) g;
ALTER TABLE members ADD PRIMARY KEY (id);
VACUUM ANALYZE accounts;
VACUUM ANALYZE members
"""
REVIEW = (
    "This table is write-heavy: we insert thousands of rows a second, and another index "
    "would slow every insert. Please don't add it."
)


@pytest.fixture(scope="module")
def target(pg15: PgServer) -> str:
    """Two look-alike tables, each with a slow, frequent lookup by email."""
    lookups = [
        lookup
        for n in range(1, 40)
        for lookup in (
            ("SELECT * FROM accounts WHERE email = %s", (f"user{n * 97}@example.com",)),
            ("SELECT * FROM members WHERE email = %s", (f"member{n * 89}@example.org",)),
        )
    ]
    return seed_target(pg15, "memory_target", SEED, lookups)


@pytest.fixture
def store_dsn(fresh_store: str) -> str:
    return fresh_store


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    files = {".github/db-architect.yml": CONFIG, "migrations/versions/0001_base.py": BASE_REVISION}
    github = fake_repository(files, {"alice": "write", "carol": "write"})
    with github.mock():
        yield github


@pytest.fixture
def settings(
    fake: FakeGitHub, target: str, redis_url: str, tmp_path: Path, model_dir: Path
) -> Settings:
    return app_settings(fake, SECRET, target, redis_url, tmp_path, model_dir=model_dir)


@pytest.fixture
async def client(settings: Settings, store_dsn: str) -> AsyncIterator[httpx.AsyncClient]:
    with AppServer(settings, store_dsn) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            yield http


async def send(client: httpx.AsyncClient, event: str, payload: dict[str, Any]) -> None:
    _, response = await send_signed(client, SECRET, event, payload)
    assert response.status_code == 202, response.text


def pull_on(fake: FakeGitHub, table: str) -> dict[str, Any]:
    (pull,) = [
        p
        for p in fake.pulls(REPO)
        if re.fullmatch(rf"db-architect/add-index/{table}-[0-9a-f]{{8}}", p["head"]["ref"])
    ]
    return pull


def confidence(pull: dict[str, Any]) -> float:
    meta = read_meta(pull["body"])
    assert meta is not None
    return meta.confidence


def store_rows(dsn: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query.encode()).fetchall()


async def audit(fake: FakeGitHub, client: httpx.AsyncClient, settings: Settings, dsn: str) -> None:
    comment_id = fake.add_comment(REPO, ISSUE, "/audit", user="alice")
    await send(
        client,
        "issue_comment",
        payloads.issue_comment("/audit", login="alice", number=ISSUE, comment_id=comment_id),
    )
    await drain(settings, dsn)


async def test_a_write_heavy_review_lowers_a_similar_recommendation_and_ignore_stops_it(
    fake: FakeGitHub, settings: Settings, store_dsn: str, client: httpx.AsyncClient
) -> None:
    # 1. The first audit opens one PR per table; the ledger records both.
    await audit(fake, client, settings, store_dsn)
    accounts, members = pull_on(fake, "accounts"), pull_on(fake, "members")
    before = confidence(members)
    assert before >= 0.8 and "Reviewer memory" not in members["body"]
    ledger = store_rows(
        store_dsn, "SELECT table_name, state, pr_number, descriptor FROM recommendations"
    )
    assert {(t, s, n) for t, s, n, _ in ledger} == {
        ("public.accounts", "pr_open", accounts["number"]),
        ("public.members", "pr_open", members["number"]),
    }
    assert all(d and "add index on" in d for *_, d in ledger)

    # 2. A "changes requested" review on the accounts PR becomes feedback with a real vector.
    review = payloads.pull_request_review(accounts, "changes_requested", REVIEW, login="carol")
    await send(client, "pull_request_review", review)
    await drain(settings, store_dsn)
    ((source, classification, reason, dims, norm),) = store_rows(
        store_dsn,
        "SELECT source, classification, reason, vector_dims(embedding), "
        "round(vector_norm(embedding)::numeric, 3) FROM feedback",
    )
    assert (source, classification, dims, float(norm)) == ("review", "reject", 384, 1.0)
    assert "write load" in reason

    # 3. A later audit: the similar members recommendation is less confident and cites it.
    await audit(fake, client, settings, store_dsn)
    members = pull_on(fake, "members")
    after = confidence(members)
    assert after < before
    assert "Reviewer memory moved the confidence by −" in members["body"]
    assert "a similar index on `accounts` in this repository was rejected" in members["body"]
    assert "write-heavy" in members["body"]

    # 4. `@db-architect ignore` on the accounts PR: closed, branch gone, never proposed again.
    comment_id = fake.add_comment(REPO, accounts["number"], "@db-architect ignore", user="carol")
    await send(
        client,
        "issue_comment",
        payloads.pull_comment(
            accounts, "@db-architect ignore", login="carol", comment_id=comment_id
        ),
    )
    await drain(settings, store_dsn)
    closed = pull_on(fake, "accounts")
    assert closed["state"] == "closed" and not closed["merged"]
    assert closed["head"]["ref"] not in fake.repo(REPO).refs  # the branch was deleted
    reply = fake.calls("POST", rf"/repos/{REPO}/issues/{accounts['number']}/comments")[-1]
    assert "will not propose this change" in reply.json["body"]
    assert store_rows(store_dsn, "SELECT kind, author FROM ignores") == [("fingerprint", "carol")]

    pulls_before = len(fake.calls("POST", rf"/repos/{REPO}/pulls"))
    await audit(fake, client, settings, store_dsn)
    assert len(fake.calls("POST", rf"/repos/{REPO}/pulls")) == pulls_before
    summary = fake.calls("PATCH", rf"/repos/{REPO}/check-runs/\d+")[-1].json["output"]
    assert "@db-architect ignore" in summary["summary"] + (summary.get("text") or "")
    (state,) = store_rows(
        store_dsn, "SELECT state FROM recommendations WHERE table_name = 'public.accounts'"
    )
    assert state == ("ignored",)


PLAIN = (
    "Looking up a member by email reads the whole table today. The new index lets "
    "PostgreSQL jump straight to the row, so the lookup gets much faster."
)


def claude_answers(request: httpx.Request) -> httpx.Response:
    """Explanations get prose, classifications get JSON (told apart by their token bound)."""
    if request_json(request)["max_tokens"] == 150:
        verdict = {"classification": "concern", "reason": "insert rate on a hot table"}
        return message_response(json.dumps(verdict))
    return message_response(PLAIN)


async def test_with_claude_pr_bodies_explain_and_reviews_are_classified_by_it(
    fake: FakeGitHub, settings: Settings, store_dsn: str, client: httpx.AsyncClient
) -> None:
    settings = settings.model_copy(update={"anthropic_api_key": SecretStr("sk-ant-e2e")})
    with respx.mock(using=HTTPX2, assert_all_called=False) as api:
        route = api.post(MESSAGES_URL).mock(side_effect=claude_answers)
        await audit(fake, client, settings, store_dsn)
        members = pull_on(fake, "members")
        assert "#### In plain words" in members["body"] and PLAIN in members["body"]
        explained = route.call_count
        assert explained == 2  # one per pull request

        review = payloads.pull_request_review(members, "commented", "We bulk-load this nightly.")
        await send(client, "pull_request_review", review)
        await drain(settings, store_dsn)
        await audit(fake, client, settings, store_dsn)

    assert route.call_count == explained + 1  # the classification; explanations are cached
    (row,) = store_rows(
        store_dsn,
        "SELECT classification, reason FROM feedback WHERE body LIKE 'We bulk-load%'",
    )
    assert row == ("concern", "insert rate on a hot table")
    sent = json.dumps([request_json(call.request) for call in route.calls])
    assert "@example.org" not in sent and "postgresql://" not in sent
