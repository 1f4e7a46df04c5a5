"""The admin API over real HTTP: the app under uvicorn, the store on PostgreSQL 18, real Redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
from arq.constants import job_key_prefix
from arq.jobs import Job, JobStatus

from app.adapters.memory import FeedbackRow, LedgerEntry, Memory
from app.adapters.pgserver import EmbeddedPostgres, free_port
from app.adapters.queue import AUDIT_JOB, AUDITS_QUEUE, loads, open_pool
from app.adapters.redis_server import RedisServer
from app.adapters.store import Store, open_store, upgrade_store
from app.flows.requests import AuditRequest
from app.settings import Settings
from app.web.api import QUEUE_DOWN, STORE_DOWN
from tests.integration.webhook_app import AppServer

TOKEN = "admin-api-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n"
SHOP, BLOG = "acme/shop", "acme/blog"
API_PATHS = ("/api/audits", "/api/audits/{audit_id}", "/api/recommendations", "/api/feedback")


def side(ms: float, cost: float) -> dict[str, Any]:
    return {"cost": cost, "ms_p50": ms, "ms_p95": ms * 1.3, "buffers": 120}


def recommendation(n: int) -> dict[str, Any]:
    """A recommendation as ``app.engine.render.to_json`` writes it."""
    return {
        "id": f"create_index:{n:08x}",
        "action": "create_index",
        "rule": "missing_index",
        "table": "public.orders",
        "columns": ["customer_id", "created_at"],
        "include": [],
        "where": None,
        "using": "btree",
        "index_name": f"orders_customer_id_created_at_idx{n}",
        "ddl": "CREATE INDEX CONCURRENTLY …",
        "size_bytes": 65536,
        "confidence": 0.9,
        "confidence_breakdown": {"measured_speedup": 0.55, "reviewer_memory": -0.01},
        "reviewer_memory": ["- @carol on #3: write load on orders (concern)"],
        "eligible": True,
        "validation": {
            "where": "sandbox",
            "skipped": None,
            "change_ms": 84.2,
            "index_bytes": 65536,
            "used_by_plans": True,
        },
        "queries": [
            {
                "query": "SELECT * FROM orders WHERE customer_id = $1 ORDER BY created_at DESC",
                "calls": 5000,
                "write": False,
                "before": side(18.5, 2100.0),
                "after": side(0.4, 12.0),
                "parameter_sets": ["common", "rare"],
                "notes": [],
            },
            {
                "query": "INSERT INTO orders (customer_id, created_at) VALUES ($1, $2)",
                "calls": 800,
                "write": True,
                "before": side(0.2, 1.0),
                "after": side(0.22, 1.0),
                "parameter_sets": ["common"],
                "notes": [],
            },
        ],
        "reasons": ["serves 1 statement, 5000 calls"],
    }


def report(recs: int) -> dict[str, Any]:
    return {
        "version": 1,
        "target": {"server_version": "18.1", "database": "shop", "hypopg": False},
        "workload": {"statements": 14, "analyzed": 12, "skipped": 2},
        "recommendations": [recommendation(n) for n in range(recs)],
        "rejected": [{"candidate": "public.orders (status)", "reason": "covered by an index"}],
        "skipped_queries": [],
    }


async def _seed(dsn: str) -> dict[str, Any]:
    async with await open_store(dsn, max_size=2) as store:
        await store.add_repositories(42, [(1001, SHOP), (1002, "acme/gone")])
        await store.remove_repositories(42, [1002])
        audits: list[int] = []
        for n in range(7):
            repository = SHOP if n % 2 == 0 else BLOG
            audit_id = await store.start_audit(repository, 42, "comment", "alice", dry_run=False)
            results = {"create_index:00000000": "opened #12", "create_index:00000001": "held back"}
            summary = {"title": f"audit {n}", "conclusion": "neutral", "results": results}
            await store.finish_audit(audit_id, "done", summary | {"outcome": "done"}, report(2))
            audits.append(audit_id)
        audits.append(await store.start_audit(SHOP, 42, "api", "admin-api", dry_run=True))
        await _ledger(store)
    return {"audits": audits[::-1]}  # newest first


async def _ledger(store: Store) -> None:
    memory = Memory(store)
    for n, state in enumerate(("proposed", "pr_open", "merged", "pr_open", "ignored")):
        await memory.upsert_recommendation(LedgerEntry(
            SHOP if n < 4 else BLOG, f"fp{n}", f"create_index:fp{n}", "create_index",
            "public.orders", state, 0.8 + n / 100, {"measured_speedup": 0.5}, 10 + n,
        ))  # fmt: skip
    await memory.add_feedback(
        [
            FeedbackRow(SHOP, "review", fingerprint="fp1", author="carol", body="w" * 800,
                        classification="concern", reason="write load on orders"),
            FeedbackRow(SHOP, "merge", fingerprint="fp2", classification="accept",
                        reason="merged"),
            FeedbackRow(BLOG, "close", fingerprint="fp4", classification="reject",
                        reason="closed without merging"),
        ]
    )  # fmt: skip
    await memory.add_ignore(SHOP, "table", "public.audit_log", "carol")


def _settings(redis_url: str, **overrides: Any) -> Settings:
    return Settings(admin_token=TOKEN, redis_url=redis_url, **overrides)


@pytest.fixture(scope="module")
def store_dsn(module_store: str) -> str:
    return module_store


@pytest.fixture(scope="module")
def seeded(store_dsn: str) -> dict[str, Any]:
    return asyncio.run(_seed(store_dsn))


@pytest.fixture(scope="module")
def app(store_dsn: str, redis_url: str, seeded: dict[str, Any]) -> Iterator[AppServer]:
    with AppServer(_settings(redis_url), store_dsn) as server:
        yield server


@pytest.fixture
def client(app: AppServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=app.url, headers=AUTH, timeout=10) as http:
        yield http


@pytest.fixture
async def arq_pool(redis_url: str) -> AsyncIterator[Any]:
    pool = await open_pool(redis_url)
    try:
        yield pool
    finally:
        await pool.aclose()


def _walk(client: httpx.Client, path: str, key: str, **params: Any) -> list[list[int]]:
    """Every page's ids, following ``next_before`` to the end."""
    pages: list[list[int]] = []
    before = None
    while True:
        query = params | ({"before": before} if before else {})
        response = client.get(path, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append([item["id"] for item in body[key]])
        before = body["next_before"]
        if before is None:
            return pages
        assert before == pages[-1][-1]


def _forget_job(job_id: str, redis_url: str) -> None:
    with redis.Redis.from_url(redis_url) as client:
        client.delete(job_key_prefix + job_id)
        client.zrem(AUDITS_QUEUE, job_id)


# ---------------------------------------------------------------------- the guard


def test_without_a_configured_token_the_api_is_off(store_dsn: str, redis_url: str) -> None:
    with (
        AppServer(Settings(redis_url=redis_url), store_dsn) as server,
        httpx.Client(base_url=server.url, headers=AUTH, timeout=10) as http,
    ):
        response = http.get("/api/audits")

    assert response.status_code == 403
    assert "DBARCH_ADMIN_TOKEN" in response.json()["error"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-the-token"}])
def test_a_missing_or_wrong_token_is_401(app: AppServer, headers: dict[str, str]) -> None:
    response = httpx.get(f"{app.url}/api/audits/1", headers=headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert set(response.json()) == {"error", "field"}


# ---------------------------------------------------------------------- reading


def test_audits_page_by_page_newest_first(client: httpx.Client, seeded: dict[str, Any]) -> None:
    pages = _walk(client, "/api/audits", "audits", limit=3)

    assert [len(p) for p in pages] == [3, 3, 2]
    assert [i for p in pages for i in p] == seeded["audits"]
    first = client.get("/api/audits", params={"limit": 2}).json()["audits"]
    running, done = first
    assert (running["status"], running["duration_s"], running["finished_at"]) == (
        "running",
        None,
        None,
    )
    assert running["trigger"] == "api" and running["dry_run"] is True
    assert done["status"] == "done" and done["recommendations"] == 2
    assert done["title"] == "audit 6" and done["conclusion"] == "neutral"
    started = datetime.fromisoformat(done["started_at"])
    assert started.tzinfo is not None
    assert datetime.fromisoformat(done["finished_at"]) >= started
    assert done["duration_s"] >= 0


def test_audits_of_one_repository(client: httpx.Client, seeded: dict[str, Any]) -> None:
    pages = _walk(client, "/api/audits", "audits", limit=2, repository=BLOG)

    ids = [i for p in pages for i in p]
    assert len(ids) == 3 and ids == sorted(ids, reverse=True)
    audits = client.get("/api/audits", params={"repository": BLOG}).json()["audits"]
    assert {a["repository"] for a in audits} == {BLOG}
    assert client.get("/api/audits", params={"repository": "acme/none"}).json() == {
        "audits": [],
        "next_before": None,
    }


def test_one_audit_with_its_recommendations_and_evidence(
    client: httpx.Client, seeded: dict[str, Any]
) -> None:
    audit_id = seeded["audits"][1]

    response = client.get(f"/api/audits/{audit_id}")

    assert response.status_code == 200
    body = response.json()
    assert body["audit"]["id"] == audit_id and body["audit"]["title"] == "audit 6"
    assert body["summary"]["outcome"] == "done"
    assert body["summary"]["results"]["create_index:00000000"] == "opened #12"
    first, second = body["recommendations"]
    assert (first["result"], second["result"]) == ("opened #12", "held back")
    assert first["columns"] == ["customer_id", "created_at"] and first["confidence"] == 0.9
    assert first["breakdown"] == {"measured_speedup": 0.55, "reviewer_memory": -0.01}
    assert first["reviewer_memory"] == ["- @carol on #3: write load on orders (concern)"]
    assert first["validation"]["where"] == "sandbox"
    read, write = first["queries"]
    assert (read["before"]["ms_p50"], read["after"]["ms_p50"]) == (18.5, 0.4)
    assert write["write"] is True
    assert body["rejected"] == [
        {"candidate": "public.orders (status)", "reason": "covered by an index"}
    ]
    assert body["workload"]["analyzed"] == 12


def test_a_running_audit_has_no_recommendations_yet(
    client: httpx.Client, seeded: dict[str, Any]
) -> None:
    body = client.get(f"/api/audits/{seeded['audits'][0]}").json()

    assert body["audit"]["status"] == "running"
    assert body["recommendations"] == [] and body["summary"]["results"] == {}


def test_an_unknown_audit_is_404(client: httpx.Client, seeded: dict[str, Any]) -> None:
    response = client.get(f"/api/audits/{max(seeded['audits']) + 1000}")

    assert response.status_code == 404
    assert "GET /api/audits" in response.json()["error"]


def test_the_ledger_by_state_and_page(client: httpx.Client, seeded: dict[str, Any]) -> None:
    everything = client.get("/api/recommendations").json()["recommendations"]
    assert [r["fingerprint"] for r in everything] == ["fp4", "fp3", "fp2", "fp1", "fp0"]
    assert everything[0]["table_name"] == "public.orders"
    assert everything[0]["breakdown"] == {"measured_speedup": 0.5}

    pages = _walk(client, "/api/recommendations", "recommendations", limit=1, state="pr_open")

    assert len(pages) == 2 and all(len(p) == 1 for p in pages)
    blog = client.get("/api/recommendations", params={"repository": BLOG}).json()
    assert [r["state"] for r in blog["recommendations"]] == ["ignored"]


def test_feedback_newest_first(client: httpx.Client, seeded: dict[str, Any]) -> None:
    said = client.get("/api/feedback", params={"repository": SHOP}).json()["feedback"]

    assert [f["classification"] for f in said] == ["accept", "concern"]
    assert len(said[1]["body"]) == 500 and said[1]["author"] == "carol"
    assert [len(p) for p in _walk(client, "/api/feedback", "feedback", limit=2)] == [2, 1]


def test_memory_by_verdict_and_the_ignores(client: httpx.Client, seeded: dict[str, Any]) -> None:
    memory = client.get("/api/memory").json()

    learned = {item["classification"]: item for item in memory["learned"]}
    assert set(learned) == {"accept", "concern", "reject"}
    assert learned["concern"]["recent_reasons"] == ["write load on orders"]
    [ignore] = memory["ignores"]
    assert (ignore["kind"], ignore["value"]) == ("table", "public.audit_log")
    blog = client.get("/api/memory", params={"repository": BLOG}).json()
    assert [i["classification"] for i in blog["learned"]] == ["reject"] and blog["ignores"] == []


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/audits?limit=0", "limit"),
        ("/api/audits?limit=201", "limit"),
        ("/api/audits?limit=many", "limit"),
        ("/api/audits?before=0", "before"),
        ("/api/feedback?repository=not-a-repo", "repository"),
        ("/api/recommendations?state=open", "state"),
    ],
)
def test_a_bad_query_value_is_400_naming_it(client: httpx.Client, path: str, field: str) -> None:
    response = client.get(path)

    assert response.status_code == 400
    assert response.json()["field"] == field and field in response.json()["error"]


# ---------------------------------------------------------------------- starting audits


async def test_starting_an_audit_queues_an_arq_job(
    app: AppServer, redis_url: str, arq_pool: Any
) -> None:
    body = {"repository": "acme/api-test", "tables": ["orders"], "min_confidence": 0.9}
    async with httpx.AsyncClient(base_url=app.url, headers=AUTH, timeout=10) as http:
        response = await http.post("/api/audits", json=body)

    assert response.status_code == 202, response.text
    answer = response.json()
    job_id = answer["job_id"]
    try:
        job = Job(job_id, arq_pool, _queue_name=AUDITS_QUEUE, _deserializer=loads)
        assert await job.status() == JobStatus.queued
        info = await job.info()
        assert info is not None and info.function == AUDIT_JOB
        request = AuditRequest.from_job(info.args[0])
        assert request == AuditRequest(
            installation_id=1,
            owner="acme",
            name="api-test",
            trigger="api",
            trigger_key=answer["trigger_key"],
            requested_by="admin-api",
            tables=("orders",),
            min_confidence=0.9,
        )
        raw = await arq_pool.get(job_key_prefix + job_id)
        assert json.loads(raw)["f"] == AUDIT_JOB  # JSON, never pickle
    finally:
        _forget_job(job_id, redis_url)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tables": ["orders"]}, "repository"),
        ({"repository": "acme/shop", "min_confidence": 0.7}, "min_confidence"),
        ({"repository": "acme/shop", "tables": ["a.b.c"]}, "tables"),
        ({"repository": "acme/shop", "dry_run": "no"}, "dry_run"),
    ],
)
def test_a_bad_body_is_400_and_queues_nothing(
    client: httpx.Client, redis_url: str, body: dict[str, Any], field: str
) -> None:
    with redis.Redis.from_url(redis_url) as r:
        queued_before = r.zcard(AUDITS_QUEUE)

        response = client.post("/api/audits", json=body)

        assert response.status_code == 400
        assert response.json()["field"] == field
        assert r.zcard(AUDITS_QUEUE) == queued_before


def test_with_app_credentials_only_installed_repositories(
    store_dsn: str, redis_url: str, seeded: dict[str, Any]
) -> None:
    settings = _settings(redis_url, github_app_id=7, github_private_key=PEM)
    with (
        AppServer(settings, store_dsn) as server,
        httpx.Client(base_url=server.url, headers=AUTH, timeout=10) as http,
    ):
        installed = http.post("/api/audits", json={"repository": SHOP})
        removed = http.post("/api/audits", json={"repository": "acme/gone"})
        unknown = http.post("/api/audits", json={"repository": "acme/unknown"})

    assert installed.status_code == 202
    _forget_job(installed.json()["job_id"], redis_url)
    assert installed.json()["installation_id"] == 42
    for response, name in ((removed, "acme/gone"), (unknown, "acme/unknown")):
        assert response.status_code == 404
        assert f"not installed on {name}" in response.json()["error"]


# ---------------------------------------------------------------------- services down


def test_redis_down_then_store_down_is_503(server_dir: Path) -> None:
    redis_server = RedisServer(server_dir).start()
    store_server = EmbeddedPostgres(server_dir / "store", fast=True, preload=(), port=free_port())
    try:
        store_server.start()
        dsn = store_server.create_database("store", extensions=("vector",))
        upgrade_store(dsn)
        with (
            AppServer(_settings(redis_server.url), dsn) as server,
            httpx.Client(base_url=server.url, headers=AUTH, timeout=10) as http,
        ):
            redis_server.stop()

            queue_down = http.post("/api/audits", json={"repository": SHOP})

            assert (queue_down.status_code, queue_down.json()["error"]) == (503, QUEUE_DOWN)
            assert http.get("/api/audits").status_code == 200

            store_server.stop()

            for path in ("/api/audits", "/api/audits/1", "/api/memory"):
                response = http.get(path)
                assert (response.status_code, response.json()["error"]) == (503, STORE_DOWN)
    finally:
        redis_server.stop()
        store_server.stop()


# ---------------------------------------------------------------------- OpenAPI


def test_openapi_documents_the_api_and_its_bearer_scheme(app: AppServer) -> None:
    response = httpx.get(f"{app.url}/schema/openapi.json")  # public: no token needed

    assert response.status_code == 200
    schema = response.json()
    assert schema["components"]["securitySchemes"]["bearer"] | {"description": ""} == {
        "type": "http",
        "scheme": "bearer",
        "description": "",
    }
    for path in (*API_PATHS, "/api/memory"):
        operations = schema["paths"][path]
        for operation in operations.values():
            assert operation["security"] == [{"bearer": []}], path
            assert "admin" in operation["tags"]
            assert {"401", "403", "503"} <= set(operation["responses"]), path
    assert set(schema["paths"]["/api/audits"]) == {"get", "post"}
    post = schema["paths"]["/api/audits"]["post"]
    assert "202" in post["responses"] and "400" in post["responses"]
    assert "AuditView" in schema["components"]["schemas"]


def test_store_rows_match_the_page(client: httpx.Client, store_dsn: str) -> None:
    with psycopg.connect(store_dsn) as conn:
        rows = conn.execute("SELECT id FROM audits ORDER BY id DESC LIMIT 5").fetchall()

    page = client.get("/api/audits", params={"limit": 5}).json()["audits"]
    assert [a["id"] for a in page] == [r[0] for r in rows]
