"""The webhook receiver over real HTTP: uvicorn, a real store (PostgreSQL 18), a real Redis."""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from arq import Worker
from arq.worker import func

from app.adapters.pgserver import EmbeddedPostgres, free_port
from app.adapters.queue import (
    DELIVERY_JOB,
    EVENTS_QUEUE,
    delivery_job_id,
    dumps,
    loads,
    redis_settings,
)
from app.adapters.redis_server import RedisServer
from app.adapters.store import open_store, upgrade_store
from app.settings import Settings
from app.web.webhooks import WEBHOOK_PATH
from tests.integration.webhook_app import (
    AppServer,
    inbox_row,
    queued_job,
    wait_for_job,
)
from tests.payloads import (
    check_suite,
    delivery,
    installation_event,
    issue_comment,
    ping,
    sign,
    star,
)

NEW_SECRET, OLD_SECRET = "new-secret", "old-secret"
RECOVERY_S = 0.3


def _settings(redis_url: str) -> Settings:
    return Settings(
        github_webhook_secret=f"{NEW_SECRET}, {OLD_SECRET}",
        github_app_slug="db-architect",
        redis_url=redis_url,
        inbox_recovery_seconds=RECOVERY_S,
    )


@pytest.fixture(scope="module")
def store_dsn(module_store: str) -> str:
    return module_store


@pytest.fixture(scope="module")
def app(store_dsn: str, redis_url: str) -> Iterator[AppServer]:
    with AppServer(_settings(redis_url), store_dsn) as server:
        yield server


@pytest.fixture
def client(app: AppServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=app.url, timeout=10) as http:
        yield http


def _post(client: httpx.Client, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return client.post(WEBHOOK_PATH, content=body, headers=headers)


def _nothing_kept(store_dsn: str, redis_url: str, delivery_id: str) -> bool:
    return inbox_row(store_dsn, delivery_id) is None and queued_job(redis_url, delivery_id) is None


def test_a_valid_delivery_is_kept_and_enqueued_once(
    client: httpx.Client, store_dsn: str, redis_url: str
) -> None:
    body, headers = delivery("issue_comment", issue_comment("/audit"), NEW_SECRET)
    delivery_id = headers["X-GitHub-Delivery"]

    first = _post(client, body, headers)

    assert first.status_code == 202
    assert first.json() == {"status": "accepted", "queued": True}
    row = inbox_row(store_dsn, delivery_id)
    assert row is not None
    assert (row["event"], row["action"], row["installation_id"]) == ("issue_comment", "created", 42)
    assert (row["repository"], row["sender"], row["sender_type"]) == ("acme/shop", "alice", "User")
    assert bytes(row["payload"]) == body
    assert row["done_at"] is None
    job = queued_job(redis_url, delivery_id)
    assert job is not None
    assert job["f"] == DELIVERY_JOB
    [argument] = job["a"]
    assert argument["delivery_id"] == delivery_id
    assert argument["payload"] == json.loads(body)

    again = _post(client, body, headers)

    assert again.status_code == 202
    # Unfinished, so queued again, which is a no-op while its job is still queued.
    assert again.json() == {"status": "duplicate", "requeued": True}
    assert queued_job(redis_url, delivery_id) == job  # the same job, not a second one


def test_the_old_secret_is_accepted_while_rotating(client: httpx.Client, redis_url: str) -> None:
    body, headers = delivery("issue_comment", issue_comment("/audit"), OLD_SECRET)

    response = _post(client, body, headers)

    assert response.status_code == 202
    assert response.json()["status"] == "accepted"
    assert queued_job(redis_url, headers["X-GitHub-Delivery"]) is not None


@pytest.mark.parametrize("signature", [None, "sha256=" + "0" * 64, "sha1=abc", "garbage"])
def test_an_unauthentic_delivery_is_refused_and_nothing_kept(
    client: httpx.Client, store_dsn: str, redis_url: str, signature: str | None
) -> None:
    body, headers = delivery("issue_comment", issue_comment("/audit"), NEW_SECRET)
    if signature is None:
        del headers["X-Hub-Signature-256"]
    else:
        headers["X-Hub-Signature-256"] = signature

    response = _post(client, body, headers)

    assert response.status_code == 401
    assert "X-Hub-Signature-256" in response.json()["error"]
    assert _nothing_kept(store_dsn, redis_url, headers["X-GitHub-Delivery"])


def test_a_body_signed_with_another_secret_is_refused(
    client: httpx.Client, store_dsn: str, redis_url: str
) -> None:
    body, headers = delivery("issue_comment", issue_comment("/audit"), "someone-else")

    response = _post(client, body, headers)

    assert response.status_code == 401
    assert "DBARCH_GITHUB_WEBHOOK_SECRET" in response.json()["error"]
    assert _nothing_kept(store_dsn, redis_url, headers["X-GitHub-Delivery"])


def test_a_body_over_25_mib_is_refused_with_413(client: httpx.Client) -> None:
    body = b'{"action": "created", "pad": "' + b"x" * (26 * 1024 * 1024) + b'"}'
    _, headers = delivery("issue_comment", {}, NEW_SECRET, checked=False)
    headers["X-Hub-Signature-256"] = sign(body, NEW_SECRET)

    response = _post(client, body, headers)

    assert response.status_code == 413
    assert "25 MiB" in response.json()["error"]


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"text"', b""])
def test_a_body_that_is_not_a_json_object_is_a_bad_request(
    client: httpx.Client, store_dsn: str, body: bytes
) -> None:
    _, headers = delivery("issue_comment", {}, NEW_SECRET, checked=False)
    headers["X-Hub-Signature-256"] = sign(body, NEW_SECRET)

    response = _post(client, body, headers)

    assert response.status_code == 400
    assert response.json()["error"]
    assert inbox_row(store_dsn, headers["X-GitHub-Delivery"]) is None


@pytest.mark.parametrize("header", ["X-GitHub-Event", "X-GitHub-Delivery"])
def test_a_delivery_without_event_or_id_is_a_bad_request(client: httpx.Client, header: str) -> None:
    body, headers = delivery("issue_comment", issue_comment("/audit"), NEW_SECRET)
    del headers[header]

    response = _post(client, body, headers)

    assert response.status_code == 400
    assert "X-GitHub-Delivery" in response.json()["error"]


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("star", star()),
        ("issue_comment", issue_comment("/audit") | {"action": "edited", "changes": {}}),
        ("check_suite", check_suite("requested")),
    ],
)
def test_events_without_a_job_are_acknowledged_and_dropped(
    client: httpx.Client, store_dsn: str, redis_url: str, event: str, payload: dict[str, object]
) -> None:
    body, headers = delivery(event, payload, NEW_SECRET)

    response = _post(client, body, headers)

    assert response.status_code == 202
    assert response.json() == {"status": "ignored"}
    assert _nothing_kept(store_dsn, redis_url, headers["X-GitHub-Delivery"])


def test_ping_is_answered(client: httpx.Client, store_dsn: str) -> None:
    body, headers = delivery("ping", ping("Keep it logically awesome."), NEW_SECRET)

    response = _post(client, body, headers)

    assert response.status_code == 200
    assert response.json() == {"status": "pong"}
    assert inbox_row(store_dsn, headers["X-GitHub-Delivery"]) is None


def test_our_own_bot_events_are_ignored(
    client: httpx.Client, store_dsn: str, redis_url: str
) -> None:
    payload = issue_comment("DB Architect found 2 indexes", login="db-architect[bot]", kind="Bot")
    body, headers = delivery("issue_comment", payload, NEW_SECRET)

    response = _post(client, body, headers)

    assert response.status_code == 202
    assert response.json() == {"status": "ignored", "reason": "our own event"}
    assert _nothing_kept(store_dsn, redis_url, headers["X-GitHub-Delivery"])


def test_an_installation_event_without_repository_is_kept(
    client: httpx.Client, store_dsn: str, redis_url: str
) -> None:
    body, headers = delivery("installation", installation_event("created"), NEW_SECRET)

    response = _post(client, body, headers)

    assert response.status_code == 202
    row = inbox_row(store_dsn, headers["X-GitHub-Delivery"])
    assert row is not None and row["repository"] is None and row["installation_id"] == 42
    assert queued_job(redis_url, headers["X-GitHub-Delivery"]) is not None


def test_health_and_openapi(client: httpx.Client) -> None:
    health = client.get("/healthz")
    schema = client.get("/schema/openapi.json")

    assert health.status_code == 200
    # No worker runs in these tests: deliveries are accepted, nothing works them off (what
    # earlier tests of the module left queued is theirs).
    queued = health.json()["queued"]
    assert health.json() == {
        "status": "degraded",
        "store": "ok",
        "redis": "ok",
        "workers": {"events": 0, "audits": 0},
        "queued": queued,
    }
    assert set(queued) == {"events", "audits"}
    assert all(isinstance(n, int) and n >= 0 for n in queued.values())
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/healthz" in paths
    assert WEBHOOK_PATH not in paths


async def test_an_arq_worker_runs_the_enqueued_delivery_job_once(
    app: AppServer, redis_url: str, store_dsn: str
) -> None:
    """The receiver enqueues with its own script: a real arq worker must take the job as its own."""
    seen: list[dict[str, object]] = []

    async def handle_delivery(ctx: dict[str, object], job: dict[str, object]) -> str:
        seen.append(job)
        async with await open_store(store_dsn) as store:  # as worker.jobs.delivery_job does
            await store.finish_delivery(str(job["delivery_id"]), "handled")
        return "handled"

    body, headers = delivery("issue_comment", issue_comment("/audit"), NEW_SECRET)
    async with httpx.AsyncClient(base_url=app.url, timeout=10) as client:
        first = await client.post(WEBHOOK_PATH, content=body, headers=headers)
        worker = Worker(
            functions=[func(handle_delivery, name=DELIVERY_JOB)],
            queue_name=EVENTS_QUEUE,
            redis_settings=redis_settings(redis_url),
            job_serializer=dumps,
            job_deserializer=loads,
            burst=True,
            poll_delay=0.01,
            handle_signals=False,
            keep_result=60,
        )
        try:
            await worker.main()
        finally:
            with warnings.catch_warnings():  # arq 0.28 calls redis' deprecated close()
                warnings.simplefilter("ignore", DeprecationWarning)
                await worker.close()
        again = await client.post(WEBHOOK_PATH, content=body, headers=headers)

    assert first.json() == {"status": "accepted", "queued": True}
    [job] = [j for j in seen if j["delivery_id"] == headers["X-GitHub-Delivery"]]
    assert job["payload"] == json.loads(body)
    assert job["sender"] == "alice"
    assert again.json() == {"status": "duplicate", "requeued": False}
    assert queued_job(redis_url, headers["X-GitHub-Delivery"]) is None  # done, not queued again


def test_a_redelivery_of_an_unfinished_delivery_queues_it_again(
    client: httpx.Client, store_dsn: str, redis_url: str
) -> None:
    body, headers = delivery("issue_comment", issue_comment("/audit"), NEW_SECRET)
    delivery_id = headers["X-GitHub-Delivery"]
    assert _post(client, body, headers).status_code == 202
    with redis.Redis.from_url(redis_url) as client_redis:  # its job failed for good and is gone
        client_redis.delete(f"arq:job:{delivery_job_id(delivery_id)}")
        client_redis.zrem(EVENTS_QUEUE, delivery_job_id(delivery_id))
    assert queued_job(redis_url, delivery_id) is None

    again = _post(client, body, headers)

    assert again.json() == {"status": "duplicate", "requeued": True}
    assert queued_job(redis_url, delivery_id) is not None


def test_redis_down_the_delivery_is_kept_and_enqueued_when_redis_is_back(
    fresh_db18: str, server_dir: Path
) -> None:
    upgrade_store(fresh_db18)
    redis_server = RedisServer(server_dir).start()
    try:
        with (
            AppServer(_settings(redis_server.url), fresh_db18) as app,
            httpx.Client(base_url=app.url, timeout=10) as client,
        ):
            redis_server.stop()
            body, headers = delivery("issue_comment", issue_comment("/audit"), NEW_SECRET)
            delivery_id = headers["X-GitHub-Delivery"]

            response = _post(client, body, headers)

            assert response.status_code == 202
            assert response.json() == {"status": "accepted", "queued": False}
            assert client.get("/healthz").json()["redis"] == "down"
            assert inbox_row(fresh_db18, delivery_id) is not None

            redis_server.start()
            job = wait_for_job(redis_server.url, delivery_id)

            assert job["a"][0]["delivery_id"] == delivery_id
            row = inbox_row(fresh_db18, delivery_id)
            assert row is not None and row["attempts"] >= 1
            assert client.get("/healthz").json()["redis"] == "ok"
    finally:
        redis_server.stop()


def _store_server(server_dir: Path) -> EmbeddedPostgres:
    """A store server of our own (to stop it), on a fixed port (to restart it)."""
    return EmbeddedPostgres(server_dir / "store", fast=True, preload=(), port=free_port())


def test_store_down_still_queues_and_both_down_is_503(server_dir: Path) -> None:
    redis_server = RedisServer(server_dir).start()
    store_server = _store_server(server_dir)
    try:
        store_server.start()
        dsn = store_server.create_database("store")
        upgrade_store(dsn)
        with (
            AppServer(_settings(redis_server.url), dsn) as app,
            httpx.Client(base_url=app.url, timeout=10) as client,
        ):
            store_server.stop()
            body, headers = delivery("issue_comment", issue_comment("/audit"), NEW_SECRET)

            store_down = _post(client, body, headers)

            assert store_down.status_code == 202
            assert store_down.json() == {"status": "accepted", "queued": True, "stored": False}
            assert queued_job(redis_server.url, headers["X-GitHub-Delivery"]) is not None
            health = client.get("/healthz").json()
            assert (health["status"], health["store"], health["redis"]) == (
                "degraded",
                "down",
                "ok",
            )

            redis_server.stop()
            body, headers = delivery("issue_comment", issue_comment("/audit"), NEW_SECRET)

            both_down = _post(client, body, headers)

            assert both_down.status_code == 503
            assert "redeliver" in both_down.json()["error"]
            health = client.get("/healthz")
            assert health.status_code == 503
            assert health.json()["status"] == "down"
    finally:
        redis_server.stop()
        store_server.stop()


def test_a_restarted_store_is_used_again_without_restarting_the_web(server_dir: Path) -> None:
    redis_server = RedisServer(server_dir).start()
    store_server = _store_server(server_dir)
    try:
        store_server.start()
        dsn = store_server.create_database("store")
        upgrade_store(dsn)
        with (
            AppServer(_settings(redis_server.url), dsn) as app,
            httpx.Client(base_url=app.url, timeout=10) as client,
        ):
            store_server.stop()
            store_server.start()

            stored_id = _first_stored_delivery(client)

            assert stored_id is not None, "the store pool never reconnected"
            assert inbox_row(dsn, stored_id) is not None
    finally:
        redis_server.stop()
        store_server.stop()


def _first_stored_delivery(client: httpx.Client, attempts: int = 50) -> str | None:
    """Send fresh deliveries until one is kept in the inbox again; its id (None if none was)."""
    for _ in range(attempts):
        body, headers = delivery("issue_comment", issue_comment("/audit"), NEW_SECRET)
        response = _post(client, body, headers)
        assert response.status_code == 202  # kept or queued, never lost meanwhile
        if response.json() == {"status": "accepted", "queued": True}:
            return headers["X-GitHub-Delivery"]
        time.sleep(0.1)
    return None
