"""Shared set-up of the end-to-end GitHub App tests: a seeded target, a fake repo, the workers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis

from app.adapters.pgserver import PgServer
from app.settings import Settings
from tests import payloads
from tests.github_fake import FakeGitHub
from worker.main import build_workers, close_worker

ISSUE = 1
REPO = payloads.FULL_NAME
BASE_REVISION = '''"""the project's first migration"""
revision = "0001base"
down_revision = None
'''


def seed_target(
    pg: PgServer, name: str, seed: str, lookups: Sequence[tuple[str, Sequence[object]]]
) -> str:
    """A target database: ``seed`` (statements split on ``;\\n``), then a fresh
    pg_stat_statements holding ``lookups`` (query, parameters) as the workload."""
    dsn = pg.create_database(name, extensions=("pg_stat_statements", "hypopg"))
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in seed.split(";\n"):
            conn.execute(statement.encode())
        conn.execute("SELECT pg_stat_statements_reset()")
        for query, params in lookups:
            conn.execute(query.encode(), params)
    return dsn


def fake_repository(files: Mapping[str, str], permissions: Mapping[str, str]) -> FakeGitHub:
    """The fake GitHub with :data:`REPO` (``files`` on main), people's access, issue #1."""
    github = FakeGitHub()
    github.add_repo(REPO, installation_id=payloads.INSTALLATION_ID, files=dict(files))
    for login, permission in permissions.items():
        github.set_permission(REPO, login, permission)
    assert github.open_issue(REPO, "Checkout is slow", user="bob") == ISSUE
    return github


def app_settings(
    fake: FakeGitHub, secret: str, target: str, redis_url: str, data_dir: Path, **extra: Any
) -> Settings:
    """Settings of an App that talks to ``fake`` and audits ``target`` (validation allowed),
    on a Redis emptied of earlier tests' queues, job results, memos and locks."""
    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()
    return fake.settings(
        github_webhook_secret=secret,
        redis_url=redis_url,
        targets={"shop": {"dsn": target, "allow_target_validation": True}},
        data_dir=data_dir,
        audit_timeout_seconds=300,
        **extra,
    )


async def send(
    client: httpx.AsyncClient,
    secret: str,
    event: str,
    payload: dict[str, Any],
    delivery_id: str | None = None,
) -> tuple[str, httpx.Response]:
    """Sign and POST one delivery; its id and the receiver's answer."""
    body, headers = payloads.delivery(event, payload, secret, delivery_id=delivery_id)
    response = await client.post("/webhooks/github", content=body, headers=headers)
    return headers["X-GitHub-Delivery"], response


async def drain(settings: Settings, store_dsn: str, **ctx: Any) -> None:
    """Run both workers until their queues are empty (the events job enqueues the audit)."""
    events, audits = build_workers(
        settings, store_dsn=store_dsn, burst=True, handle_signals=False, poll_delay_s=0.05, ctx=ctx
    )
    try:
        await events.main()
        await audits.main()
    finally:
        await close_worker(events)
        await close_worker(audits)
