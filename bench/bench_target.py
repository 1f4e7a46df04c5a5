"""Print target-adapter figures: snapshot time on many tables, what-if calls/s (HypoPG, builds)."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

from app.adapters import target_pg
from app.adapters.pgserver import DebianPostgres, EmbeddedPostgres, LocalPostgres
from app.adapters.whatif import HypoPGOracle, RolledBackBuildOracle
from app.engine.advisor.whatif import CostRequest
from app.engine.model import Candidate, IndexKey

COLUMNS = ("a", "b", "c", "d")


def _many_tables(dsn: str, count: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(count):
            name = sql.Identifier(f"wide_{i}")
            conn.execute(
                sql.SQL(
                    "CREATE TABLE {} (id bigint PRIMARY KEY, a int, b text, c timestamptz,"
                    " d numeric, e jsonb, f varchar(20), g bool, h int, k text)"
                ).format(name)
            )
            conn.execute(sql.SQL("CREATE INDEX ON {} (a, b)").format(name))
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} SELECT g, g % 50, 'v' || (g % 30), now(), g, NULL, 'x',"
                    " g % 2 = 0, g, md5(g::text) FROM generate_series(1, 200) g"
                ).format(name)
            )
        conn.execute("ANALYZE")


def _workload_tables(dsn: str, tables: int, rows: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(tables):
            name = sql.Identifier(f"w_{i}")
            conn.execute(
                sql.SQL(
                    "CREATE TABLE {} (id int PRIMARY KEY, a int, b int, c int, d int, e text)"
                ).format(name)
            )
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} SELECT g, g %% 1000, g %% 97, g %% 13, g, md5(g::text)"
                    " FROM generate_series(1, %s) g"
                ).format(name),
                (rows,),
            )
        conn.execute("ANALYZE")


def _statements(tables: int, count: int) -> list[tuple[str, str, str]]:
    """``(sql, table, column)``: 20 shapes per table, half with ``$n``."""
    out: list[tuple[str, str, str]] = []
    i = 0
    while len(out) < count:
        table = f"w_{i % tables}"
        col = COLUMNS[(i // tables) % len(COLUMNS)]
        other = COLUMNS[(i // tables + 1) % len(COLUMNS)]
        shape = (i // (tables * len(COLUMNS))) % 4
        if shape == 0:
            text = f"SELECT * FROM {table} WHERE {col} = $1"
        elif shape == 1:
            text = f"SELECT id FROM {table} WHERE {col} = $1 AND {other} > $2 ORDER BY {other}"
        elif shape == 2:
            text = f"SELECT count(*) FROM {table} WHERE {col} = {i % 50}"
        else:
            text = f"SELECT * FROM {table} WHERE {col} BETWEEN {i % 50} AND {i % 50 + 5} LIMIT 10"
        out.append((text, table, col))
        i += 1
    return out


def _requests(statements: list[tuple[str, str, str]]) -> list[CostRequest]:
    requests: list[CostRequest] = []
    for text, table, col in statements:
        params = text.count("$")
        cand = Candidate(f"public.{table}", (IndexKey(col),))
        requests.append(CostRequest(text, params, frozenset()))
        requests.append(CostRequest(text, params, frozenset({cand})))
    return requests


def bench_snapshot(server: LocalPostgres, tables: int) -> None:
    dsn = server.create_database("bench_snapshot")
    _many_tables(dsn, tables)
    with target_pg.connect(dsn) as target:
        started = time.perf_counter()
        snap = target.snapshot()
        elapsed = time.perf_counter() - started
    cols = sum(len(t.columns) for t in snap.tables)
    print(
        f"snapshot PG{server.version_num // 10000}: {len(snap.tables)} tables, {cols} columns, "
        f"{len(snap.indexes)} indexes in {elapsed * 1000:.0f} ms"
    )


def bench_hypopg(server: LocalPostgres, tables: int, statements: int) -> None:
    dsn = server.create_database("bench_hypopg", extensions=["hypopg"])
    _workload_tables(dsn, tables, 10_000)
    requests = _requests(_statements(tables, statements))
    with target_pg.connect(dsn) as target:
        oracle = HypoPGOracle(target)
        started = time.perf_counter()
        costs = oracle.costs(requests)
        elapsed = time.perf_counter() - started
    failed = sum(c is None for c in costs)
    print(
        f"hypopg PG{server.version_num // 10000}: {oracle.calls} what-if calls "
        f"({len({r.indexes for r in requests})} index sets, {failed} failed) in {elapsed:.2f} s "
        f"= {oracle.calls / elapsed:.0f} calls/s"
    )


def bench_generic_explains(server: LocalPostgres, tables: int, statements: int) -> None:
    """Planning alone (empty index set), as the oracle does for every baseline cost."""
    dsn = server.create_database("bench_explain")
    _workload_tables(dsn, tables, 10_000)
    requests = [r for r in _requests(_statements(tables, statements)) if not r.indexes]
    with target_pg.connect(dsn) as target:
        oracle = RolledBackBuildOracle(target)
        started = time.perf_counter()
        oracle.costs(requests)
        elapsed = time.perf_counter() - started
    print(
        f"baseline EXPLAINs PG{server.version_num // 10000}: {oracle.calls} in {elapsed:.2f} s "
        f"= {oracle.calls / elapsed:.0f} calls/s"
    )


def bench_builds(server: LocalPostgres, rows: int, sets: int) -> None:
    dsn = server.create_database("bench_builds")
    _workload_tables(dsn, 1, rows)
    cands = [Candidate("public.w_0", (IndexKey(c),)) for c in COLUMNS]
    cands += [Candidate("public.w_0", (IndexKey(a), IndexKey(b))) for a in "abc" for b in "de"]
    requests = [
        CostRequest("SELECT * FROM w_0 WHERE a = $1 AND d > $2", 2, frozenset({c}))
        for c in cands[:sets]
    ]
    with target_pg.connect(dsn) as target:
        oracle = RolledBackBuildOracle(target)
        started = time.perf_counter()
        costs = oracle.costs(requests)
        elapsed = time.perf_counter() - started
    print(
        f"rolled-back builds PG{server.version_num // 10000} ({rows} rows): {len(requests)} "
        f"index sets, {sum(c is None for c in costs)} failed, in {elapsed:.2f} s "
        f"= {len(requests) / elapsed:.1f} builds/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tables", type=int, default=1000, help="tables for the snapshot")
    parser.add_argument("--statements", type=int, default=1000)
    parser.add_argument("--workload-tables", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dbarch-bench-") as base:
        with EmbeddedPostgres(Path(base) / "pg18", fast=True) as pg18:
            bench_snapshot(pg18, args.tables)
            bench_builds(pg18, 100_000, 11)
            bench_generic_explains(pg18, args.workload_tables, args.statements)
        with DebianPostgres(Path(base) / "pg15", fast=True) as pg15:
            bench_snapshot(pg15, args.tables)
            bench_hypopg(pg15, args.workload_tables, args.statements)


if __name__ == "__main__":
    main()
