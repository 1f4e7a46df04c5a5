"""Measured runs of a statement: EXPLAIN (ANALYZE, BUFFERS) per parameter set, rolled back."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, LiteralString

from psycopg import sql

from app.adapters.errors import TargetQueryError
from app.adapters.target_pg import Target, single_statement, untrusted
from app.engine.params import ParamSet

PREPARED = "dbarchitect_m0"
SAVEPOINT = "dbarchitect_run0"
Q_PREPARE: LiteralString = "PREPARE {name} AS "
Q_ANALYZE: LiteralString = "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE {name}{args}"
Q_DEALLOCATE: LiteralString = "DEALLOCATE {name}"
Q_SAVEPOINT: LiteralString = "SAVEPOINT {name}"
Q_ROLLBACK_TO: LiteralString = "ROLLBACK TO SAVEPOINT {name}"


@dataclass(frozen=True, slots=True)
class Timing:
    """Repeated measured runs of one statement with one parameter set."""

    label: str
    ms: tuple[float, ...]
    shared_hit: int
    shared_read: int
    rows: float
    plan: dict[str, Any]

    @property
    def p50(self) -> float:
        """Median execution time (ms)."""
        return statistics.median(self.ms)

    @property
    def p95(self) -> float:
        """95th percentile (the slowest run when there are fewer than 20)."""
        ordered = sorted(self.ms)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]

    @property
    def spread(self) -> float:
        """Relative run-to-run noise: (p95 − min) / p50."""
        return (self.p95 - min(self.ms)) / self.p50 if self.p50 > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Failed:
    """A parameter set that could not be measured, and why (lock wait, timeout, error)."""

    label: str
    reason: str


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
    INSERT) are measured against the same data every time and never persist.
    """
    body = untrusted(single_statement(text))
    results: list[Timing | Failed] = []
    with target.read_write_transaction(
        lock_timeout_ms=lock_timeout_ms, statement_timeout_ms=statement_timeout_ms
    ):
        name = sql.Identifier(PREPARED)
        try:
            target.script([sql.SQL(Q_PREPARE).format(name=name) + body])
        except TargetQueryError as exc:
            return [Failed(p.label, _why(exc)) for p in param_sets]
        try:
            for params in param_sets:
                results.append(_runs(target, name, params, runs=runs, warmup=warmup))
        finally:
            if target.in_transaction:
                target.script([sql.SQL(Q_DEALLOCATE).format(name=name)])
    return results


def _runs(
    target: Target, name: sql.Identifier, params: ParamSet, *, runs: int, warmup: int
) -> Timing | Failed:
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
            return Failed(params.label, _why(exc))
        result = rows[0]["QUERY PLAN"][0]
        if n >= warmup:
            timings.append(float(result["Execution Time"]))
            plan = result
    top = plan["Plan"]
    return Timing(
        label=params.label,
        ms=tuple(timings),
        shared_hit=int(top.get("Shared Hit Blocks", 0)),
        shared_read=int(top.get("Shared Read Blocks", 0)),
        rows=float(top.get("Actual Rows", 0)),
        plan=plan,
    )


def _why(exc: TargetQueryError) -> str:
    if exc.lock_timeout:
        return "another session holds a conflicting lock beyond the lock budget: skipped"
    if exc.timed_out:
        return "a run exceeded the statement time budget: skipped"
    return exc.message
