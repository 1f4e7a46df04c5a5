"""Helpers for webhook tests over real HTTP: the app under uvicorn, a Redis we can stop, probes."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import psycopg
import redis
import uvicorn
from psycopg.rows import dict_row

from app.adapters.pgserver import free_port
from app.adapters.queue import EVENTS_QUEUE, delivery_job_id
from app.settings import Settings
from app.web.asgi import create_app
from app.web.serving import uvicorn_config

START_TIMEOUT_S = 15.0
JOB_KEY_PREFIX = "arq:job:"


class AppServer:
    """The web app under uvicorn on a free loopback port, in a thread with its own event loop."""

    def __init__(self, settings: Settings, store_dsn: str) -> None:
        self.port = free_port()
        app = create_app(settings, store_dsn=store_dsn)
        config = uvicorn_config(app, settings, host="127.0.0.1", port=self.port, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="webhook-app", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> AppServer:
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the web app did not start (see the log above)")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=START_TIMEOUT_S)
        if self.thread.is_alive():
            raise RuntimeError("the web app did not stop")

    def __enter__(self) -> AppServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def queued_job(redis_url: str, delivery_id: str) -> dict[str, Any] | None:
    """The arq job of a delivery as stored (decoded as JSON), or None; asserts it is queued."""
    job_id = delivery_job_id(delivery_id)
    with redis.Redis.from_url(redis_url) as client:
        raw = client.get(JOB_KEY_PREFIX + job_id)
        score = client.zscore(EVENTS_QUEUE, job_id)
    if raw is None:
        assert score is None, "a queue entry without its job"
        return None
    assert score is not None, "a job that is not in the events queue"
    job: dict[str, Any] = json.loads(raw)  # JSON, never pickle
    return job


def wait_for_job(redis_url: str, delivery_id: str, timeout_s: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while (job := queued_job(redis_url, delivery_id)) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"no job for delivery {delivery_id} after {timeout_s}s")
        time.sleep(0.05)
    return job


def inbox_row(store_dsn: str, delivery_id: str) -> dict[str, Any] | None:
    """The inbox row of a delivery, or None."""
    with psycopg.connect(store_dsn, row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT * FROM webhook_inbox WHERE delivery_id = %s", (delivery_id,)
        ).fetchone()
