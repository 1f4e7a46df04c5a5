"""The webhook route's decisions, in process (Litestar's test client; fake store and queue)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.datastructures import State
from litestar.testing import TestClient

from app.settings import Settings
from app.web.health import healthz
from app.web.state import WebState
from app.web.webhooks import WEBHOOK_PATH, github_webhook
from tests.payloads import delivery, issue_comment, ping, star
from tests.unit.web.fakes import FakeQueue, FakeStore

SECRET = "s3cret"


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def queue() -> FakeQueue:
    return FakeQueue()


def _client(store: FakeStore, queue: FakeQueue, secret: str | None = SECRET) -> TestClient[Any]:
    settings = Settings(github_webhook_secret=secret, github_app_slug="db-architect")
    web = WebState(settings=settings, store=store, queue=queue)  # type: ignore[arg-type]
    app = Litestar([github_webhook, healthz], state=State({"web": web}), logging_config=None)
    return TestClient(app)


@pytest.fixture
def client(store: FakeStore, queue: FakeQueue) -> Iterator[TestClient[Any]]:
    with _client(store, queue) as test_client:
        yield test_client


def _send(client: TestClient[Any], event: str = "issue_comment", **payload: Any) -> Any:
    body, headers = delivery(event, payload or issue_comment("/audit"), SECRET)
    response = client.post(WEBHOOK_PATH, content=body, headers=headers)
    return response, headers["X-GitHub-Delivery"]


def test_accepted_deliveries_are_stored_then_enqueued(
    client: TestClient[Any], store: FakeStore, queue: FakeQueue
) -> None:
    response, delivery_id = _send(client)

    assert (response.status_code, response.json()) == (202, {"status": "accepted", "queued": True})
    assert delivery_id in store.deliveries
    assert queue.jobs[delivery_id]["repository"] == "acme/shop"


def test_a_duplicate_of_a_finished_delivery_is_not_enqueued_again(
    client: TestClient[Any], store: FakeStore, queue: FakeQueue
) -> None:
    body, headers = delivery("issue_comment", issue_comment("/audit"), SECRET)
    client.post(WEBHOOK_PATH, content=body, headers=headers)
    store.finished.add(headers["X-GitHub-Delivery"])
    queue.jobs.clear()

    response = client.post(WEBHOOK_PATH, content=body, headers=headers)

    assert response.status_code == 202
    assert response.json() == {"status": "duplicate", "requeued": False}
    assert queue.jobs == {}


def test_a_duplicate_of_an_unfinished_delivery_is_queued_again(
    client: TestClient[Any], store: FakeStore, queue: FakeQueue
) -> None:
    body, headers = delivery("issue_comment", issue_comment("/audit"), SECRET)
    client.post(WEBHOOK_PATH, content=body, headers=headers)
    queue.jobs.clear()  # its job failed for good

    response = client.post(WEBHOOK_PATH, content=body, headers=headers)

    assert response.json() == {"status": "duplicate", "requeued": True}
    assert list(queue.jobs) == [headers["X-GitHub-Delivery"]]


def test_redis_down_answers_202_from_the_inbox(
    client: TestClient[Any], store: FakeStore, queue: FakeQueue
) -> None:
    queue.down = True

    response, delivery_id = _send(client)

    assert (response.status_code, response.json()) == (
        202,
        {"status": "accepted", "queued": False},
    )
    assert delivery_id in store.deliveries


def test_store_down_enqueues_anyway(
    client: TestClient[Any], store: FakeStore, queue: FakeQueue
) -> None:
    store.down = True

    response, delivery_id = _send(client)

    assert response.status_code == 202
    assert response.json() == {"status": "accepted", "queued": True, "stored": False}
    assert delivery_id in queue.jobs


def test_both_down_is_503_so_github_records_a_failure(
    client: TestClient[Any], store: FakeStore, queue: FakeQueue
) -> None:
    store.down = queue.down = True

    response, _ = _send(client)

    assert response.status_code == 503
    assert "not kept" in response.json()["error"]


def test_refused_and_ignored_deliveries_touch_neither_store_nor_queue(
    client: TestClient[Any], store: FakeStore, queue: FakeQueue
) -> None:
    body, headers = delivery("issue_comment", issue_comment("/audit"), "wrong")
    answers = [client.post(WEBHOOK_PATH, content=body, headers=headers).status_code]
    answers.append(_send(client, "star", **star())[0].status_code)
    answers.append(_send(client, "ping", **ping())[0].status_code)
    bot = issue_comment("done", login="db-architect[bot]", kind="Bot")
    answers.append(_send(client, **bot)[0].status_code)

    assert answers == [401, 202, 200, 202]
    assert store.calls == 0
    assert queue.jobs == {}


def test_no_secret_configured_refuses_everything(store: FakeStore, queue: FakeQueue) -> None:
    body, headers = delivery("issue_comment", issue_comment("/audit"), "")
    with _client(store, queue, secret=None) as client:
        response = client.post(WEBHOOK_PATH, content=body, headers=headers)

    assert response.status_code == 401
    assert "DBARCH_GITHUB_WEBHOOK_SECRET is unset" in response.json()["error"]
    assert store.calls == 0


@pytest.mark.parametrize("delivery_id", ["", "../../etc", "a b", "x" * 200, "-leading-dash"])
def test_a_delivery_id_that_is_no_guid_is_refused(
    client: TestClient[Any], store: FakeStore, delivery_id: str
) -> None:
    body, headers = delivery("issue_comment", issue_comment("/audit"), SECRET)
    headers["X-GitHub-Delivery"] = delivery_id

    response = client.post(WEBHOOK_PATH, content=body, headers=headers)

    assert response.status_code == 400
    assert store.calls == 0


_LIVE = {"workers": {"events": 1, "audits": 1}, "queued": {"events": 0, "audits": 0}}
_UNSEEN: dict[str, object] = {"workers": None, "queued": None}


@pytest.mark.parametrize(
    ("store_down", "redis_down", "status", "expected"),
    [
        (False, False, 200, {"status": "ok", "store": "ok", "redis": "ok"} | _LIVE),
        (True, False, 200, {"status": "degraded", "store": "down", "redis": "ok"} | _LIVE),
        (False, True, 200, {"status": "degraded", "store": "ok", "redis": "down"} | _UNSEEN),
        (True, True, 503, {"status": "down", "store": "down", "redis": "down"} | _UNSEEN),
    ],
)
def test_health(
    client: TestClient[Any],
    store: FakeStore,
    queue: FakeQueue,
    store_down: bool,
    redis_down: bool,
    status: int,
    expected: dict[str, str],
) -> None:
    store.down, queue.down = store_down, redis_down

    response = client.get("/healthz")

    assert (response.status_code, json.loads(response.content)) == (status, expected)


@pytest.mark.parametrize("silent", ["events", "audits"])
def test_health_is_degraded_while_a_queue_has_no_live_worker(
    client: TestClient[Any], queue: FakeQueue, silent: str
) -> None:
    queue.workers[silent] = 0

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["workers"][silent] == 0
