"""Helpers for webhook tests over real HTTP: the app under uvicorn, a Redis we can stop, probes."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import redis
import uvicorn
from psycopg.rows import dict_row

from app.adapters.pgserver import free_port
from app.adapters.queue import EVENTS_QUEUE, delivery_job_id
from app.settings import Settings
from app.web.asgi import create_app

START_TIMEOUT_S = 15.0
JOB_KEY_PREFIX = "arq:job:"


class AppServer:
    """The web app under uvicorn on a free loopback port, in a thread with its own event loop."""

    def __init__(self, settings: Settings, store_dsn: str) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            create_app(settings, store_dsn=store_dsn),
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            access_log=False,
            lifespan="on",
        )
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


class RedisServer:
    """A private redis-server that keeps its port across stop() and start() (no persistence)."""

    def __init__(self, base: Path) -> None:
        binary = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/sbin")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt package redis-server)")
        self.binary = binary
        self.base = base
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self.base), "--daemonize", "no"]
        with (self.base / "redis.log").open("ab") as log_file:
            self.process = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _redis_answers(self.url):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        self.process.wait(timeout=10)
        self.process = None


def _redis_answers(url: str) -> bool:
    try:
        with redis.Redis.from_url(url, socket_connect_timeout=0.2) as client:
            return bool(client.ping())
    except redis.ConnectionError:
        return False


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
