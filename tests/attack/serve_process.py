"""`dbarchitect serve` as a real process for attacks, with its RSS sampled while it is hit."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from app.adapters.pgserver import free_port

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30.0


class ServeProcess:
    """``python -m app.cli serve`` on a free loopback port, against a given store and Redis."""

    def __init__(
        self, store_dsn: str, redis_url: str, secret: str, log_path: Path, **env: str
    ) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DBARCH_")} | {
            "DBARCH_DATA_DIR": str(log_path.parent / "data"),
            "DBARCH_STORE_DSN": store_dsn,
            "DBARCH_REDIS_URL": redis_url,
            "DBARCH_GITHUB_WEBHOOK_SECRET": secret,
            "DBARCH_WEB_HOST": "127.0.0.1",
            "DBARCH_WEB_PORT": str(self.port),
            "DBARCH_INBOX_RECOVERY_SECONDS": "300",  # the test, not recovery, enqueues
            "PYTHONPATH": str(ROOT),
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __enter__(self) -> ServeProcess:
        args = [sys.executable, "-m", "app.cli", "--log-format", "json", "--log-level", "error"]
        with self.log_path.open("ab") as log:  # a file: a full pipe would stall the server
            self.process = subprocess.Popen(
                [*args, "serve"], env=self.env, cwd=ROOT, stdout=log, stderr=log
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("serve did not answer /healthz in time")
            time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def rss_mb(self) -> float:
        return psutil.Process(self.pid).memory_info().rss / 2**20


class RssWatch:
    """Samples a process's RSS every few milliseconds; trips once it passes ``limit_mb``."""

    def __init__(self, server: ServeProcess, limit_mb: float, every_s: float = 0.02) -> None:
        self.server = server
        self.limit_mb = limit_mb
        self.every_s = every_s
        self.peak_mb = 0.0
        self.tripped = asyncio.Event()

    async def run(self) -> None:
        while True:
            self.peak_mb = max(self.peak_mb, self.server.rss_mb())
            if self.peak_mb > self.limit_mb:
                self.tripped.set()
                return
            await asyncio.sleep(self.every_s)


ADMIN_TOKEN = "attack-surface-admin-token-0123456789"
SECRET = "surface-secret"


def serve_with_admin(
    store_dsn: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory, name: str
) -> ServeProcess:
    """A :class:`ServeProcess` with the dashboard and API on (``ADMIN_TOKEN``), its log in a
    fresh directory named ``name``."""
    log = tmp_path_factory.mktemp(name) / "serve.log"
    return ServeProcess(store_dsn, redis_url, SECRET, log, DBARCH_ADMIN_TOKEN=ADMIN_TOKEN)


def unhandled_errors(server: ServeProcess) -> list[str]:
    """The log lines of errors the app did not expect (``web.unhandled``, tracebacks)."""
    lines = server.log_path.read_text(errors="replace").splitlines()
    return [line for line in lines if "web.unhandled" in line or "Traceback" in line]


def operator_login(server: ServeProcess, source: str = "127.0.0.2") -> httpx.Response:
    """The admin's login with the right token from ``source`` (303 and a session cookie)."""
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(base_url=server.url, transport=transport, timeout=10) as operator:
        return operator.post("/ui/login", data={"token": ADMIN_TOKEN, "next": "/ui/"})
