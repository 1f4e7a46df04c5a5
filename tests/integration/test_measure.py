"""Measured runs on a real server: timings and buffers per parameter set, writes never persist."""

from __future__ import annotations

import threading

import psycopg

from app.adapters.measure import Failed, Timing, measure
from app.adapters.target_pg import connect
from app.engine.advisor.params import ParamSet

SEED = (
    "CREATE TABLE t AS SELECT g AS id, g % 1000 AS v FROM generate_series(1, 100000) g",
    "ANALYZE t",
)


def seeded(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in SEED:
            conn.execute(statement.encode())


def test_select_timings_per_parameter_set(fresh_db18: str) -> None:
    seeded(fresh_db18)
    sets = [ParamSet("common", ("7",)), ParamSet("none", ("-1",))]
    with connect(fresh_db18) as target:
        results = measure(target, "SELECT * FROM t WHERE v = $1", sets, runs=3)
    assert [type(r) for r in results] == [Timing, Timing]
    common, none = results
    assert isinstance(common, Timing) and isinstance(none, Timing)
    assert len(common.ms) == 3 and common.p50 > 0 and common.p95 >= common.p50
    assert common.rows == 100 and none.rows == 0
    assert common.shared_hit + common.shared_read > 0


def test_measured_writes_never_persist(fresh_db18: str) -> None:
    seeded(fresh_db18)
    with connect(fresh_db18) as target:
        (timing,) = measure(
            target, "UPDATE t SET v = v + 1 WHERE id <= $1", [ParamSet("typical", ("500",))]
        )
    assert isinstance(timing, Timing) and timing.rows == 0  # UPDATE's top node returns no rows
    with psycopg.connect(fresh_db18) as conn:
        row = conn.execute("SELECT sum(v) FROM t WHERE id <= 500").fetchone()
    assert row is not None and row[0] == sum(g % 1000 for g in range(1, 501))


def test_a_lock_held_elsewhere_is_a_clean_skip_within_budget(fresh_db18: str) -> None:
    seeded(fresh_db18)
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        with psycopg.connect(fresh_db18) as conn:
            conn.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
            locked.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    locked.wait(5)
    try:
        with connect(fresh_db18) as target:
            (result,) = measure(
                target,
                "SELECT * FROM t WHERE v = $1",
                [ParamSet("common", ("7",))],
                lock_timeout_ms=200,
            )
    finally:
        release.set()
        holder.join()
    assert isinstance(result, Failed) and "lock" in result.reason
