"""The store killed under ``dbarchitect run``: deliveries are still accepted, the workers stay
alive, and what arrived meanwhile is handled once the store is back."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from app.adapters.pgserver import EmbeddedPostgres, free_port
from app.adapters.redis_server import RedisServer
from app.adapters.store import upgrade_store
from tests.attack.test_faults import (
    _deliver,
    _delivery_done,
    _env,
    _health,
    _postmaster_pid,
    _process,
    _wait,
    _worker_check,
)


def _comments(outbox: Path) -> list[Path]:
    """What dry runs posted as comments (one file per comment, edited in place)."""
    return sorted(outbox.glob("**/comments/*.md"))


@pytest.mark.timeout(240)
def test_a_store_killed_under_run_loses_no_delivery_and_no_worker(
    server_dir: Path, tmp_path: Path
) -> None:
    store = EmbeddedPostgres(server_dir / "store", port=free_port(), fast=True).start()
    redis = RedisServer(server_dir / "redis").start()
    try:
        store_dsn = store.create_database("store", extensions=("vector",))
        upgrade_store(store_dsn)
        checkout = tmp_path / "checkout"
        checkout.mkdir()
        outbox = tmp_path / "outbox"
        env = _env(
            server_dir / "data",
            DBARCH_STORE_DSN=store_dsn,
            DBARCH_REDIS_URL=redis.url,
            DBARCH_TARGETS=json.dumps({"shop": {"dsn": store_dsn}}),
            DBARCH_LOCAL_REPO_DIR=str(checkout),
            DBARCH_OUTBOX_DIR=str(outbox),
        )
        with _process(["run", "--no-demo-audit"], env, tmp_path / "run.log") as app:
            _wait("healthy run", lambda: _health(env)["status"] == "ok", timeout_s=60, app=app)

            os.kill(_postmaster_pid(store.base_dir), signal.SIGKILL)  # no shutdown, no goodbye
            down = _wait(
                "the store seen down", lambda: _health(env)["store"] == "down" or None, timeout_s=20
            )
            assert down
            health = _health(env)
            assert health["status"] == "degraded", health
            assert health["redis"] == "ok"

            # Accepted while the store is down: the job itself carries the delivery.
            _deliver(env, "/audit")
            time.sleep(3)  # the worker tries meanwhile and must neither die nor drop it
            assert app.poll() is None
            assert _worker_check(env) == 0, "a worker stopped beating while the store was down"
            assert not _comments(outbox), "the audit ran without its store"

            store._port = None  # the SIGKILLed server is gone; start it again on its port
            store.start()
            back = _wait("the store back", lambda: _health(env)["status"] == "ok", timeout_s=60)
            assert back
            assert _wait(
                "the delivery from the outage handled",
                lambda: _comments(outbox) or None,
                timeout_s=90,
                app=app,
            )
            delivery_id = _deliver(env, "/audit")
            assert _wait(
                "a delivery after the outage handled and marked done",
                lambda: _delivery_done(store_dsn, delivery_id),
                timeout_s=60,
                app=app,
            )
            assert app.poll() is None
        log = (tmp_path / "run.log").read_text()
        assert app.returncode == 0, log[-3000:]
    finally:
        redis.stop()
        store.stop()
