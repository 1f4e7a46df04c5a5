"""A private redis-server on loopback, without persistence: `dbarchitect run`, tests, benchmarks."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType

import redis

from app.adapters.pgserver import free_port

__all__ = ["RedisMissing", "RedisServer", "redis_answers"]

START_TIMEOUT_S = 10.0
_PORT_TRIES = 3


class RedisMissing(RuntimeError):
    """No redis-server binary; the message says which package provides it."""


def redis_answers(url: str, *, timeout_s: float = 0.5) -> bool:
    """Whether a Redis at ``url`` answers PING."""
    try:
        with redis.Redis.from_url(url, socket_connect_timeout=timeout_s) as client:
            return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError):
        return False


class RedisServer:
    """``redis-server`` on 127.0.0.1 in ``base_dir`` (its log, no RDB, no AOF).

    The port is picked at the first start and kept across ``stop()`` and ``start()``, so a
    client can watch the same Redis go away and come back.
    """

    def __init__(self, base_dir: Path, *, port: int | None = None) -> None:
        binary = shutil.which("redis-server") or shutil.which(
            "redis-server", path="/usr/sbin:/sbin"
        )
        if binary is None:
            raise RedisMissing("redis-server is not installed (apt package redis-server)")
        self.binary = binary
        self.base_dir = base_dir
        self.log_file = base_dir / "redis.log"
        self.port = port
        self._fixed_port = port is not None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0`` (after the first start)."""
        if self.port is None:
            raise RuntimeError("the server has not been started yet")
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start it and wait until it answers; a port taken meanwhile is replaced (if ours)."""
        self.base_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(_PORT_TRIES):
            if self.port is None:
                self.port = free_port()
            if self._launch():
                return self
            if self._fixed_port or "already in use" not in self._log_tail():
                break
            self.port = None
        raise RuntimeError(f"redis-server did not start:\n{self._log_tail()}")

    def stop(self) -> None:
        """Terminate it (killed if it does not exit within 10 s)."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _launch(self) -> bool:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self.base_dir), "--daemonize", "no"]
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own argument list, no shell
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not redis_answers(self.url, timeout_s=0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                return False
            time.sleep(0.02)
        return True

    def _log_tail(self, lines: int = 20) -> str:
        if not self.log_file.is_file():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
