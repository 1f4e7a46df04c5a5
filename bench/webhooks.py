"""Drive the webhook receiver with signed deliveries on loopback: throughput and latency.

By default it starts everything itself: a durable embedded PostgreSQL 18 as the store, a
private redis-server, and ONE web process (``dbarchitect serve``: uvicorn, uvloop, httptools)
logging one JSON line per delivery at info. Then it sends, from ``--clients`` processes with
``--concurrency`` connections in all (keep-alive, HTTP/1.1):

1. a baseline: signed deliveries of an event nobody handles (``star``), answered 202 ignored
   after the same signature check and envelope parse, but without the inbox INSERT and the
   enqueue;
2. the run: ``-n`` signed ``issue_comment`` deliveries (~8 KB each, unique delivery ids),
   each one INSERT into the inbox and one arq enqueue.

and prints deliveries/s and p50/p95/p99 latency for both, so the cost of keeping and
queueing a delivery shows as a ratio. Afterwards it checks that every delivery is in the
inbox and in the queue.

    python bench/webhooks.py                         # 20 000 deliveries, 16 connections
    python bench/webhooks.py -n 5000 -c 8 --clients 1
    python bench/webhooks.py --url http://host:8000 --secret S   # a receiver already running
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import hmac
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.adapters.pgserver import EmbeddedPostgres, free_port  # noqa: E402
from app.adapters.queue import EVENTS_QUEUE  # noqa: E402
from app.adapters.redis_server import RedisMissing, RedisServer  # noqa: E402
from app.adapters.store import prepare_local_store, upgrade_store  # noqa: E402

SECRET = "bench-secret"  # noqa: S105 - signs the bench's own deliveries
PATH = "/webhooks/github"
COMMENT_BYTES = 5_000  # the comment text; the whole payload comes to ~8 KB


@dataclass(frozen=True, slots=True)
class Request:
    """One pre-signed request: the raw HTTP/1.1 bytes to send."""

    delivery_id: str
    wire: bytes


def _payload(delivery_no: int) -> dict[str, object]:
    """An ``issue_comment`` / ``created`` payload shaped like GitHub's (~8 KB)."""
    user = {
        "login": "alice",
        "id": 1001,
        "node_id": "MDQ6VXNlcjEwMDE=",
        "avatar_url": "https://avatars.githubusercontent.com/u/1001?v=4",
        "gravatar_id": "",
        "url": "https://api.github.com/users/alice",
        "html_url": "https://github.com/alice",
        "type": "User",
        "site_admin": False,
    }
    repo_url = "https://api.github.com/repos/acme/shop"
    comment_id = 5_550_000 + delivery_no
    words = "/audit tables=orders,order_items " + "The order page got slow after Monday. " * 200
    return {
        "action": "created",
        "issue": {
            "url": f"{repo_url}/issues/7",
            "html_url": "https://github.com/acme/shop/issues/7",
            "id": 2001,
            "node_id": "I_kwDOAAAAds4AAAfR",
            "number": 7,
            "title": "Checkout is slow",
            "user": user,
            "labels": [{"id": 1, "name": "performance", "color": "d73a4a", "default": False}],
            "state": "open",
            "locked": False,
            "comments": 3,
            "created_at": "2026-11-27T15:00:00Z",
            "updated_at": "2026-11-28T09:00:00Z",
            "author_association": "MEMBER",
            "body": "p95 of the order page doubled this week.",
        },
        "comment": {
            "url": f"{repo_url}/issues/comments/{comment_id}",
            "html_url": f"https://github.com/acme/shop/issues/7#issuecomment-{comment_id}",
            "id": comment_id,
            "node_id": "IC_kwDOAAAAds5AAAAB",
            "user": user,
            "created_at": "2026-11-28T09:00:00Z",
            "updated_at": "2026-11-28T09:00:00Z",
            "author_association": "MEMBER",
            "body": words[:COMMENT_BYTES],
            "reactions": {"url": f"{repo_url}/issues/comments/1/reactions", "total_count": 0},
        },
        "repository": {
            "id": 118,
            "node_id": "R_kgDOAAAAdg",
            "name": "shop",
            "full_name": "acme/shop",
            "private": True,
            "owner": user | {"login": "acme", "id": 900, "type": "Organization"},
            "html_url": "https://github.com/acme/shop",
            "description": "The shop",
            "fork": False,
            "url": repo_url,
            "created_at": "2024-01-05T10:00:00Z",
            "updated_at": "2026-11-28T09:00:00Z",
            "pushed_at": "2026-11-28T08:55:00Z",
            "default_branch": "main",
            "visibility": "private",
        },
        "organization": {"login": "acme", "id": 900, "node_id": "O_kgDOAAAAhA"},
        "sender": user,
        "installation": {"id": 42, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNDI="},
    }


def _request(host: str, event: str, delivery_no: int, secret: str) -> Request:
    body = json.dumps(_payload(delivery_no)).encode()
    delivery_id = str(uuid.uuid4())
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: GitHub-Hookshot/bench\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"X-GitHub-Event: {event}\r\nX-GitHub-Delivery: {delivery_id}\r\n"
        f"X-GitHub-Hook-ID: 480001\r\nX-GitHub-Hook-Installation-Target-Type: integration\r\n"
        f"X-GitHub-Hook-Installation-Target-ID: 1\r\n"
        f"X-Hub-Signature-256: sha256={signature}\r\n\r\n"
    )
    return Request(delivery_id, head.encode() + body)


# ---------------------------------------------------------------------- the client


async def _read_response(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response with a Content-Length body; returns its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def _connection(
    host: str, port: int, requests: list[Request], latencies: list[float], statuses: list[int]
) -> None:
    """One keep-alive connection sending its requests one after another (like a GitHub worker)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for request in requests:
            started = time.perf_counter()
            writer.write(request.wire)
            statuses.append(await _read_response(reader))
            latencies.append(time.perf_counter() - started)
    finally:
        writer.close()
        await writer.wait_closed()


async def _drive(
    url: str, requests: list[Request], concurrency: int
) -> tuple[list[float], list[int], float]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    latencies: list[float] = []
    statuses: list[int] = []
    shares = [requests[i::concurrency] for i in range(concurrency)]
    started = time.perf_counter()
    await asyncio.gather(*(_connection(host, port, s, latencies, statuses) for s in shares if s))
    return latencies, statuses, time.perf_counter() - started


async def _open_loop(
    url: str, requests: list[Request], rate: float, connections: int
) -> tuple[list[float], list[int], float]:
    """Send at a fixed rate whatever the answers (open loop, as GitHub does); latency counts
    from when each request was due, so a stalled server cannot hide its queue."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(await asyncio.open_connection(host, port))
    latencies: list[float] = []
    statuses: list[int] = []

    async def send(request: Request, due: float) -> None:
        reader, writer = await idle.get()
        writer.write(request.wire)
        statuses.append(await _read_response(reader))
        latencies.append(time.perf_counter() - due)
        idle.put_nowait((reader, writer))

    start = time.perf_counter() + 0.05  # not loop.time(): uvloop's has millisecond resolution
    in_flight: set[asyncio.Task[None]] = set()
    for i, request in enumerate(requests):
        due = start + i / rate
        if (delay := due - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(send(request, due))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    while in_flight:
        await asyncio.gather(*in_flight)
    seconds = time.perf_counter() - start
    while not idle.empty():
        _, writer = idle.get_nowait()
        writer.close()
    return latencies, statuses, seconds


def _rate_phase(
    name: str, url: str, requests: list[Request], rate: float, connections: int
) -> Result:
    _use_uvloop()
    latencies, statuses, seconds = asyncio.run(_open_loop(url, requests, rate, connections))
    counted: dict[int, int] = {}
    for status in statuses:
        counted[status] = counted.get(status, 0) + 1
    return Result(name, len(latencies), seconds, latencies, counted)


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """No collector pauses in the client while it times (they would count as server latency)."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _use_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()


def _client_process(
    args: tuple[str, list[Request], int, float],
) -> tuple[list[float], list[int], float, float]:
    """One client process: wait for the common start time, then drive its share."""
    url, requests, concurrency, start_at = args
    _use_uvloop()
    with _no_gc():
        time.sleep(max(0.0, start_at - time.time()))
        begun = time.time()
        latencies, statuses, _ = asyncio.run(_drive(url, requests, concurrency))
    return latencies, statuses, begun, time.time()


@dataclass(frozen=True, slots=True)
class Result:
    """Figures of one phase."""

    name: str
    count: int
    seconds: float
    latencies: list[float]
    statuses: dict[int, int]

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def line(self) -> str:
        return (
            f"{self.name:<22} {self.count:>6} req  {self.rate:>8.0f}/s   "
            f"p50 {self.percentile(0.50):6.2f} ms  p95 {self.percentile(0.95):6.2f} ms  "
            f"p99 {self.percentile(0.99):6.2f} ms  max {max(self.latencies) * 1000:7.2f} ms  "
            f"statuses {dict(sorted(self.statuses.items()))}"
        )


def _phase(name: str, url: str, requests: list[Request], concurrency: int, clients: int) -> Result:
    per_client = max(1, concurrency // clients)
    start_at = time.time() + 0.5
    jobs = [(url, requests[i::clients], per_client, start_at) for i in range(clients)]
    if clients == 1:
        results = [_client_process(jobs[0])]
    else:
        with multiprocessing.get_context("fork").Pool(clients) as pool:
            results = pool.map(_client_process, jobs)
    latencies = [x for r in results for x in r[0]]
    statuses: dict[int, int] = {}
    for r in results:
        for status in r[1]:
            statuses[status] = statuses.get(status, 0) + 1
    seconds = max(r[3] for r in results) - min(r[2] for r in results)
    return Result(name, len(latencies), seconds, latencies, statuses)


# ---------------------------------------------------------------------- the services


@contextlib.contextmanager
def _redis(url: str | None, base: Path) -> Iterator[str]:
    if url:
        yield url
        return
    try:
        server = RedisServer(base)
    except RedisMissing as err:
        sys.exit(f"{err}, and no --redis-url")
    with server:
        yield server.url


@contextlib.contextmanager
def _store(dsn: str | None, base: Path, *, fast: bool) -> Iterator[str]:
    if dsn:
        yield dsn
        return
    server = EmbeddedPostgres(base / "store-pg18", preload=(), fast=fast)
    try:
        dsn = prepare_local_store(server)
        yield dsn
    finally:
        server.stop()


@contextlib.contextmanager
def _web(store_dsn: str, redis_url: str, base: Path, log_level: str) -> Iterator[str]:
    port = free_port()
    env = os.environ | {
        "DBARCH_STORE_DSN": store_dsn,
        "DBARCH_REDIS_URL": redis_url,
        "DBARCH_GITHUB_WEBHOOK_SECRET": SECRET,
        "DBARCH_WEB_PORT": str(port),
        "DBARCH_INBOX_RECOVERY_SECONDS": "30",
    }
    args = [sys.executable, "-m", "app.cli", "--log-format", "json", "--log-level", log_level]
    log_path = base / "web.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen([*args, "serve"], env=env, cwd=ROOT, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: _dependencies_up(httpx.get(f"{url}/healthz").json()), "the web process")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        print(f"web log: {log_path} ({log_path.stat().st_size // 1024} KiB)", file=sys.stderr)


def _wait(probe: object, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if probe():  # type: ignore[operator]
                return
        except Exception:  # noqa: S110 - not up yet
            pass
        if time.monotonic() > deadline:
            sys.exit(f"{what} did not come up in {timeout_s:.0f}s")
        time.sleep(0.1)


def _check(store_dsn: str | None, redis_url: str | None, requests: list[Request]) -> str:
    """Every accepted delivery must be in the inbox and in the events queue."""
    ids = [r.delivery_id for r in requests]
    notes = []
    if store_dsn:
        with psycopg.connect(store_dsn) as conn:
            row = conn.execute(
                "SELECT count(*) FROM webhook_inbox WHERE delivery_id = ANY(%s)", (ids,)
            ).fetchone()
        notes.append(f"inbox {row[0] if row else 0}/{len(ids)}")
    if redis_url:
        with redis.Redis.from_url(redis_url) as client:
            scores = client.zmscore(EVENTS_QUEUE, [f"delivery:{i}" for i in ids])
        notes.append(f"queued {sum(s is not None for s in scores)}/{len(ids)}")
    return ", ".join(notes)


# ---------------------------------------------------------------------- main


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--rate", type=float, default=1000, help="deliveries/s of the open-loop phases"
    )
    parser.add_argument("--seconds", type=float, default=10, help="length of each rate phase")
    parser.add_argument(
        "--connections", type=int, default=64, help="connections of the open-loop phases"
    )
    parser.add_argument(
        "-n", "--deliveries", type=int, default=10_000, help="requests per saturation phase"
    )
    parser.add_argument(
        "-c", "--concurrency", type=int, default=16, help="connections, saturation phases"
    )
    parser.add_argument("--clients", type=int, default=2, help="client processes, saturation")
    parser.add_argument("--warmup", type=int, default=1_000)
    parser.add_argument("--url", help="a running receiver (needs --secret); nothing is started")
    parser.add_argument("--secret", default=SECRET)
    parser.add_argument("--store-dsn", help="an upgraded store instead of an embedded one")
    parser.add_argument("--redis-url", help="a Redis instead of a private redis-server")
    parser.add_argument(
        "--fast-store", action="store_true", help="embedded store with fsync off (not durable)"
    )
    parser.add_argument("--log-level", default="info", help="the web process's log level")
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    base = Path(tempfile.mkdtemp(prefix="dbarch-bench-webhooks-"))
    base.chmod(0o755)  # the store may run as an unprivileged account
    try:
        with contextlib.ExitStack() as stack:
            if args.url:
                url, store_dsn, redis_url = args.url, args.store_dsn, args.redis_url
            else:
                store_dsn = stack.enter_context(_store(args.store_dsn, base, fast=args.fast_store))
                upgrade_store(store_dsn)
                redis_url = stack.enter_context(_redis(args.redis_url, base))
                url = stack.enter_context(_web(store_dsn, redis_url, base, args.log_level))
            _run(args, url, store_dsn, redis_url)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _run(args: argparse.Namespace, url: str, store_dsn: str | None, redis_url: str | None) -> None:
    host = urlsplit(url).netloc
    secret = args.secret if args.url else SECRET
    at_rate = int(args.rate * args.seconds)
    print(f"signing {args.warmup + 2 * (at_rate + args.deliveries)} requests …", file=sys.stderr)

    def batch(event: str, count: int) -> list[Request]:
        return [_request(host, event, i, secret) for i in range(count)]

    warmup = batch("issue_comment", args.warmup)
    ignored_rate, accepted_rate = batch("star", at_rate), batch("issue_comment", at_rate)
    ignored_max, accepted_max = (
        batch("star", args.deliveries),
        batch("issue_comment", args.deliveries),
    )
    print(
        f"payload {len(accepted_rate[0].wire) / 1024:.1f} KiB per request; open loop at "
        f"{args.rate:.0f}/s on {args.connections} connections, then saturation with "
        f"{args.concurrency} connections from {args.clients} client process(es)",
        file=sys.stderr,
    )
    _phase("warm-up", url, warmup, args.concurrency, args.clients)
    results = [
        _rate_phase(f"ignored @ {args.rate:.0f}/s", url, ignored_rate, args.rate, args.connections),
        _rate_phase(
            f"accepted @ {args.rate:.0f}/s", url, accepted_rate, args.rate, args.connections
        ),
        _phase("ignored, saturated", url, ignored_max, args.concurrency, args.clients),
        _phase("accepted, saturated", url, accepted_max, args.concurrency, args.clients),
    ]
    for result in results:
        print(result.line())
    base, run = results[0], results[1]
    p50_ratio = run.percentile(0.5) / base.percentile(0.5)
    p99_ratio = run.percentile(0.99) / base.percentile(0.99)
    print(
        f"inbox + enqueue at {args.rate:.0f}/s: p50 ×{p50_ratio:.2f}, p99 ×{p99_ratio:.2f} of "
        f"the ignored baseline; saturated throughput ×{results[3].rate / results[2].rate:.2f}"
    )
    print(f"check: {_check(store_dsn, redis_url, accepted_rate + accepted_max)}")
    goal = run.rate >= 0.98 * 1000 and run.percentile(0.99) < 20 and results[3].rate >= 1000
    print(f"goal ≥ 1000 deliveries/s at p99 < 20 ms: {'met' if goal else 'NOT met'}")


def _dependencies_up(health: dict[str, object]) -> bool:
    """Store and Redis answer (no worker runs in this benchmark: /healthz says degraded)."""
    return health.get("store") == "ok" and health.get("redis") == "ok"


if __name__ == "__main__":
    main()
