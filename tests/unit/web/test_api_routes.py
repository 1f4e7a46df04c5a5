"""The admin API's decisions in process: the guard, starting audits, errors (fake store, queue)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from litestar import Litestar
from litestar.datastructures import State
from litestar.testing import TestClient

from app.adapters.queue import audit_job_id
from app.flows.requests import AuditRequest
from app.settings import Settings
from app.web.api import QUEUE_DOWN, STORE_DOWN, api_router
from app.web.state import QueueUnavailable, WebState

TOKEN = "t0ken-for-the-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n"


@dataclass
class Repos:
    """The store's side: which repository is in which installation."""

    installed: dict[str, int] = field(default_factory=dict)
    down: bool = False

    async def installation_of(self, full_name: str) -> int | None:
        if self.down:
            raise psycopg.OperationalError("connection refused")
        return self.installed.get(full_name)

    async def record_deliveries(self, deliveries: list[object]) -> list[bool]:
        raise AssertionError("the admin API keeps no deliveries")


@dataclass
class Audits:
    """The queue's side: the audit jobs enqueued."""

    jobs: dict[str, AuditRequest] = field(default_factory=dict)
    down: bool = False

    async def enqueue_audit(self, request: AuditRequest) -> bool:
        if self.down:
            raise QueueUnavailable("cannot connect to Redis: ConnectionError")
        job_id = audit_job_id(request.full_name, request.trigger_key)
        created = job_id not in self.jobs
        self.jobs.setdefault(job_id, request)
        return created

    async def enqueue_many(self, deliveries: list[object]) -> list[bool]:
        raise AssertionError("the admin API enqueues no deliveries")


def _client(store: Repos, queue: Audits, **settings: Any) -> TestClient[Any]:
    web = WebState(settings=Settings(**settings), store=store, queue=queue)  # type: ignore[arg-type]
    app = Litestar([api_router], state=State({"web": web}), logging_config=None)
    return TestClient(app)


@pytest.fixture
def store() -> Repos:
    return Repos(installed={"acme/shop": 42})


@pytest.fixture
def queue() -> Audits:
    return Audits()


@pytest.fixture
def local(store: Repos, queue: Audits) -> Iterator[TestClient[Any]]:
    """No App credentials: everything is a dry run."""
    with _client(store, queue, admin_token=TOKEN) as client:
        yield client


@pytest.fixture
def installed(store: Repos, queue: Audits) -> Iterator[TestClient[Any]]:
    """With App credentials: only installed repositories."""
    with _client(
        store, queue, admin_token=TOKEN, github_app_id=7, github_private_key=PEM
    ) as client:
        yield client


def test_without_a_configured_token_the_api_is_off(store: Repos, queue: Audits) -> None:
    with _client(store, queue) as client:
        response = client.post("/api/audits", json={"repository": "acme/shop"}, headers=AUTH)

    assert response.status_code == 403
    assert "DBARCH_ADMIN_TOKEN" in response.json()["error"]
    assert queue.jobs == {}


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {TOKEN}"}]
)
def test_a_missing_or_wrong_token_is_401(
    local: TestClient[Any], queue: Audits, headers: dict[str, str]
) -> None:
    response = local.post("/api/audits", json={"repository": "acme/shop"}, headers=headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in response.json()["error"]
    assert queue.jobs == {}


def test_locally_any_repository_is_audited_as_installation_1(
    local: TestClient[Any], queue: Audits
) -> None:
    body = {"repository": "someone/else", "tables": ["orders", "orders"], "dry_run": True}

    response = local.post("/api/audits", json=body, headers=AUTH)

    assert response.status_code == 202
    answer = response.json()
    assert answer["status"] == "queued" and answer["installation_id"] == 1
    assert answer["trigger_key"].startswith("api:")
    request = queue.jobs[answer["job_id"]]
    assert answer["job_id"] == audit_job_id("someone/else", answer["trigger_key"])
    assert (request.owner, request.name, request.trigger) == ("someone", "else", "api")
    assert (request.requested_by, request.tables, request.dry_run) == (
        "admin-api",
        ("orders",),
        True,
    )
    assert request.min_confidence is None


def test_two_posts_are_two_audits(local: TestClient[Any], queue: Audits) -> None:
    for _ in range(2):
        assert local.post("/api/audits", json={"repository": "a/b"}, headers=AUTH).is_success

    assert len(queue.jobs) == 2


def test_with_credentials_the_installation_comes_from_the_store(
    installed: TestClient[Any], queue: Audits
) -> None:
    body = {"repository": "acme/shop", "min_confidence": 0.9}

    response = installed.post("/api/audits", json=body, headers=AUTH)

    assert response.status_code == 202 and response.json()["installation_id"] == 42
    [request] = queue.jobs.values()
    assert request.installation_id == 42 and request.min_confidence == 0.9


def test_with_credentials_an_uninstalled_repository_is_404(
    installed: TestClient[Any], queue: Audits
) -> None:
    response = installed.post("/api/audits", json={"repository": "acme/blog"}, headers=AUTH)

    assert response.status_code == 404
    assert "not installed on acme/blog" in response.json()["error"]
    assert queue.jobs == {}


def test_redis_down_is_503(local: TestClient[Any], queue: Audits) -> None:
    queue.down = True

    response = local.post("/api/audits", json={"repository": "acme/shop"}, headers=AUTH)

    assert (response.status_code, response.json()) == (503, {"error": QUEUE_DOWN, "field": None})


def test_store_down_is_503(installed: TestClient[Any], store: Repos, queue: Audits) -> None:
    store.down = True

    response = installed.post("/api/audits", json={"repository": "acme/shop"}, headers=AUTH)

    assert (response.status_code, response.json()["error"]) == (503, STORE_DOWN)
    assert queue.jobs == {}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "repository"),
        ({"repository": "acme"}, "repository"),
        ({"repository": "acme/shop", "min_confidence": 0.5}, "min_confidence"),
        ({"repository": "acme/shop", "min_confidence": 1.5}, "min_confidence"),
        ({"repository": "acme/shop", "dry_run": "yes"}, "dry_run"),
        ({"repository": "acme/shop", "tables": "orders"}, "tables"),
        ({"repository": "acme/shop", "tables": ["a.b.c"]}, "tables"),
        ({"repository": "acme/shop", "dryrun": True}, "dryrun"),
    ],
)
def test_a_bad_body_is_400_naming_the_field(
    local: TestClient[Any], queue: Audits, body: dict[str, Any], field: str
) -> None:
    response = local.post("/api/audits", json=body, headers=AUTH)

    assert response.status_code == 400
    answer = response.json()
    assert answer["field"] == field and f"`{field}" in answer["error"]
    assert queue.jobs == {}


def test_a_body_that_is_not_json_is_400(local: TestClient[Any]) -> None:
    response = local.post("/api/audits", content=b"repository=acme/shop", headers=AUTH)

    assert response.status_code == 400
    assert "JSON" in response.json()["error"]
