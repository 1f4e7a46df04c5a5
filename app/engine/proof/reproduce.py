"""Do synthesized parameter values reproduce what pg_stat_statements saw for a statement?

A statement's "before" measurement with values drawn from pg_stats stands for the real
workload only if it looks like it: pg_stat_statements records each statement's mean execution
time and rows per call. A parameter set *reproduces* the statement when its median time and
its rows are both within ``FACTOR`` (2×) of those (times below ``TIME_FLOOR_MS`` and row
counts below one count as that floor, so 0.01 ms against 0.02 ms is no discrepancy).
A statement that returns many rows (``OUTPUT_ROWS`` or more per call) is different: its
pg_stat_statements time includes sending them to the client, which EXPLAIN ANALYZE does not,
so a run may be faster than the workload's mean by any amount; it must not be more than 2×
slower. Only pg_stat_statements entries with calls and time can be checked; a workload file carries
neither, and captured (logged) values are the real ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.engine.model import Query, QuerySource
from app.engine.proof.evidence import Evidence, Run, Timing, fmt_ms

FACTOR = 2.0
TIME_FLOOR_MS = 0.05
ROWS_FLOOR = 1.0
#: From this many rows per call on, only a run much slower than the workload is a mismatch.
OUTPUT_ROWS = 100.0
#: Confidence lost when no measured read reproduces the workload: this times the share of
#: the measured reads' workload time whose statements were not reproduced.
PENALTY = 0.5


@dataclass(frozen=True, slots=True)
class Observed:
    """What pg_stat_statements recorded for one statement, per call."""

    mean_ms: float
    rows: float


def observed(query: Query) -> Observed | None:
    """Mean time and rows per call from pg_stat_statements (None: nothing to compare with)."""
    if query.source is not QuerySource.pg_stat_statements or query.calls <= 0:
        return None
    if query.total_ms <= 0:
        return None
    return Observed(query.total_ms / query.calls, query.rows / query.calls)


def _within(a: float, b: float, floor: float) -> bool:
    a, b = max(a, floor), max(b, floor)
    return max(a, b) <= FACTOR * min(a, b)


def reproduces(seen: Observed, run: Run) -> bool:
    """The run's median time and rows are both within 2× of what the workload saw (for a
    statement returning many rows, its time at most 2× the workload's)."""
    if not isinstance(run, Timing) or not _within(run.rows, seen.rows, ROWS_FLOOR):
        return False
    if seen.rows >= OUTPUT_ROWS:
        return max(run.p50, TIME_FLOOR_MS) <= FACTOR * max(seen.mean_ms, TIME_FLOOR_MS)
    return _within(run.p50, seen.mean_ms, TIME_FLOOR_MS)


def representative(seen: Observed, runs: Sequence[Run]) -> tuple[str, ...]:
    """Labels of the parameter sets whose runs reproduce the statement."""
    return tuple(r.label for r in runs if reproduces(seen, r))


def _shown(run: Run) -> str:
    if isinstance(run, Timing):
        return f"{run.label} {fmt_ms(run.p50)}, {run.rows:,.0f} rows"
    return f"{run.label} not measured"


def describe(seen: Observed, runs: Sequence[Run], resampled: int, kept: Sequence[str]) -> str:
    """The note a measured statement carries: what the workload saw, what the sets measured."""
    workload = f"pg_stat_statements saw {fmt_ms(seen.mean_ms)} and {seen.rows:,.1f} rows per call"
    sets = "; ".join(_shown(r) for r in runs[:9])
    if kept:
        return (
            f"{workload}; the first parameter sets did not reproduce it within {FACTOR:g}×, "
            f"so {resampled} more were drawn and the recommendation is judged on the worst of "
            f"those that did ({', '.join(kept)}): {sets}"
        )
    return (
        f"not reproduced: {workload}, and none of the {len(runs)} synthesized parameter sets "
        f"came within {FACTOR:g}× of it ({sets}); the confidence is lowered, as these timings "
        "may not be the workload's"
    )


def unreproduced_share(evidence: Evidence | None) -> float:
    """Share of the measured reads' workload time in statements no parameter set reproduced."""
    if evidence is None or evidence.skipped is not None:
        return 0.0
    total = missed = 0.0
    for stmt in evidence.reads():
        if not stmt.measured:
            continue
        weight = stmt.query.total_ms or float(max(stmt.query.calls, 1))
        total += weight
        if stmt.reproduced is False:
            missed += weight
    return missed / total if total > 0 else 0.0
