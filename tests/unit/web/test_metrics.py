"""``/metrics`` in process: the web's counters, the workers' families, the token, the dashboard."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.datastructures import State
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from app.adapters.metrics_sink import parse_worker_metrics
from app.settings import Settings
from app.web.counters import UNKNOWN_EVENT, WebMetrics
from app.web.metrics import CONTENT_TYPE, METRICS_PATH, exposition, metrics, token_problem
from app.web.state import QueueUnavailable, WebState
from app.web.webhooks import WEBHOOK_PATH, github_webhook
from tests.payloads import delivery, issue_comment
from tests.unit.web.fakes import FakeQueue, FakeStore

DASHBOARD = Path(__file__).parents[3] / "deploy" / "grafana" / "db-architect.json"
NOW = 1_750_000_000.0
SECRET = "s3cret"


def _workers() -> Any:
    return parse_worker_metrics(
        {"dbarch:events": 4, "dbarch:audits": 1},
        {"delivery:done": "9", "delivery:retried": "2", "audit:done": "3", "audit:failed": "1"},
        {"le=5": "1", "le=30": "2", "le=+Inf": "1", "sum": "4012.5"},
        {"opened": "2", "would_open": "5"},
        {"7": f"4321 {NOW:.0f}", "app": f"4999 {NOW:.0f}"},
        now=NOW,
    )


def _samples(text: bytes | str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    raw = text.decode() if isinstance(text, bytes) else text
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(raw):
        for sample in family.samples:
            found[_key(sample)] = sample.value
    return found


def _key(sample: Sample) -> tuple[str, tuple[tuple[str, str], ...]]:
    return sample.name, tuple(sorted(sample.labels.items()))


def test_deliveries_are_counted_by_event_and_outcome() -> None:
    web = WebMetrics()
    web.delivery("issue_comment", "accepted", 0.004)
    web.delivery("issue_comment", "accepted", 0.02)
    web.delivery("pull_request", "duplicate", 0.003)
    web.delivery("Robert'); DROP", "rejected", 0.001)  # never a label someone else chose
    web.signature_failure(0.001)

    found = _samples(exposition(web, None))

    deliveries = "dbarch_webhook_deliveries_total"
    assert found[(deliveries, (("event", "issue_comment"), ("outcome", "accepted")))] == 2
    assert found[(deliveries, (("event", "pull_request"), ("outcome", "duplicate")))] == 1
    assert found[(deliveries, (("event", UNKNOWN_EVENT), ("outcome", "rejected")))] == 2
    assert found[("dbarch_webhook_signature_failures_total", ())] == 1
    assert found[("dbarch_webhook_duration_seconds_count", ())] == 5
    assert found[("dbarch_webhook_duration_seconds_bucket", (("le", "0.005"),))] == 4


def test_two_apps_keep_separate_counters() -> None:
    first, second = WebMetrics(), WebMetrics()
    first.signature_failure(0.001)

    assert _samples(exposition(second, None))[("dbarch_webhook_signature_failures_total", ())] == 0


def test_worker_facts_become_counters_gauges_and_a_histogram() -> None:
    found = _samples(exposition(WebMetrics(), _workers()))

    assert found[("dbarch_redis_up", ())] == 1
    assert found[("dbarch_queue_depth", (("queue", "dbarch:events"),))] == 4
    assert found[("dbarch_queue_depth", (("queue", "dbarch:audits"),))] == 1
    assert found[("dbarch_jobs_total", (("job", "delivery"), ("outcome", "retried")))] == 2
    assert found[("dbarch_jobs_total", (("job", "audit"), ("outcome", "failed")))] == 1
    histogram = "dbarch_audit_duration_seconds"
    assert found[(f"{histogram}_bucket", (("le", "5.0"),))] == 1
    assert found[(f"{histogram}_bucket", (("le", "10.0"),))] == 1
    assert found[(f"{histogram}_bucket", (("le", "30.0"),))] == 3
    assert found[(f"{histogram}_bucket", (("le", "+Inf"),))] == 4
    assert (found[(f"{histogram}_count", ())], found[(f"{histogram}_sum", ())]) == (4, 4012.5)
    assert found[("dbarch_prs_opened_total", (("dry_run", "false"),))] == 2
    assert found[("dbarch_prs_opened_total", (("dry_run", "true"),))] == 5
    rate = "dbarch_github_rate_limit_remaining"
    assert found[(rate, (("installation", "7"),))] == 4321
    assert found[(rate, (("installation", "app"),))] == 4999


def test_without_redis_only_the_webs_own_counters_are_shown() -> None:
    found = _samples(exposition(WebMetrics(), None))

    assert found[("dbarch_redis_up", ())] == 0
    assert not any(name.startswith(("dbarch_jobs", "dbarch_queue")) for name, _ in found)


@pytest.mark.parametrize(
    ("header", "allowed"),
    [
        ("Bearer scrape-t0ken-0123456", True),
        ("bearer scrape-t0ken-0123456", True),
        ("Bearer wrong", False),
        ("Basic dDBrZW4=", False),
        ("Bearer ", False),
        (None, False),
    ],
)
def test_with_a_token_only_its_bearer_may_scrape(header: str | None, allowed: bool) -> None:
    problem = token_problem(Settings(metrics_token="scrape-t0ken-0123456"), header)
    assert (problem is None) is allowed
    if problem is not None:
        assert "DBARCH_METRICS_TOKEN" in problem


def test_without_a_token_anyone_may_scrape() -> None:
    assert token_problem(Settings(), None) is None


class NoRedis(FakeQueue):
    """The webhook's queue, with Redis down for the scrape."""

    async def connect(self) -> Any:
        raise QueueUnavailable("cannot connect to Redis: ConnectionError")


def _client(settings: Settings) -> TestClient[Any]:
    web = WebState(settings=settings, store=FakeStore(), queue=NoRedis())  # type: ignore[arg-type]
    app = Litestar(
        [github_webhook, metrics], state=State({"web": web}), logging_config=None, debug=False
    )
    return TestClient(app)


def test_the_route_counts_what_the_webhook_did() -> None:
    settings = Settings(github_webhook_secret=SECRET, metrics_token="scrape-t0ken-0123456")
    with _client(settings) as client:
        body, headers = delivery("issue_comment", issue_comment("/audit"), SECRET)
        assert client.post(WEBHOOK_PATH, content=body, headers=headers).status_code == 202
        bad = dict(headers, **{"X-Hub-Signature-256": "sha256=" + "0" * 64})
        assert client.post(WEBHOOK_PATH, content=body, headers=bad).status_code == 401

        refused = client.get(METRICS_PATH)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        bearer = {"Authorization": "Bearer scrape-t0ken-0123456"}
        response = client.get(METRICS_PATH, headers=bearer)

    assert response.status_code == 200
    assert response.headers["content-type"] == f"{CONTENT_TYPE}; charset=utf-8"
    found = _samples(response.text)
    accepted = (("event", "issue_comment"), ("outcome", "accepted"))
    assert found[("dbarch_webhook_deliveries_total", accepted)] == 1
    assert found[("dbarch_webhook_signature_failures_total", ())] == 1
    assert found[("dbarch_redis_up", ())] == 0


# ---------------------------------------------------------------------- the Grafana dashboard


def _dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def _exprs(dashboard: dict[str, Any]) -> list[str]:
    return [
        target["expr"]
        for panel in dashboard["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


def test_the_dashboard_is_a_grafana_dashboard_on_a_prometheus_variable() -> None:
    dashboard = _dashboard()

    assert dashboard["schemaVersion"] >= 39
    assert dashboard["uid"] == "db-architect"
    (variable,) = dashboard["templating"]["list"]
    assert (variable["type"], variable["query"], variable["name"]) == (
        "datasource",
        "prometheus",
        "datasource",
    )
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])


def test_every_dashboard_query_reads_metrics_the_app_exports() -> None:
    web = WebMetrics()
    web.delivery("issue_comment", "accepted", 0.01)
    exported = {name for name, _ in _samples(exposition(web, _workers()))}
    families = {  # prometheus_client's own *_created series are not worth a panel
        family.name
        for family in text_string_to_metric_families(exposition(web, _workers()).decode())
        if not family.name.endswith("_created")
    }

    used: set[str] = set()
    for expr in _exprs(_dashboard()):
        names = set(re.findall(r"\bdbarch_[a-z0-9_]+", expr))
        assert names, f"{expr!r} reads no DB Architect metric"
        assert names <= exported, f"{expr!r} reads {sorted(names - exported)}, not exported"
        used |= names

    shown = {
        family
        for family in families
        if any(name == family or name.startswith(f"{family}_") for name in used)
    }
    assert shown == families, f"no panel for {sorted(families - shown)}"


def test_buckets_in_the_exposition_are_cumulative() -> None:
    found = _samples(exposition(WebMetrics(), _workers()))
    counts = sorted(
        (math.inf if labels[0][1] == "+Inf" else float(labels[0][1]), value)
        for (name, labels), value in found.items()
        if name == "dbarch_audit_duration_seconds_bucket"
    )
    values = [value for _, value in counts]
    assert values == sorted(values)
