"""Slow statements pg_stat_statements never records reach the audited workload on real servers.

One runs in another session while the audit looks at pg_stat_activity; one is cancelled by a
real statement_timeout and read back from the server's own log; one is seen by the worker's
minute look, stored, and added to a later audit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import redis

from app.adapters.pgserver import PgServer
from app.adapters.queue import open_pool
from app.adapters.slow_statements import SlowStatements
from app.adapters.store import downgrade_store, open_store, upgrade_store
from app.adapters.store_schema import store_revision
from app.engine.model import QuerySource
from app.engine.render import to_json
from app.flows.activity import sample_targets
from app.flows.audit_target import WorkloadSpec, audit_target
from app.settings import Settings, TargetSpec
from worker.jobs import _slow_statements, sample_activity

pytestmark = pytest.mark.integration

#: 200,000 orders; one customer's are found only by reading them all.
SEED = (
    "CREATE EXTENSION hypopg",
    "CREATE EXTENSION pg_stat_statements",
    "CREATE TABLE orders AS SELECT g AS id, g % 20000 AS customer_id, md5(g::text) AS note"
    " FROM generate_series(1, 200000) g",
    "ALTER TABLE orders ADD PRIMARY KEY (id)",
    "ANALYZE orders",
    "SELECT pg_stat_statements_reset()",
)
#: The initplan sleeps once, whatever the plan: the statement runs about that long.
SLOW = "SELECT * FROM orders WHERE customer_id = 42 AND (SELECT pg_sleep({s})) IS NOT NULL"
MINUTE = datetime(2026, 12, 1, 10, 5, 30, tzinfo=UTC)
NORMALISED = "SELECT * FROM orders WHERE customer_id = $1 AND (SELECT pg_sleep($2)) IS NOT NULL"


def _seed(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in SEED:
            conn.execute(statement.encode())


@contextmanager
def _running_elsewhere(dsn: str, seconds: float, timeout_s: float = 0) -> Iterator[None]:
    """The slow statement running in another session (seen active) for the block's duration.

    With ``timeout_s`` its statement_timeout cancels it first: pg_stat_statements never
    records it.
    """
    started = threading.Event()

    def run() -> None:
        with psycopg.connect(dsn, autocommit=True, application_name="shop-app") as conn:
            conn.execute(f"SET statement_timeout = '{timeout_s}s'".encode())
            started.set()
            try:
                conn.execute(SLOW.format(s=seconds).encode())
            except psycopg.errors.QueryCanceled:
                assert timeout_s

    thread = threading.Thread(target=run)
    thread.start()
    started.wait(10)
    with psycopg.connect(dsn, autocommit=True) as conn:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'shop-app' "
                "AND state = 'active' AND now() - query_start > interval '0.6 s'"
            ).fetchone()
            if row and row[0]:
                break
            time.sleep(0.1)
    try:
        yield
    finally:
        thread.join(30)


def _slow_entry(report: dict[str, object], source: str) -> dict[str, object]:
    entries = [
        s
        for s in report["slow_statements"]  # type: ignore[attr-defined]
        if s["query"] == NORMALISED and s["source"] == source
    ]
    assert len(entries) == 1, report["slow_statements"]
    entry: dict[str, object] = entries[0]
    return entry


def test_a_statement_running_during_the_audit_joins_the_workload(fresh_db15: str) -> None:
    _seed(fresh_db15)
    spec = WorkloadSpec(activity_min_ms=500.0)
    with _running_elsewhere(fresh_db15, 6):
        report = audit_target(fresh_db15, spec)
    # pg_stat_statements has not seen it finish yet: only the look at activity found it.
    (query,) = [a.query for a in report.analyzed if a.query.text == NORMALISED]
    assert query.source is QuerySource.activity
    assert query.calls == 1 and query.total_ms >= 500.0
    doc = to_json(report)
    entry = _slow_entry(doc, "activity")
    assert entry["analyzed"] is True and float(entry["at_least_ms"]) >= 500.0  # type: ignore[arg-type]
    assert doc["workload"]["sources"].get("activity") == 1  # type: ignore[index]
    # audited like any other statement: the index it needs is recommended for it
    (rec,) = [r for r in doc["recommendations"] if r["table"] == "public.orders"]
    assert rec["columns"][0] == "customer_id"
    assert [q["source"] for q in rec["queries"] if q["query"] == NORMALISED] == ["activity"]


def test_no_look_when_sampling_is_off(fresh_db15: str) -> None:
    _seed(fresh_db15)
    with _running_elsewhere(fresh_db15, 3):
        report = audit_target(fresh_db15, WorkloadSpec(activity_min_ms=None))
    assert not [a for a in report.analyzed if a.query.source is QuerySource.activity]


def test_a_statement_cancelled_by_statement_timeout_is_read_from_the_log(
    pg15: PgServer, fresh_db15: str
) -> None:
    _seed(fresh_db15)
    offset = pg15.log_file.stat().st_size
    with psycopg.connect(fresh_db15, autocommit=True) as conn:
        conn.execute("SET statement_timeout = '300ms'")
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute(SLOW.format(s=2).encode())
        conn.execute("ALTER DATABASE " + conn.info.dbname + " SET statement_timeout = '300ms'")
    with pg15.log_file.open("rb") as f:
        f.seek(offset)
        log_text = f.read().decode()
    assert "canceling statement due to statement timeout" in log_text
    # The statement never finished: pg_stat_statements has nothing of it.
    with psycopg.connect(fresh_db15, autocommit=True) as conn:
        seen = conn.execute(
            "SELECT count(*) FROM pg_stat_statements WHERE query LIKE '%pg_sleep%'"
        ).fetchone()
    assert seen == (0,)
    report = audit_target(fresh_db15, WorkloadSpec(samples_text=log_text, activity_min_ms=None))
    (query,) = [a.query for a in report.analyzed if a.query.text == NORMALISED]
    assert query.source is QuerySource.timeout_log
    # the lower bound is the statement_timeout a new session gets (the database's, here)
    assert (query.calls, query.total_ms) == (1, 300.0)
    doc = to_json(report)
    assert _slow_entry(doc, "timeout log")["at_least_ms"] == 300.0
    (rec,) = [r for r in doc["recommendations"] if r["table"] == "public.orders"]
    assert [q["source"] for q in rec["queries"] if q["query"] == NORMALISED] == ["timeout log"]


async def test_the_minute_look_is_stored_and_joins_the_next_audit(
    fresh_db15: str, fresh_store: str
) -> None:
    _seed(fresh_db15)
    targets = {"shop": TargetSpec(dsn=fresh_db15)}  # type: ignore[arg-type]
    async with await open_store(fresh_store) as store:
        remembered = SlowStatements(store)
        with _running_elsewhere(fresh_db15, 10, timeout_s=3):
            first = await sample_targets(targets, remembered, min_ms=500.0)
            second = await sample_targets(targets, remembered, min_ms=500.0)
        assert first == second == {"shop": 1}
        found = await remembered.recent("shop")
        assert await remembered.recent("elsewhere") == ()
        async with store.pool.connection() as conn:
            cur = await conn.execute("SELECT query, running_ms FROM slow_statements")
            rows = await cur.fetchall()
        assert len(rows) == 1 and rows[0][0] == NORMALISED  # one execution, no literal values
        assert await remembered.prune(0.0) == 1
    with psycopg.connect(fresh_db15, autocommit=True) as conn:
        never = conn.execute(
            "SELECT count(*) FROM pg_stat_statements WHERE query LIKE '%pg_sleep%'"
        )
        assert never.fetchone() == (0,)  # cancelled: pg_stat_statements has nothing of it
    (query,) = found
    assert (query.text, query.calls, query.source) == (NORMALISED, 1, QuerySource.activity)
    assert query.total_ms == rows[0][1] >= 500.0
    report = audit_target(fresh_db15, WorkloadSpec(sightings=found, activity_min_ms=None))
    (analyzed,) = [a.query for a in report.analyzed if a.query.text == NORMALISED]
    assert analyzed.source is QuerySource.activity


async def test_the_worker_cron_looks_once_a_minute_and_audits_get_what_it_saw(
    fresh_db15: str, fresh_store: str, redis_url: str
) -> None:
    _seed(fresh_db15)
    with redis.Redis.from_url(redis_url) as client:
        client.delete(f"dbarch:lock:activity:{MINUTE:%Y-%m-%dT%H:%M}")
    settings = Settings(targets={"shop": fresh_db15}, activity_min_ms=500.0)  # type: ignore[arg-type]
    redis_pool = await open_pool(redis_url)
    try:
        async with await open_store(fresh_store) as store:
            ctx: dict[str, Any] = {"settings": settings, "redis": redis_pool, "store": store}
            with _running_elsewhere(fresh_db15, 10, timeout_s=3):
                assert await sample_activity(ctx, now=MINUTE) == 1
                assert await sample_activity(ctx, now=MINUTE) == 0  # another worker, same minute
            off = {**ctx, "settings": settings.model_copy(update={"activity_min_ms": 0.0})}
            assert await sample_activity(off, now=MINUTE + timedelta(minutes=1)) == 0
            recent = _slow_statements(ctx)
            assert recent is not None
            (query,) = await recent("shop")
    finally:
        await redis_pool.aclose()
    assert (query.text, query.source) == (NORMALISED, QuerySource.activity)


def test_slow_statements_migration_upgrade_downgrade_upgrade(fresh_db18: str) -> None:
    upgrade_store(fresh_db18, "0004")
    upgrade_store(fresh_db18, "0005")
    assert store_revision(fresh_db18) == "0005"
    with psycopg.connect(fresh_db18, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO slow_statements (target, fingerprint, query, pid, started, running_ms) "
            "VALUES ('shop', 'f', 'SELECT 1', 7, now(), 1500)"
        )
    downgrade_store(fresh_db18, "0004")
    with psycopg.connect(fresh_db18, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('slow_statements')").fetchone() == (None,)
    upgrade_store(fresh_db18, "0005")
