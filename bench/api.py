"""The admin API on a store with 10,000 audits: p50/p95/p99 per endpoint against /healthz.

It starts everything itself: an embedded PostgreSQL 18 as the store (upgraded to head), a
private redis-server, and ONE web process (``dbarchitect serve``: uvicorn, one worker) with an
admin token. It loads, with COPY:

- ``--audits`` audits (default 10,000) over 24 repositories, each finished one with a report
  shaped like ``app.engine.render.to_json`` (2 to 5 recommendations with 2 to 5 measured
  statements each, breakdowns, reviewer memory, validation: about 5 to 20 KB of JSON), a few
  failed (no report) and a few still running;
- ``--recommendations`` ledger rows (2,000), ``--feedback`` reviewer feedback rows (1,000,
  half with a 384-d embedding) and a few ignores;

then sends ``-n`` requests per endpoint, one after another on one keep-alive connection
(after a warm-up), and prints p50/p95/p99 per endpoint, the p95 as a multiple of the
``/healthz`` baseline of the same run, and whether p95 < 50 ms. It checks the answers (page
sizes and order, filters, every audit's recommendation count, walking every list to the end
gives every row): wrong results exit 1; slowness alone does not.

    python bench/api.py                       # 10 000 audits, 500 requests per endpoint
    python bench/api.py --audits 2000 -n 200
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.adapters.pgserver import EmbeddedPostgres, free_port  # noqa: E402
from app.adapters.redis_server import RedisMissing, RedisServer  # noqa: E402
from app.adapters.store import prepare_local_store, upgrade_store  # noqa: E402

TOKEN = "bench-admin-token"  # noqa: S105 - the bench's own web process
GOAL_P95_MS = 50.0
PAGE = 50
REPOSITORIES = [f"acme/service-{n:02d}" for n in range(24)]
TABLES = {
    "public.orders": ["customer_id", "created_at", "status", "total_cents", "shipped_at"],
    "public.order_items": ["order_id", "product_id", "quantity", "price_cents"],
    "public.customers": ["email", "country", "created_at", "last_seen_at"],
    "public.events": ["account_id", "kind", "occurred_at", "payload_id"],
    "sales.invoices": ["customer_id", "issued_at", "due_at", "state"],
    "public.sessions": ["user_id", "expires_at", "token_hash"],
}
STATES = ["proposed"] * 4 + ["pr_open"] * 3 + ["merged"] * 2 + ["ignored", "superseded"]
CLASSIFICATIONS = ["accept", "reject", "concern", "question", None]
SOURCES = ["review", "review_comment", "comment", "merge", "close", "command"]


# ---------------------------------------------------------------------- the data


def _query(rng: random.Random, table: str, columns: list[str], write: bool) -> str:
    """A normalised statement ($n placeholders) of 200 to 1,500 characters."""
    if write:
        names = ", ".join(columns)
        values = ", ".join(f"${i + 1}" for i in range(len(columns)))
        return f"INSERT INTO {table} ({names}) VALUES ({values})"
    picked = rng.sample(columns, k=min(len(columns), rng.randint(1, 3)))
    where = " AND ".join(f"t.{c} = ${i + 1}" for i, c in enumerate(picked))
    listed = ", ".join(f"t.{c}" for c in columns)
    extra = " ".join(
        f"LEFT JOIN public.audit_trail a{i} ON a{i}.ref_id = t.id AND a{i}.kind = ${i + 10}"
        for i in range(rng.randint(0, 12))
    )
    return (
        f"SELECT t.id, {listed} FROM {table} t {extra} WHERE {where} "
        f"ORDER BY t.{columns[0]} DESC LIMIT ${len(picked) + 1}"
    )


def _side(rng: random.Random, ms: float) -> dict[str, Any]:
    return {
        "cost": round(ms * rng.uniform(80, 200), 2),
        "ms_p50": round(ms, 3),
        "ms_p95": round(ms * rng.uniform(1.05, 1.6), 3),
        "buffers": rng.randint(4, 40_000),
    }


def _recommendation(rng: random.Random, audit_no: int, n: int) -> dict[str, Any]:
    table = rng.choice(list(TABLES))
    columns = rng.sample(TABLES[table], k=rng.randint(1, 3))
    rec_id = f"create_index:{(audit_no * 7 + n) & 0xFFFFFFFF:08x}"
    queries = []
    for q in range(rng.randint(2, 5)):
        write = q > 0 and rng.random() < 0.25
        before = rng.uniform(0.05, 0.4) if write else rng.uniform(2, 400)
        after = before * (rng.uniform(1.0, 1.2) if write else rng.uniform(0.005, 0.4))
        queries.append(
            {
                "query": _query(rng, table, TABLES[table], write),
                "calls": rng.randint(10, 2_000_000),
                "write": write,
                "before": _side(rng, before),
                "after": _side(rng, after),
                "parameter_sets": ["common", "histogram", "rare"][: rng.randint(1, 3)],
                "notes": [] if rng.random() < 0.8 else ["rare: 1 of 5 runs timed out"],
            }
        )
    name = f"{table.split('.')[1]}_{'_'.join(columns)}_idx"
    return {
        "id": rec_id,
        "action": "create_index",
        "rule": "missing_index",
        "table": table,
        "columns": columns,
        "include": [],
        "where": None if rng.random() < 0.8 else "deleted_at IS NULL",
        "using": "btree",
        "index_name": name,
        "ddl": f"CREATE INDEX CONCURRENTLY {name} ON {table} ({', '.join(columns)})",
        "size_bytes": rng.randint(8192, 2_000_000_000),
        "confidence": round(rng.uniform(0.5, 0.99), 3),
        "confidence_breakdown": {
            "measured_speedup": round(rng.uniform(0, 0.6), 3),
            "workload_share": round(rng.uniform(0, 0.2), 3),
            "plan_uses_index": 0.1,
            "write_overhead": round(-rng.uniform(0, 0.1), 3),
            "reviewer_memory": round(rng.uniform(-0.05, 0.05), 3),
        },
        "reviewer_memory": [
            f"- @reviewer{rng.randint(1, 40)} on #{rng.randint(1, 900)}: "
            "the write load on this table is high at month end (concern)"
        ][: rng.randint(0, 1)],
        "eligible": rng.random() < 0.6,
        "validation": {
            "where": "sandbox",
            "skipped": None,
            "change_ms": round(rng.uniform(5, 90_000), 1),
            "index_bytes": rng.randint(8192, 2_000_000_000),
            "used_by_plans": True,
        },
        "queries": queries,
        "reasons": [
            f"serves {len(queries)} statements on {table}",
            "equality on the leading columns, then the sort key",
        ],
    }


def _report(rng: random.Random, audit_no: int, recs: int) -> dict[str, Any]:
    return {
        "version": 1,
        "target": {"server_version": "18.1", "database": "app", "hypopg": rng.random() < 0.5},
        "workload": {"statements": 140, "analyzed": 121, "skipped": 19},
        "whatif": {"method": "hypopg", "calls": rng.randint(50, 2000)},
        "estimated_workload_cost": {"before": 918_220.5, "after": 401_772.1},
        "min_confidence": 0.8,
        "recommendations": [_recommendation(rng, audit_no, n) for n in range(recs)],
        "rejected": [
            {"candidate": f"public.orders (status, c{n})", "reason": "covered by orders_pkey"}
            for n in range(rng.randint(0, 6))
        ],
        "skipped_queries": [
            {"query": "SELECT pg_catalog.set_config($1, $2, $3)", "reason": "housekeeping"}
        ],
    }


@dataclass
class Loaded:
    """What was loaded: the expected answers."""

    audits: int = 0
    recommendations_of: dict[int, int] = field(default_factory=dict)
    audits_of: dict[str, int] = field(default_factory=dict)
    ledger: int = 0
    feedback: int = 0
    report_bytes: list[int] = field(default_factory=list)


def _load_audits(conn: psycopg.Connection[Any], count: int, rng: random.Random) -> Loaded:
    loaded = Loaded()
    start = datetime(2025, 12, 1, tzinfo=UTC)
    columns = (
        "repository, installation_id, trigger, requested_by, status, dry_run, created_at, "
        "started_at, finished_at, summary, report"
    )
    rows = []
    for n in range(count):
        repository = REPOSITORIES[min(len(REPOSITORIES) - 1, int(rng.expovariate(0.15)))]
        created = start + timedelta(minutes=50 * n + rng.randint(0, 40))
        started = created + timedelta(seconds=rng.uniform(0.1, 5))
        running = n >= count - 3
        failed = not running and rng.random() < 0.02
        recs = 0 if running or failed else rng.randint(2, 5)
        report = None if running or failed else _report(rng, n, recs)
        text = None if report is None else json.dumps(report)
        results = {r["id"]: rng.choice(["opened #{}", "would open", "held back"]).format(n)
                   for r in (report or {}).get("recommendations", [])}  # fmt: skip
        summary = {
            "title": f"{recs} recommendations" if not failed else "the target is unreachable",
            "conclusion": "failure" if failed else "neutral",
            "results": results,
            "dry_run": False,
            "outcome": "failed" if failed else "done",
        }
        rows.append(
            (
                repository,
                42,
                rng.choice(["comment", "dispatch", "schedule", "check_run", "api"]),
                f"dev{rng.randint(1, 30)}",
                "running" if running else ("failed" if failed else "done"),
                False,
                created,
                started,
                None if running else started + timedelta(seconds=rng.uniform(3, 600)),
                None if running else json.dumps(summary),
                text,
            )
        )
        loaded.audits_of[repository] = loaded.audits_of.get(repository, 0) + 1
        if text is not None:
            loaded.report_bytes.append(len(text))
        loaded.recommendations_of[n] = recs  # by position; ids are assigned in order
    with conn.cursor() as cur, cur.copy(f"COPY audits ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    first = conn.execute("SELECT min(id) FROM audits").fetchone()
    base = int(first[0]) if first and first[0] is not None else 1
    loaded.recommendations_of = {base + n: r for n, r in loaded.recommendations_of.items()}
    loaded.audits = count
    return loaded


def _load_ledger(conn: psycopg.Connection[Any], count: int, rng: random.Random) -> None:
    columns = (
        "repository, fingerprint, rec_id, action, table_name, state, confidence, breakdown, "
        "pr_number, descriptor, first_seen, updated_at"
    )
    start = datetime(2025, 12, 1, tzinfo=UTC)
    with conn.cursor() as cur, cur.copy(f"COPY recommendations ({columns}) FROM STDIN") as copy:
        for n in range(count):
            table = rng.choice(list(TABLES))
            columns_ = rng.sample(TABLES[table], k=rng.randint(1, 3))
            seen = start + timedelta(hours=4 * n)
            copy.write_row(
                (
                    rng.choice(REPOSITORIES),
                    f"{n:08x}",
                    f"create_index:{n:08x}",
                    "create_index",
                    table,
                    rng.choice(STATES),
                    round(rng.uniform(0.5, 0.99), 3),
                    json.dumps({"measured_speedup": 0.4, "workload_share": 0.2}),
                    rng.randint(1, 5000) if rng.random() < 0.5 else None,
                    f"add index on {table} ({', '.join(columns_)}), btree",
                    seen,
                    seen + timedelta(hours=rng.randint(0, 500)),
                )
            )


def _load_feedback(conn: psycopg.Connection[Any], count: int, rng: random.Random) -> None:
    columns = (
        "repository, fingerprint, source, source_id, author, body, classification, reason, "
        "table_name, action, created_at, embedding"
    )
    start = datetime(2025, 12, 1, tzinfo=UTC)
    words = "the write load on this table at month end worries me; ".split()
    with conn.cursor() as cur, cur.copy(f"COPY feedback ({columns}) FROM STDIN") as copy:
        for n in range(count):
            classification = rng.choice(CLASSIFICATIONS)
            vector = [rng.uniform(-1, 1) for _ in range(384)] if rng.random() < 0.5 else None
            copy.write_row(
                (
                    rng.choice(REPOSITORIES),
                    f"{rng.randint(0, 1999):08x}",
                    rng.choice(SOURCES),
                    f"review:{n}",
                    f"reviewer{rng.randint(1, 40)}",
                    " ".join(rng.choice(words) for _ in range(rng.randint(10, 250))),
                    classification,
                    None if classification is None else "write load at month end",
                    rng.choice(list(TABLES)),
                    "create_index",
                    start + timedelta(hours=8 * n),
                    None if vector is None else "[" + ",".join(f"{v:.5f}" for v in vector) + "]",
                )
            )
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO ignores (repository, kind, value, author) VALUES (%s, 'table', %s, %s)",
            [(REPOSITORIES[n], f"public.log_{n}", "reviewer1") for n in range(20)],
        )


def load(dsn: str, args: argparse.Namespace) -> Loaded:
    rng = random.Random(args.seed)
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        loaded = _load_audits(conn, args.audits, rng)
        _load_ledger(conn, args.recommendations, rng)
        _load_feedback(conn, args.feedback, rng)
        conn.execute("VACUUM ANALYZE")
        size = conn.execute("SELECT pg_total_relation_size('audits')").fetchone()
    loaded.ledger, loaded.feedback = args.recommendations, args.feedback
    sizes = sorted(loaded.report_bytes)
    print(
        f"loaded {args.audits} audits ({len(sizes)} reports: median "
        f"{sizes[len(sizes) // 2] / 1024:.1f} KB, p5 {sizes[len(sizes) // 20] / 1024:.1f} KB, "
        f"p95 {sizes[len(sizes) * 19 // 20] / 1024:.1f} KB; audits table "
        f"{(size[0] if size else 0) / 2**20:.0f} MiB), {args.recommendations} ledger rows, "
        f"{args.feedback} feedback rows in {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )
    return loaded


# ---------------------------------------------------------------------- the services


@contextlib.contextmanager
def _store(base: Path) -> Iterator[str]:
    server = EmbeddedPostgres(base / "store-pg18", preload=(), fast=True)
    try:
        yield prepare_local_store(server)
    finally:
        server.stop()


@contextlib.contextmanager
def _redis(base: Path) -> Iterator[str]:
    try:
        server = RedisServer(base / "redis")
    except RedisMissing as err:
        sys.exit(str(err))
    with server:
        yield server.url


@contextlib.contextmanager
def _web(store_dsn: str, redis_url: str, base: Path) -> Iterator[str]:
    port = free_port()
    env = os.environ | {
        "DBARCH_STORE_DSN": store_dsn,
        "DBARCH_REDIS_URL": redis_url,
        "DBARCH_ADMIN_TOKEN": TOKEN,
        "DBARCH_WEB_PORT": str(port),
    }
    args = [sys.executable, "-m", "app.cli", "--log-format", "json", "--log-level", "warning"]
    log_path = base / "web.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen([*args, "serve"], env=env, cwd=ROOT, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if _dependencies_up(httpx.get(f"{url}/healthz").json()):
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"the web process did not come up; its log:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


# ---------------------------------------------------------------------- measuring


@dataclass
class Result:
    """Latencies of one endpoint."""

    name: str
    latencies: list[float]
    statuses: dict[int, int]

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def measure(client: httpx.Client, name: str, urls: list[str], warmup: int) -> Result:
    """Send ``urls`` one after another on the client's keep-alive connection."""
    for url in urls[:warmup]:
        client.get(url)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    gc.collect()
    gc.disable()  # no collector pauses in the client while it times
    try:
        for url in urls:
            started = time.perf_counter()
            response = client.get(url)
            latencies.append(time.perf_counter() - started)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    finally:
        gc.enable()
    return Result(name, latencies, statuses)


def _walk(client: httpx.Client, path: str, key: str) -> list[int]:
    """Every id of a list, following ``next_before`` with the largest pages."""
    ids: list[int] = []
    before = None
    while True:
        params = {"limit": 200} | ({"before": before} if before else {})
        body = client.get(path, params=params).raise_for_status().json()
        ids.extend(item["id"] for item in body[key])
        before = body["next_before"]
        if before is None:
            return ids


def check(client: httpx.Client, loaded: Loaded, rng: random.Random) -> list[str]:
    """What the API answered wrong (empty: all right)."""
    problems: list[str] = []

    def expect(ok: bool, what: str) -> None:
        if not ok:
            problems.append(what)

    first = client.get("/api/audits").json()
    ids = [a["id"] for a in first["audits"]]
    newest = max(loaded.recommendations_of)
    expect(len(ids) == PAGE and ids[0] == newest, f"first page: {len(ids)} audits from {ids[:1]}")
    expect(ids == sorted(ids, reverse=True), "first page not newest first")
    expect(first["next_before"] == ids[-1], "first page: next_before is not its last id")
    before = newest - loaded.audits // 2
    deep = [a["id"] for a in client.get(f"/api/audits?before={before}").json()["audits"]]
    expect(deep == list(range(before - 1, before - 1 - PAGE, -1)), "deep page: wrong ids")
    for repository, count in list(loaded.audits_of.items())[:5]:
        page = client.get("/api/audits", params={"repository": repository}).json()["audits"]
        expect(
            len(page) == min(PAGE, count) and {a["repository"] for a in page} == {repository},
            f"filter {repository}: {len(page)} audits",
        )
    for audit_id in rng.sample(sorted(loaded.recommendations_of), 200):
        body = client.get(f"/api/audits/{audit_id}").json()
        got = len(body.get("recommendations", []))
        expect(
            got == loaded.recommendations_of[audit_id],
            f"audit {audit_id}: {got} recommendations, {loaded.recommendations_of[audit_id]} kept",
        )
    expect(client.get("/api/audits/999999999").status_code == 404, "unknown audit is not 404")
    for path, key, total in (
        ("/api/audits", "audits", loaded.audits),
        ("/api/recommendations", "recommendations", loaded.ledger),
        ("/api/feedback", "feedback", loaded.feedback),
    ):
        walked = _walk(client, path, key)
        expect(len(walked) == total == len(set(walked)), f"{path}: walked {len(walked)} of {total}")
    opened = client.get("/api/recommendations?state=pr_open").json()["recommendations"]
    expect(bool(opened) and {r["state"] for r in opened} == {"pr_open"}, "state filter")
    memory = client.get("/api/memory").json()
    expect(sum(item["count"] for item in memory["learned"]) > 0, "memory learned nothing")
    unauthorised = httpx.get(str(client.base_url.join("/api/audits"))).status_code
    expect(unauthorised == 401, f"no token answered {unauthorised}")
    return problems


def _endpoints(loaded: Loaded, n: int, rng: random.Random) -> list[tuple[str, list[str]]]:
    ids = sorted(loaded.recommendations_of)
    busiest = max(loaded.audits_of, key=lambda r: loaded.audits_of[r])
    quiet = min(loaded.audits_of, key=lambda r: loaded.audits_of[r])
    deep = ids[: len(ids) // 10]  # the oldest tenth: pages far down the history
    return [
        ("GET /healthz (baseline)", ["/healthz"] * n),
        ("GET /api/audits", ["/api/audits"] * n),
        (
            "GET /api/audits?before= (deep)",
            [f"/api/audits?before={rng.choice(deep)}" for _ in range(n)],
        ),
        (f"GET /api/audits?repository= ({busiest})", [f"/api/audits?repository={busiest}"] * n),
        (f"GET /api/audits?repository= ({quiet})", [f"/api/audits?repository={quiet}"] * n),
        ("GET /api/audits/{id}", [f"/api/audits/{rng.choice(ids)}" for _ in range(n)]),
        ("GET /api/recommendations", ["/api/recommendations"] * n),
        ("GET /api/recommendations?state=", ["/api/recommendations?state=merged"] * n),
        ("GET /api/feedback", ["/api/feedback"] * n),
        ("GET /api/memory", ["/api/memory"] * n),
    ]


def report(results: list[Result]) -> bool:
    base = results[0].percentile(0.95)
    print(
        f"{'endpoint':<46} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
        f"{'p95 ×base':>10}  p95 < {GOAL_P95_MS:.0f} ms"
    )
    met = True
    for result in results:
        p95 = result.percentile(0.95)
        ok = p95 < GOAL_P95_MS
        met &= ok
        print(
            f"{result.name:<46} {len(result.latencies):>5} {result.percentile(0.5):>8.2f} "
            f"{p95:>8.2f} {result.percentile(0.99):>8.2f} {p95 / base:>10.1f}  "
            f"{'yes' if ok else 'NO'}"
        )
    return met


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--audits", type=int, default=10_000)
    parser.add_argument("--recommendations", type=int, default=2_000)
    parser.add_argument("--feedback", type=int, default=1_000)
    parser.add_argument("-n", "--requests", type=int, default=500, help="per endpoint")
    parser.add_argument("--warmup", type=int, default=50, help="requests per endpoint, untimed")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--keep", action="store_true", help="leave the temporary dir behind")
    return parser.parse_args()


def main() -> int:
    args = _arguments()
    if args.audits < 2_000:
        sys.exit("--audits must be 2000 or more (the checks page through the history)")
    base = Path(tempfile.mkdtemp(prefix="dbarch-bench-api-"))
    base.chmod(0o755)  # the store may run as an unprivileged account
    try:
        with contextlib.ExitStack() as stack:
            dsn = stack.enter_context(_store(base))
            upgrade_store(dsn)
            loaded = load(dsn, args)
            redis_url = stack.enter_context(_redis(base))
            url = stack.enter_context(_web(dsn, redis_url, base))
            return _run(args, url, loaded)
    finally:
        if args.keep:
            print(f"kept {base}", file=sys.stderr)
        else:
            shutil.rmtree(base, ignore_errors=True)


def _run(args: argparse.Namespace, url: str, loaded: Loaded) -> int:
    rng = random.Random(args.seed + 1)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with httpx.Client(base_url=url, headers=headers, limits=limits, timeout=30) as client:
        endpoints = _endpoints(loaded, args.requests, rng)
        results = [measure(client, name, urls, args.warmup) for name, urls in endpoints]
        problems = check(client, loaded, rng)
    met = report(results)
    wrong = {r.name: r.statuses for r in results if set(r.statuses) != {200}}
    problems += [f"{name}: statuses {statuses}" for name, statuses in wrong.items()]
    print(f"goal p95 < {GOAL_P95_MS:.0f} ms on every /api endpoint: {'met' if met else 'NOT met'}")
    if problems:
        print("WRONG RESULTS:\n  " + "\n  ".join(problems[:20]), file=sys.stderr)
        return 1
    print("checks: every answer right (pages, filters, counts, walks, 401, 404)")
    return 0


def _dependencies_up(health: dict[str, object]) -> bool:
    """Store and Redis answer (no worker runs in this benchmark: /healthz says degraded)."""
    return health.get("store") == "ok" and health.get("redis") == "ok"


if __name__ == "__main__":
    sys.exit(main())
