"""``GET /metrics`` of the running app: its own counters, and what workers publish in Redis."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import redis
from arq import Retry, Worker
from arq.connections import ArqRedis
from arq.worker import func
from githubkit.cache import MemCacheStrategy
from prometheus_client.parser import text_string_to_metric_families

from app.adapters.github.client import api, installation_client
from app.adapters.metrics_sink import JobFacts, MetricsSink
from app.adapters.pgserver import free_port
from app.adapters.queue import AUDIT_JOB, AUDITS_QUEUE, dumps, loads, open_pool, redis_settings
from app.settings import Settings
from app.web.metrics import METRICS_PATH
from app.web.webhooks import WEBHOOK_PATH
from tests.github_fake import FakeGitHub
from tests.integration.webhook_app import AppServer
from tests.payloads import delivery, issue_comment
from worker.main import close_worker
from worker.metrics import WOULD_OPEN, instrumented

SECRET, TOKEN = "hook-secret", "scrape-t0ken-0123456"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: A Redis database of its own, emptied before each test, so values are exact.
METRICS_DB = 7
REPO = "octo/shop"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def metrics_redis(redis_url: str) -> str:
    return f"{redis_url.rsplit('/', 1)[0]}/{METRICS_DB}"


@pytest.fixture(autouse=True)
def empty_redis(metrics_redis: str) -> None:
    with redis.Redis.from_url(metrics_redis) as client:
        client.flushdb()


@pytest.fixture(scope="module")
def store_dsn(module_store: str) -> str:
    return module_store


@pytest.fixture(scope="module")
def app(store_dsn: str, metrics_redis: str) -> Iterator[AppServer]:
    settings = Settings(
        github_webhook_secret=SECRET,
        redis_url=metrics_redis,
        metrics_token=TOKEN,
        inbox_recovery_seconds=60,
    )
    with AppServer(settings, store_dsn) as server:
        yield server


@pytest.fixture
def client(app: AppServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=app.url, timeout=10) as http:
        yield http


@pytest.fixture
async def pool(metrics_redis: str) -> AsyncIterator[ArqRedis]:
    pool = await open_pool(metrics_redis)
    yield pool
    await pool.aclose()


def _scrape(client: httpx.Client) -> Samples:
    response = client.get(METRICS_PATH, headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    found: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _send(client: httpx.Client, secret: str = SECRET, **kw: Any) -> httpx.Response:
    body, headers = delivery("issue_comment", issue_comment("/audit"), secret, **kw)
    return client.post(WEBHOOK_PATH, content=body, headers=headers)


def _delta(after: Samples, before: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_deliveries_and_signature_failures_are_counted(client: httpx.Client) -> None:
    before = _scrape(client)

    first = _send(client, delivery_id="metrics-delivery-1")
    again = _send(client, delivery_id="metrics-delivery-1")
    forged = _send(client, secret="not-the-secret")
    assert (first.status_code, first.json()["status"]) == (202, "accepted")
    assert (again.status_code, again.json()["status"]) == (202, "duplicate")
    assert forged.status_code == 401

    after = _scrape(client)
    deliveries = "dbarch_webhook_deliveries_total"
    comment = {"event": "issue_comment"}
    assert _delta(after, before, deliveries, **comment, outcome="accepted") == 1
    assert _delta(after, before, deliveries, **comment, outcome="duplicate") == 1
    # A forged delivery's event header is not trusted, so it is not a label.
    assert _delta(after, before, deliveries, event="unknown", outcome="rejected") == 1
    assert _delta(after, before, "dbarch_webhook_signature_failures_total") == 1
    assert _delta(after, before, "dbarch_webhook_duration_seconds_count") == 3
    assert after[("dbarch_redis_up", ())] == 1


async def test_queue_depth_counts_the_jobs_in_each_queue(
    client: httpx.Client, pool: ArqRedis
) -> None:
    for n in range(3):
        assert _send(client, delivery_id=f"metrics-depth-{n}").status_code == 202
    for n in range(2):
        job = await pool.enqueue_job(AUDIT_JOB, {"n": n}, _queue_name=AUDITS_QUEUE)
        assert job is not None

    found = _scrape(client)

    assert found[("dbarch_queue_depth", (("queue", "dbarch:events"),))] == 3
    assert found[("dbarch_queue_depth", (("queue", "dbarch:audits"),))] == 2


async def test_what_jobs_publish_shows_with_its_values(
    client: httpx.Client, pool: ArqRedis
) -> None:
    fake = FakeGitHub()
    fake.add_repo(REPO, installation_id=7)
    gh = installation_client(fake.settings(), 7, REPO, cache=MemCacheStrategy())

    async def delivery_job(ctx: dict[str, Any], fail: bool) -> str:
        await api(gh, "GET", f"/repos/{REPO}")  # the client notes the rate limit left
        if fail:
            raise Retry(defer=5)
        return "handled"

    async def audit_job(ctx: dict[str, Any], results: dict[str, str]) -> dict[str, Any]:
        if not results:
            raise ValueError("the audit broke")
        return {"status": "done", "results": results}

    deliveries = instrumented(delivery_job, job="delivery", max_tries=3)
    audits = instrumented(audit_job, job="audit", max_tries=3, durations=True)
    with fake.mock():
        assert await deliveries({"redis": pool, "job_try": 1}, False) == "handled"
        with pytest.raises(Retry):
            await deliveries({"redis": pool, "job_try": 1}, True)
        with pytest.raises(Retry):  # the last try: arq fails it when it picks it up again
            await deliveries({"redis": pool, "job_try": 3}, True)
    opened = {"a": "opened #12", "b": "opened #13", "c": "updated #9"}
    await audits({"redis": pool, "job_try": 1}, opened)
    await audits({"redis": pool, "job_try": 1}, {"d": WOULD_OPEN})
    with pytest.raises(ValueError, match="broke"):
        await audits({"redis": pool, "job_try": 1}, {})

    found = _scrape(client)

    jobs = "dbarch_jobs_total"
    assert found[(jobs, (("job", "delivery"), ("outcome", "done")))] == 1
    assert found[(jobs, (("job", "delivery"), ("outcome", "retried")))] == 1
    assert found[(jobs, (("job", "delivery"), ("outcome", "failed")))] == 1
    assert found[(jobs, (("job", "audit"), ("outcome", "done")))] == 2
    assert found[(jobs, (("job", "audit"), ("outcome", "failed")))] == 1
    assert found[("dbarch_prs_opened_total", (("dry_run", "false"),))] == 2
    assert found[("dbarch_prs_opened_total", (("dry_run", "true"),))] == 1
    assert found[("dbarch_audit_duration_seconds_count", ())] == 3  # done and failed audits
    left = found[("dbarch_github_rate_limit_remaining", (("installation", "7"),))]
    assert left == fake.rate_remaining < 5000


async def test_audit_durations_form_a_histogram(client: httpx.Client, pool: ArqRedis) -> None:
    sink = MetricsSink(pool)
    for seconds in (3.0, 8.0, 45.0, 45.0, 4000.0):
        assert await sink.record(JobFacts("audit", "done", audit_seconds=seconds))

    found = _scrape(client)

    name = "dbarch_audit_duration_seconds"
    buckets = {
        labels[0][1]: value
        for (sample, labels), value in found.items()
        if sample == f"{name}_bucket"
    }
    assert (buckets["5.0"], buckets["10.0"], buckets["30.0"], buckets["60.0"]) == (1, 2, 2, 4)
    assert (buckets["3600.0"], buckets["+Inf"]) == (4, 5)
    assert found[(f"{name}_count", ())] == 5
    assert math.isclose(found[(f"{name}_sum", ())], 4101.0)


async def test_under_arq_a_retried_job_counts_once_retried_then_done(
    client: httpx.Client, pool: ArqRedis, metrics_redis: str
) -> None:
    async def flaky(ctx: dict[str, Any]) -> str:
        if ctx["job_try"] == 1:
            raise Retry(defer=0.05)
        return "done"

    queue = "dbarch:test-metrics"
    worker = Worker(
        functions=[func(instrumented(flaky, job="probe", max_tries=3), name="probe", max_tries=3)],
        queue_name=queue,
        redis_settings=redis_settings(metrics_redis),
        job_serializer=dumps,
        job_deserializer=loads,
        burst=True,
        poll_delay=0.05,
        handle_signals=False,
    )
    try:
        assert await pool.enqueue_job("probe", _queue_name=queue) is not None
        await worker.main()
    finally:
        await close_worker(worker)

    found = _scrape(client)

    assert found[("dbarch_jobs_total", (("job", "probe"), ("outcome", "retried")))] == 1
    assert found[("dbarch_jobs_total", (("job", "probe"), ("outcome", "done")))] == 1


def test_the_token_guards_the_metrics(client: httpx.Client) -> None:
    missing = client.get(METRICS_PATH)
    wrong = client.get(METRICS_PATH, headers={"Authorization": "Bearer nope"})

    assert missing.status_code == wrong.status_code == 401
    assert "DBARCH_METRICS_TOKEN" in missing.json()["error"]
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert client.get(METRICS_PATH, headers=AUTH).status_code == 200


def test_the_metrics_are_not_in_the_openapi_schema(client: httpx.Client) -> None:
    schema = client.get("/schema/openapi.json")
    assert schema.status_code == 200
    assert METRICS_PATH not in schema.json().get("paths", {})


def test_without_redis_the_web_still_answers(store_dsn: str) -> None:
    settings = Settings(
        github_webhook_secret=SECRET, redis_url=f"redis://127.0.0.1:{free_port()}/0"
    )
    with AppServer(settings, store_dsn) as server, httpx.Client(base_url=server.url) as http:
        response = http.get(METRICS_PATH)  # no token configured: open
        assert response.status_code == 200
        families = {f.name: f for f in text_string_to_metric_families(response.text)}

    assert families["dbarch_redis_up"].samples[0].value == 0
    assert "dbarch_webhook_deliveries" in families
    assert "dbarch_jobs" not in families
