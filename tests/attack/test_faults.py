"""Real faults against real processes: Redis killed under the workers, a worker killed mid-audit,
SIGTERM to ``dbarchitect run``. Each test owns the servers it breaks (never the shared ones)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
import pytest
import redis as redis_client

from app.adapters.pgserver import EmbeddedPostgres, free_port
from app.adapters.redis_server import RedisServer
from app.adapters.store import upgrade_store
from tests.targets import seed_accounts

T = TypeVar("T")
CLI = [sys.executable, "-m", "app.cli"]
SECRET = "fault-secret"


def _wait(what: str, probe: Callable[[], T | None], *, timeout_s: float, app: Any = None) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` after the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(httpx.HTTPError, psycopg.OperationalError):
            if result := probe():
                return result
        if app is not None and app.poll() is not None:
            pytest.fail(f"the process stopped (exit {app.returncode}) while waiting for {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout_s:.0f} s")
        time.sleep(0.2)


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("DBARCH_")} | {
        "DBARCH_DATA_DIR": str(data_dir),
        "DBARCH_WEB_PORT": str(free_port()),
        "DBARCH_GITHUB_WEBHOOK_SECRET": SECRET,
        "DBARCH_MODEL_DIR": os.environ.get("DBARCH_MODEL_DIR", str(data_dir / "no-model")),
        **extra,
    }


@contextlib.contextmanager
def _process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[str]]:
    """A ``dbarchitect`` process, interrupted (then killed) when the block ends."""
    with log.open("a") as out:
        process = subprocess.Popen(
            [*CLI, *args], env=env, stdout=out, stderr=subprocess.STDOUT, text=True
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _health(env: dict[str, str]) -> dict[str, Any]:
    answer = httpx.get(f"http://127.0.0.1:{env['DBARCH_WEB_PORT']}/healthz", timeout=5)
    body: dict[str, Any] = answer.json()
    return body


def _deliver(env: dict[str, str], comment: str = "/audit") -> str:
    done = subprocess.run(
        [*CLI, "deliver", comment], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    match = re.search(r"delivered (\S+):", done.stdout)
    assert match, done.stdout
    return match.group(1)


def _worker_check(env: dict[str, str]) -> int:
    """``dbarchitect worker --check``'s exit code (the compose healthcheck of the worker)."""
    done = subprocess.run(
        [*CLI, "worker", "--check"], env=env, capture_output=True, text=True, timeout=30
    )
    return done.returncode


def _delivery_done(store_dsn: str, delivery_id: str) -> bool:
    with psycopg.connect(store_dsn, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT done_at IS NOT NULL FROM webhook_inbox WHERE delivery_id = %s", (delivery_id,)
        ).fetchone()
    return bool(row and row[0])


@pytest.fixture
def store_dsn(pg18: EmbeddedPostgres, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"faults_{request.node.name[5:40]}".lower()
    dsn = pg18.create_database(name, extensions=("vector",))
    upgrade_store(dsn)
    yield dsn
    pg18.drop_database(name)


# ---------------------------------------------------------------------- Redis dies


@pytest.mark.timeout(150)
def test_workers_come_back_after_redis_is_killed_and_health_says_so(
    server_dir: Path, store_dsn: str, tmp_path: Path
) -> None:
    redis = RedisServer(server_dir / "redis").start()
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    env = _env(
        server_dir / "data",
        DBARCH_STORE_DSN=store_dsn,
        DBARCH_REDIS_URL=redis.url,
        DBARCH_TARGETS=json.dumps({"shop": {"dsn": store_dsn}}),
        DBARCH_LOCAL_REPO_DIR=str(checkout),
    )
    try:
        with _process(["run", "--no-demo-audit"], env, tmp_path / "run.log") as app:
            up = _wait("healthy run", lambda: _health(env)["status"] == "ok", timeout_s=60, app=app)
            assert up
            assert _health(env)["workers"] == {"events": 1, "audits": 1}

            assert redis.process is not None
            redis.process.kill()  # SIGKILL: no goodbye to the clients
            redis.process.wait()
            redis.process = None
            down = _wait("degraded health", lambda: _health(env), timeout_s=15, app=app)
            assert down["status"] == "degraded"
            assert down["redis"] == "down"
            assert down["workers"] is None
            assert _worker_check(env) == 1
            time.sleep(3)  # the workers' polls fail meanwhile; they must not give up

            redis.start()  # the same port, empty (no persistence)
            back = _wait("workers back", lambda: _health(env)["status"] == "ok", timeout_s=40)
            assert back
            assert _health(env)["workers"] == {"events": 1, "audits": 1}
            assert _worker_check(env) == 0

            delivery_id = _deliver(env)
            assert _wait(
                "delivery handled after the outage",
                lambda: _delivery_done(store_dsn, delivery_id),
                timeout_s=30,
                app=app,
            )
            assert app.poll() is None
        assert _worker_check(env) == 1  # stopped cleanly: heartbeats withdrawn at once
    finally:
        redis.stop()
    log = (tmp_path / "run.log").read_text()
    assert "worker_redis_unreachable" in log
    assert app.returncode == 0, log[-3000:]


# ---------------------------------------------------------------------- SIGTERM


def _postmaster_pid(base_dir: Path) -> int:
    return int((base_dir / "data" / "postmaster.pid").read_text().split()[0])


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.timeout(240)
def test_sigterm_to_run_stops_every_embedded_server(server_dir: Path, tmp_path: Path) -> None:
    data = server_dir / "data"
    # Nothing answers there: `run` starts its own Redis, store and demo target.
    env = _env(data, DBARCH_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    with _process(["run", "--no-demo-audit"], env, tmp_path / "run.log") as app:
        _wait("the web process", lambda: _health(env).get("store") == "ok", timeout_s=200, app=app)
        servers = {
            "store": _postmaster_pid(data / "store-pg18"),
            "demo target": _postmaster_pid(data / "demo-pg18"),
            "redis": next(
                pid
                for pid in _children(app.pid)
                if "redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes().decode()
            ),
        }
        assert all(_alive(pid) for pid in servers.values())
        try:
            app.send_signal(signal.SIGTERM)
            code = app.wait(timeout=60)
            log = (tmp_path / "run.log").read_text()
            assert code == 0, log[-3000:]
            deadline = time.monotonic() + 10
            while (left := [name for name, pid in servers.items() if _alive(pid)]) and (
                time.monotonic() < deadline
            ):
                time.sleep(0.2)
            assert not left, f"still running after SIGTERM: {left}"
        finally:
            for pid in servers.values():  # what a failed run left behind, not to leak it
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)


@pytest.mark.timeout(120)
def test_sigterm_to_serve_stops_its_embedded_store(
    server_dir: Path, redis_url: str, tmp_path: Path
) -> None:
    data = server_dir / "data"
    env = _env(data, DBARCH_REDIS_URL=redis_url)
    with _process(["serve"], env, tmp_path / "serve.log") as web:
        _wait("the web process", lambda: _health(env).get("store") == "ok", timeout_s=90, app=web)
        store = _postmaster_pid(data / "store-pg18")
        try:
            web.send_signal(signal.SIGTERM)
            code = web.wait(timeout=60)
            assert code == 0, (tmp_path / "serve.log").read_text()[-3000:]
            deadline = time.monotonic() + 10
            while _alive(store) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not _alive(store), "the embedded store outlived `serve`"
        finally:
            if _alive(store):
                os.kill(store, signal.SIGKILL)


# ---------------------------------------------------------------------- a worker dies mid-audit

CONFIG = "version: 1\ntarget: shop\nmigrations:\n  path: migrations/versions\n"
LOCK_KEY = "dbarch:lock:audit:local/demo"
LEASE_S = 4


class SlowRelay:
    """A TCP relay to PostgreSQL that holds every chunk ``delay_s`` before passing it on:
    a slow network to the target, so an audit takes long enough to be killed in the middle."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.delay_s = 0.0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = [self.listener]
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def close(self) -> None:
        for end in self.sockets:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()
        for thread in self.threads:
            thread.join(timeout=5)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self.sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                pump = threading.Thread(target=self._pump, args=(source, sink), daemon=True)
                self.threads.append(pump)
                pump.start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                time.sleep(self.delay_s)
                sink.sendall(chunk)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@pytest.fixture
def slow_target(pg15: Any) -> Iterator[tuple[str, SlowRelay]]:
    dsn = pg15.create_database("fault_target", extensions=("pg_stat_statements", "hypopg"))
    seed_accounts(dsn)
    relay = SlowRelay("127.0.0.1", pg15.port)
    try:
        yield dsn.replace(f"127.0.0.1:{pg15.port}", f"127.0.0.1:{relay.port}"), relay
    finally:
        relay.close()


def _lock_holder(redis_url: str) -> str | None:
    with redis_client.Redis.from_url(redis_url, socket_timeout=2) as client:
        value = client.get(LOCK_KEY)
    return value.decode() if isinstance(value, bytes) else None


def _check_runs(outbox: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(outbox.glob("check-runs/*.json"))]


@pytest.mark.timeout(240)
def test_an_audit_whose_worker_was_killed_runs_again_within_a_lease(
    server_dir: Path,
    store_dsn: str,
    slow_target: tuple[str, SlowRelay],
    tmp_path: Path,
) -> None:
    target, relay = slow_target
    redis = RedisServer(server_dir / "redis").start()
    checkout = tmp_path / "checkout"
    (checkout / ".github").mkdir(parents=True)
    (checkout / ".github" / "db-architect.yml").write_text(CONFIG)
    (checkout / "migrations" / "versions").mkdir(parents=True)
    data = server_dir / "data"
    env = _env(
        data,
        DBARCH_STORE_DSN=store_dsn,
        DBARCH_REDIS_URL=redis.url,
        DBARCH_TARGETS=json.dumps({"shop": {"dsn": target, "allow_target_validation": True}}),
        DBARCH_LOCAL_REPO_DIR=str(checkout),
        DBARCH_WORKER_LEASE_SECONDS=str(LEASE_S),
    )
    outbox = data / "outbox" / "local" / "demo"
    try:
        with (
            _process(["serve"], env, tmp_path / "web.log") as web,
            _process(["worker"], env, tmp_path / "worker-a.log") as first,
        ):
            _wait("healthy web and worker", lambda: _health(env)["status"] == "ok", timeout_s=60)
            relay.delay_s = 0.3  # a slow network to the target: the audit takes a while
            _deliver(env)
            holder = _wait("audit lock", lambda: _lock_holder(redis.url), timeout_s=60)
            running = _wait("a check run in progress", lambda: _check_runs(outbox), timeout_s=30)
            assert [run["status"] for run in running] == ["in_progress"]
            time.sleep(1.5)
            assert first.poll() is None, "the audit must still be running when its worker dies"
            assert not list(outbox.rglob("pr.md")), "the audit finished before it was killed"

            first.kill()  # SIGKILL mid-audit: no lock released, no job finished
            first.wait()
            killed_at = time.monotonic()
            relay.delay_s = 0.0
            with _process(["worker"], env, tmp_path / "worker-b.log") as second:
                retaken = _wait(
                    "audit running again",
                    lambda: (_lock_holder(redis.url) or holder) != holder,
                    timeout_s=120,
                    app=second,
                )
                resumed_after_s = time.monotonic() - killed_at
                assert retaken
                done = _wait(
                    "completed check run",
                    lambda: [r for r in _check_runs(outbox) if r["status"] == "completed"],
                    timeout_s=90,
                    app=second,
                )
            assert web.poll() is None
        runs = _check_runs(outbox)
        assert len(runs) == 1 and runs[0]["id"] == running[0]["id"] == done[0]["id"]
        assert runs[0]["conclusion"] == "neutral", runs[0]  # a dry run: drafts only
        drafts = list(outbox.rglob("pr.md"))
        assert len(drafts) == 1, drafts  # one pull request for the one recommendation
        assert "perf(db): add index on accounts (email)" in drafts[0].read_text()
        # One lease for the dead worker's claims to lapse, one lock wait at most, the start.
        print(f"audit running again {resumed_after_s:.1f} s after its worker was killed")
        assert resumed_after_s < 3 * LEASE_S + 15, resumed_after_s
    finally:
        relay.delay_s = 0.0
        redis.stop()
