"""Reviewer memory at scale: embedding throughput, COPY loading and k-NN latency at 100k rows.

It starts its own embedded PostgreSQL 18 store (pgvector) in a temporary directory, upgrades
it to head, and measures the paths an audit and the feedback ingestion take:

1. embedding: ``--embed`` generated reviewer-feedback texts (tables × themes × phrasings)
   through the real model, one call per text (baseline, on a few hundred) vs the adapter's
   batched call;
2. loading: ``--rows`` feedback rows (the embedded vectors spread, seeded: each moved part of
   the way towards another text's vector, plus a little noise, so the HNSW index sees distinct
   vectors near real ones) through ``Memory.add_feedback`` in COPY-sized chunks,
   against 2,000 rows in chunks below ``COPY_THRESHOLD`` (pipelined executemany);
3. k-NN: ``--queries`` vectors of held-out texts through ``Memory.nearest_feedback`` (HNSW,
   then the same-repository re-rank), then the same calls with a wider search
   (``hnsw.ef_search`` 100) and as exact scans (index scans off), with recall@k.

It checks that every row is stored, that the planner uses the HNSW index, and that recall is
at least 0.8 (exit status 1 otherwise; slowness alone is reported, not an error).

    python bench/memory.py                              # 100 000 rows, 1 000 queries
    python -m bench.memory --rows 300 --queries 20 --embed 40
    python bench/memory.py --keep                       # leave the store dir behind
    python bench/memory.py --mix 0 --noise 0.03         # isotropic noise only (harder)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import random
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pgvector import Vector

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.adapters.embed import DIMENSION, Embedder, ModelError  # noqa: E402
from app.adapters.memory import (  # noqa: E402
    COPY_THRESHOLD,
    EF_SEARCH_DEFAULT,
    OVERFETCH,
    Q_NEAREST,
    FeedbackRow,
    Memory,
    _vectors,
)
from app.adapters.pgserver import EmbeddedPostgres  # noqa: E402
from app.adapters.store import Store, open_store, prepare_local_store, upgrade_store  # noqa: E402
from app.log import configure_logging  # noqa: E402
from app.settings import get_settings  # noqa: E402

SEED = 20261128
GOAL_P99_MS = 10.0
MIN_RECALL = 0.8
CHUNK = 2_000  # rows per add_feedback call on the COPY path
BASELINE_ROWS = 2_000  # rows through executemany, in chunks just below COPY_THRESHOLD
ONE_BY_ONE = 300  # texts embedded one call each (the embedding baseline)
WARMUP_QUERIES = 50
WIDE_EF = 100  # the comparison search width

TABLES = (
    "orders order_items customers payments invoices shipments products inventory events "
    "sessions users accounts audit_log carts coupons refunds subscriptions plans tenants "
    "messages notifications api_keys webhooks jobs reviews addresses warehouses suppliers "
    "price_history page_views"
).split()
COLUMNS = "created_at customer_id status sku tenant_id email updated_at user_id region".split()
# classification, the sources it arrives from, what the reviewer says
THEMES = [
    (cls, tuple(sources.split(",")), said)
    for cls, sources, said in (
        line.split(maxsplit=2)
        for line in """
reject review,close {t} is write-heavy, we insert {n}k rows/s
reject review,close another index on {t} would slow the nightly load of {n}M rows
reject review,review_comment {t} is dropped next sprint, no point indexing it
reject review_comment the composite index already covers {t}.{c}
reject review,close {t} is only {n} MB, a sequential scan is fine
accept review,merge the {t} dashboard went from {n} s to under a second
accept review,merge p95 of the {t} lookup by {c} dropped {n}%
accept comment,merge exactly what {t}.{c} needed
concern review_comment building it on {t} blocks writes for {n} min, use CONCURRENTLY
concern review_comment,comment the index on {t}.{c} adds {n} GB and disk is tight
concern comment replication lag on {t} hit {n} s after the last index
question comment,review_comment why {t}.{c} and not a partial index on recent rows?
question comment does this help the {t} report that runs every {n} minutes?
question review_comment what happens to writes on {t} during the build?
""".strip().splitlines()
    )
]
PHRASINGS = {
    "reject": "changes requested: {b}|closing: {b}|not merging, {b}|{b}, so no|-1, {b}".split("|"),
    "accept": "lgtm, {b}|approved: {b}|merged, {b}|nice one, {b}|{b}, shipping it".split("|"),
    "concern": "concern: {b}|ok in principle, but {b}|careful: {b}|{b}; off-peak please".split("|"),
    "question": "question: {b}|{b}|curious: {b}|before I approve: {b}".split("|"),
}
SHORT = (("accept", "merge", "lgtm, merged"), ("reject", "close", "closed without merging"))
REPOSITORIES = [f"{o}/{n}" for o in "acme globex initech umbrella hooli".split() for n in
                "shop billing api search auth ledger crm mail feed reports".split()]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Text:
    """One generated piece of feedback and what it says about which table."""

    body: str
    classification: str
    source: str
    table: str


def feedback_texts(count: int, rng: random.Random) -> list[Text]:
    """``count`` distinct, deterministic texts (the two short ones first)."""
    texts = [Text(body, cls, source, "") for cls, source, body in SHORT][:count]
    seen = {t.body for t in texts}
    while len(texts) < count:
        cls, sources, theme = rng.choice(THEMES)
        table, column = rng.choice(TABLES), rng.choice(COLUMNS)
        number = rng.choice((2, 3, 5, 8, 10, 15, 20, 30, 40, 50, 80, 120, 200, 500))
        said = theme.format(t=table, c=column, n=number)
        body = rng.choice(PHRASINGS[cls]).format(b=said)
        if body not in seen:
            seen.add(body)
            texts.append(Text(body, cls, rng.choice(sources), table))
    return texts


def spread(base: np.ndarray, rows: int, mix: float, noise: float, seed: int) -> np.ndarray:
    """``rows`` distinct unit vectors (float32): row i < len(base) is base vector i; later rows
    move base vector ``i % len(base)`` a random fraction (up to ``mix``) towards another one,
    add isotropic noise of σ ``noise`` per dimension, and renormalise."""
    rng = np.random.default_rng(seed)
    own, other = np.arange(rows) % len(base), rng.integers(0, len(base), rows)
    step = rng.uniform(0, mix, (rows, 1)).astype(np.float32)
    out = base[own] + step * (base[other] - base[own])
    out += rng.standard_normal(out.shape, dtype=np.float32) * noise
    out[: len(base)] = base[: min(rows, len(base))]
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, in the values' unit."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


async def timed(calls: Sequence[Callable[[], Awaitable[Any]]]) -> tuple[list[float], list[Any]]:
    """Run ``calls`` one after another; each one's latency in ms and its result."""
    latencies: list[float] = []
    results: list[Any] = []
    gc.collect()
    gc.disable()  # no collector pauses inside the timed calls
    try:
        for call in calls:
            started = time.perf_counter()
            results.append(await call())
            latencies.append((time.perf_counter() - started) * 1000)
    finally:
        gc.enable()
    return latencies, results


# ---------------------------------------------------------------------- the phases


async def embedding_phase(
    embedder: Embedder, corpus: list[Text], queries: list[Text]
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    started = time.perf_counter()
    await asyncio.to_thread(embedder.load)
    await embedder.embed([t.body for t in corpus[:8]])  # warm the session
    print(f"model loaded and warm in {time.perf_counter() - started:.1f} s")
    singles = [t.body for t in corpus[:ONE_BY_ONE]]
    started = time.perf_counter()
    one_by_one = [(await embedder.embed([text]))[0] for text in singles]
    single_rate = len(singles) / (time.perf_counter() - started)
    started = time.perf_counter()
    batched = await embedder.embed([t.body for t in corpus])
    batched_rate = len(corpus) / (time.perf_counter() - started)
    query_vectors = await embedder.embed([t.body for t in queries])
    base = np.asarray(batched, dtype=np.float32)
    agree = float(np.min(np.sum(np.asarray(one_by_one) * base[: len(singles)], axis=1)))
    print(
        f"embedding: 1 per call {single_rate:7.1f} texts/s ({len(singles)} texts); batched "
        f"(batch {embedder.batch_size}) {batched_rate:7.1f} texts/s ({len(corpus)} texts): "
        f"×{batched_rate / single_rate:.1f}; min cosine single vs batched {agree:.4f}"
    )
    norms = np.linalg.norm(base, axis=1)
    if base.shape[1] != DIMENSION or not np.allclose(norms, 1.0, atol=1e-3) or agree < 0.99:
        raise BenchError(f"unexpected vectors: shape {base.shape}, agreement {agree:.4f}")
    figures = {"single": single_rate, "batched": batched_rate}
    return base, np.asarray(query_vectors, dtype=np.float32), figures


def feedback_rows(
    vectors: np.ndarray, texts: list[Text], start: int, stop: int, rng: random.Random
) -> list[FeedbackRow]:
    """Rows ``start`` to ``stop``: text ``i % len(texts)``, vector i, a random repository."""
    return [
        FeedbackRow(
            repository=rng.choice(REPOSITORIES),
            source=(text := texts[i % len(texts)]).source,
            author=f"reviewer{rng.randrange(200)}",
            body=text.body,
            classification=text.classification,
            reason=f"bench: {text.classification}",
            table_name=f"public.{text.table}" if text.table else None,
            action="create_index",
            embedding=vectors[i].tolist(),
        )
        for i in range(start, stop)
    ]


async def load_phase(
    memory: Memory, vectors: np.ndarray, texts: list[Text], rows: int, baseline: int
) -> dict[str, float]:
    rng = random.Random(SEED)
    stored, timings = 0, []
    for start in range(0, rows, CHUNK):
        chunk = feedback_rows(vectors, texts, start, min(rows, start + CHUNK), rng)
        began = time.perf_counter()
        stored += len(await memory.add_feedback(chunk))
        timings.append((len(chunk), time.perf_counter() - began))
    copy_s = sum(t[1] for t in timings)
    copy_rate, tail = rows / copy_s, timings[-5:]  # the last 10,000 rows: at full size
    tail_rows = sum(t[0] for t in tail)
    last_rate = tail_rows / sum(t[1] for t in tail)
    small = COPY_THRESHOLD - 1
    extra = feedback_rows(vectors, texts, rows, rows + baseline, rng)
    began = time.perf_counter()
    for start in range(0, baseline, small):
        stored += len(await memory.add_feedback(extra[start : start + small]))
    many_rate = baseline / (time.perf_counter() - began)
    print(
        f"loading: COPY {rows:,} rows in chunks of {CHUNK:,}: {copy_rate:.0f} rows/s ({copy_s:.1f}"
        f" s; the last {tail_rows:,} {last_rate:.0f}/s); executemany {baseline:,} rows in chunks "
        f"of {small}: {many_rate:.0f} rows/s; COPY ×{last_rate / many_rate:.2f} at the same size"
    )
    if stored != rows + baseline:
        raise BenchError(f"{rows + baseline} rows sent, {stored} ids returned")
    return {"copy": copy_rate, "copy_full": last_rate, "many": many_rate}


#: From this many rows on, the k-NN query must use the HNSW index.
HNSW_EXPECTED_FROM = 20_000


async def plans(store: Store, vector: np.ndarray, limit: int, expected: int) -> None:
    """Every row is there; the planner uses the HNSW index, and the exact baseline does not."""
    params = {"v": Vector(vector), "limit": limit, "account": "acme/%"}
    async with store.pool.connection() as conn:
        await _vectors(conn)
        await conn.execute("VACUUM (ANALYZE) feedback")  # no autovacuum while timing
        indexed = [
            r[0] for r in await (await conn.execute(f"EXPLAIN {Q_NEAREST}", params)).fetchall()
        ]
        async with conn.transaction():
            await conn.execute("SET LOCAL enable_indexscan = off")
            cur = await conn.execute(f"EXPLAIN {Q_NEAREST}", params)
            exact = [r[0] for r in await cur.fetchall()]
        count = (await (await conn.execute("SELECT count(*) FROM feedback")).fetchone() or [0])[0]
    print(f"rows stored: {count:,}")
    if count != expected:
        raise BenchError(f"{expected:,} rows loaded but {count:,} stored")
    for name, plan in (("HNSW", indexed), ("exact", exact)):
        text = " / ".join(re.sub(r"'\[[^']*'::vector", "$v", line.strip()) for line in plan)
        print(f"plan ({name}): {text}")
    if not any("feedback_embedding_idx" in line for line in indexed):
        # Over a few thousand rows the planner rightly prefers the account's rows, sorted.
        if expected >= HNSW_EXPECTED_FROM:
            raise BenchError("the k-NN query does not use the HNSW index feedback_embedding_idx")
        print(f"(below {HNSW_EXPECTED_FROM:,} rows an exact scan of the account is cheaper)")
    if any("feedback_embedding_idx" in line for line in exact):
        raise BenchError("the exact baseline still uses the HNSW index")


async def on_the_connection(store: Store, statement: str) -> str:
    """Run ``statement`` (SET, SHOW…) on the pool's one connection; its first value, if any."""
    async with store.pool.connection() as conn:
        cur = await conn.execute(statement)
        row = await cur.fetchone() if cur.description else None
    return str(row[0]) if row else ""


def recall(found: Sequence[Sequence[Any]], truth: Sequence[Sequence[Any]], k: int) -> float:
    """Mean share of the true k neighbours among the k found, over the queries."""
    ids = [[{n.id for n in f}, {n.id for n in t}] for f, t in zip(found, truth, strict=True)]
    return sum(len(f & t) / k for f, t in ids) / len(ids)


async def knn_phase(store: Store, memory: Memory, queries: np.ndarray, k: int) -> dict[str, float]:
    """Three passes of the same ``nearest_feedback`` calls: as configured (HNSW), with a wider
    HNSW search, and as exact scans (index scans off for the pool's one connection)."""
    repos = [REPOSITORIES[i % len(REPOSITORIES)] for i in range(len(queries))]
    calls = [
        lambda v=v, r=r: memory.nearest_feedback(v, repository=r, k=k)
        for v, r in zip(queries.tolist(), repos, strict=True)
    ]
    for call in calls[:WARMUP_QUERIES]:
        await call()
    hnsw_ms, found = await timed(calls)
    await on_the_connection(store, f"SET hnsw.ef_search = {WIDE_EF}")
    wide_ms, wide = await timed(calls)
    await on_the_connection(store, "RESET hnsw.ef_search; SET enable_indexscan = off")
    exact_ms, truth = await timed(calls)
    if await on_the_connection(store, "SHOW enable_indexscan") != "off":
        raise BenchError("the pool replaced its connection: the exact pass was not exact")
    await on_the_connection(store, "RESET enable_indexscan")
    if any(len(f) != k for f in found):
        raise BenchError(f"nearest_feedback returned fewer than k={k} neighbours")
    fig = {"top1": sum(f[0].similarity for f in found) / len(found)}
    for name, ms in (("", hnsw_ms), ("exact_", exact_ms), ("wide_", wide_ms)):
        fig |= {f"{name}p{q}": percentile(ms, q / 100) for q in (50, 95, 99)}
    fig["recall"], fig["wide_recall"] = recall(found, truth, k), recall(wide, truth, k)
    print(
        f"k-NN, {len(queries)} queries, k={k}: nearest_feedback (HNSW) p50 {fig['p50']:.2f} ms  "
        f"p95 {fig['p95']:.2f} ms  p99 {fig['p99']:.2f} ms; exact scan p50 {fig['exact_p50']:.2f}"
        f" ms  p99 {fig['exact_p99']:.2f} ms: HNSW ×{fig['exact_p50'] / fig['p50']:.0f} faster "
        f"at p50, ×{fig['exact_p99'] / fig['p99']:.0f} at p99\n"
        f"recall@{k} of HNSW against the exact scan (mean over queries): {fig['recall']:.3f}; "
        f"mean similarity of the first neighbour {fig['top1']:.3f}\n"
        f"with hnsw.ef_search = {WIDE_EF} (nearest_feedback uses {EF_SEARCH_DEFAULT}): p50 "
        f"{fig['wide_p50']:.2f} ms  p99 {fig['wide_p99']:.2f} ms, recall@{k} "
        f"{fig['wide_recall']:.3f}"
    )
    return fig


# ---------------------------------------------------------------------- main


class BenchError(Exception):
    """A result is wrong (not merely slow)."""


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="feedback rows to load")
    parser.add_argument("--queries", type=int, default=1_000, help="k-NN queries to time")
    parser.add_argument("--embed", type=int, default=2_000, help="distinct texts to embed")
    parser.add_argument("--k", type=int, default=5, help="neighbours per query")
    parser.add_argument("--mix", type=float, default=0.3, help="spread: towards another text")
    parser.add_argument("--noise", type=float, default=0.01, help="spread: noise σ per dimension")
    parser.add_argument("--model-dir", type=Path, help="default: DBARCH_MODEL_DIR or data dir")
    parser.add_argument("--fast-store", action="store_true", help="fsync off (not durable)")
    parser.add_argument("--keep", action="store_true", help="leave the store dir behind")
    args = parser.parse_args(argv)
    if min(args.rows, args.queries, args.embed, args.k) < 1 or args.embed > args.rows:
        parser.error("--rows, --queries, --embed and --k must be positive, --embed ≤ --rows")
    return args


async def _run(args: argparse.Namespace, dsn: str) -> dict[str, float]:
    texts = feedback_texts(args.embed + args.queries, random.Random(SEED))
    corpus, held_out = texts[: args.embed], texts[args.embed :]
    embedder = Embedder(args.model_dir or get_settings().embedding_model_dir)
    base, query_vectors, embed_figures = await embedding_phase(embedder, corpus, held_out)
    vectors = spread(base, args.rows + BASELINE_ROWS, args.mix, args.noise, SEED)
    store = await open_store(dsn, min_size=1, max_size=1, timeout_s=30)
    async with store:
        memory = Memory(store)
        load = await load_phase(memory, vectors, corpus, args.rows, BASELINE_ROWS)
        await plans(store, query_vectors[0], args.k * OVERFETCH, args.rows + BASELINE_ROWS)
        knn = await knn_phase(store, memory, query_vectors, args.k)
    return embed_figures | load | knn


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    configure_logging(level="warning")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the store on `kill` too
    base = Path(tempfile.mkdtemp(prefix="dbarch-bench-memory-"))
    base.chmod(0o755)  # the store may run as an unprivileged account
    server = EmbeddedPostgres(base / "store-pg18", preload=(), fast=args.fast_store)
    started = time.perf_counter()
    try:
        dsn = prepare_local_store(server)
        upgrade_store(dsn)
        figures = asyncio.run(_run(args, dsn))
    except (BenchError, ModelError) as err:
        print(f"FAILED: {err}", file=sys.stderr)
        return 1
    finally:
        server.stop()
        if args.keep:
            print(f"store kept in {base}", file=sys.stderr)
        else:
            shutil.rmtree(base, ignore_errors=True)
    f, goal = figures, figures["p99"] < GOAL_P99_MS
    print(
        f"\n== summary ({args.rows:,} + {BASELINE_ROWS:,} rows, {args.queries:,} queries, "
        f"k={args.k}, {time.perf_counter() - started:.0f} s) ==\n"
        f"embedding  {f['batched']:6.1f} texts/s batched, {f['single']:.1f} one by one "
        f"(×{f['batched'] / f['single']:.1f})\n"
        f"loading    {f['copy']:6.0f} rows/s COPY; at full size {f['copy_full']:.0f} vs "
        f"{f['many']:.0f} executemany (×{f['copy_full'] / f['many']:.2f})\n"
        f"k-NN       p50 {f['p50']:.2f} ms  p95 {f['p95']:.2f} ms  p99 {f['p99']:.2f} ms; exact "
        f"p50 {f['exact_p50']:.1f} ms  p99 {f['exact_p99']:.1f} ms\n"
        f"recall@{args.k}   {f['recall']:.3f} (needs ≥ {MIN_RECALL}); with ef_search {WIDE_EF}: "
        f"{f['wide_recall']:.3f} at p99 {f['wide_p99']:.2f} ms\n"
        f"goal p99 < {GOAL_P99_MS:.0f} ms with the HNSW index: goal {'met' if goal else 'missed'}"
    )
    if f["recall"] < MIN_RECALL:
        print(f"FAILED: recall@{args.k} {f['recall']:.3f} < {MIN_RECALL}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
