"""Measured runs of a statement: EXPLAIN (ANALYZE, BUFFERS) per parameter set, rolled back."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, LiteralString

from psycopg import sql

from app.adapters.errors import TargetQueryError
from app.adapters.target_pg import Target, single_statement, untrusted
from app.adapters.target_pg.reach import outside_effects
from app.adapters.whatif import Q_DEALLOCATE, Q_PREPARE, Q_ROLLBACK_TO, Q_SAVEPOINT
from app.engine.advisor.params import ParamSet
from app.engine.proof.evidence import Failed, Run, Timing
from app.engine.sql import scrub_message

__all__ = ["Failed", "Timing", "measure", "run_prepared", "why"]

PREPARED = "dbarchitect_m0"
SAVEPOINT = "dbarchitect_run0"
Q_ANALYZE: LiteralString = "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE {name}{args}"


def measure(
    target: Target,
    text: str,
    param_sets: Sequence[ParamSet],
    *,
    runs: int = 5,
    warmup: int = 1,
    lock_timeout_ms: int = 1_000,
    statement_timeout_ms: int = 30_000,
) -> list[Timing | Failed]:
    """Run ``text`` for real under EXPLAIN ANALYZE, inside a transaction that rolls back.

    Each run sits in its own savepoint that is rolled back, so writes (UPDATE, DELETE,
    INSERT) are measured against the same data every time and never persist. A statement
    that reaches a volatile function (see :mod:`app.adapters.target_pg.reach`) is not run.
    """
    body = untrusted(single_statement(text))
    refused = outside_effects(target, text)
    if refused is not None:
        return [Failed(p.label, f"not measured: {refused}") for p in param_sets]
    results: list[Timing | Failed] = []
    with target.read_write_transaction(
        lock_timeout_ms=lock_timeout_ms, statement_timeout_ms=statement_timeout_ms
    ):
        name = sql.Identifier(PREPARED)
        try:
            target.script([sql.SQL(Q_PREPARE).format(name=name) + body])
        except TargetQueryError as exc:
            return [Failed(p.label, why(exc)) for p in param_sets]
        try:
            for params in param_sets:
                results.append(run_prepared(target, name, params, runs=runs, warmup=warmup))
        finally:
            if target.in_transaction:
                target.script([sql.SQL(Q_DEALLOCATE).format(name=name)])
    return results


def run_prepared(
    target: Target,
    name: sql.Identifier,
    params: ParamSet,
    *,
    runs: int,
    warmup: int,
    budget_ms: float | None = None,
    timeout_ms: float | None = None,
) -> Run:
    """Warm up, then EXPLAIN ANALYZE the prepared statement ``name`` ``runs`` times.

    Each run sits in a savepoint that is rolled back. With ``budget_ms``, repetition stops
    once the runs have taken that long, after at least three (slow statements are not run
    five times over).
    """
    args = (
        sql.SQL("({})").format(
            sql.SQL(", ").join(sql.NULL if v is None else sql.Literal(v) for v in params.values)
        )
        if params.values
        else sql.SQL("")
    )
    sp = sql.Identifier(SAVEPOINT)
    explain = sql.SQL(Q_ANALYZE).format(name=name, args=args)
    timings: list[float] = []
    plan: dict[str, Any] = {}
    started = time.perf_counter()
    for n in range(warmup + runs):
        try:
            rows = target.script(
                [
                    sql.SQL(Q_SAVEPOINT).format(name=sp),
                    explain,
                    sql.SQL(Q_ROLLBACK_TO).format(name=sp),
                ]
            )
        except TargetQueryError as exc:
            target.script([sql.SQL(Q_ROLLBACK_TO).format(name=sp)])
            took = timeout_ms if exc.timed_out and not exc.lock_timeout else None
            return Failed(params.label, why(exc), timed_out_ms=took)
        result = rows[0]["QUERY PLAN"][0]
        if n < warmup:
            started = time.perf_counter()
            continue
        timings.append(float(result["Execution Time"]))
        plan = result
        spent = (time.perf_counter() - started) * 1000
        if budget_ms is not None and len(timings) >= 3 and spent > budget_ms:
            break
    top = plan["Plan"]
    return Timing(
        label=params.label,
        ms=tuple(timings),
        shared_hit=int(top.get("Shared Hit Blocks", 0)),
        shared_read=int(top.get("Shared Read Blocks", 0)),
        rows=float(top.get("Actual Rows", 0)),
        plan=plan,
    )


def why(exc: TargetQueryError) -> str:
    """A measurement failure in words: lock budget, time budget, or the server's message."""
    if exc.lock_timeout:
        return "another session holds a conflicting lock beyond the lock budget: skipped"
    if exc.timed_out:
        return "a run exceeded the statement time budget: skipped"
    return scrub_message(exc.message)  # the server may quote a parameter value
