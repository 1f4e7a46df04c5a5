"""Measured evidence for one recommendation: timings before and after, and what they prove."""
# Long module: the evidence values and the judgement over them read as one.

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from app.engine.model import Query
from app.engine.proof.method import Cause, Method
from app.engine.sql import redact


@dataclass(frozen=True, slots=True)
class Timing:
    """Repeated measured runs of one statement with one parameter set."""

    label: str
    ms: tuple[float, ...]
    shared_hit: int
    shared_read: int
    rows: float
    plan: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

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
    def fastest(self) -> float:
        """The quickest run (ms)."""
        return min(self.ms)

    @property
    def spread(self) -> float:
        """Relative run-to-run noise: (p95 − fastest) / p50."""
        return (self.p95 - self.fastest) / self.p50 if self.p50 > 0 else 0.0

    @property
    def buffers(self) -> int:
        """Shared buffers touched (hit + read) by the last run."""
        return self.shared_hit + self.shared_read


def plan_index_names(plan: dict[str, Any]) -> frozenset[str]:
    """Every ``Index Name`` in one EXPLAIN (FORMAT JSON) result (its top object or a node)."""
    names: set[str] = set()
    stack: list[Any] = [plan.get("Plan", plan)]
    while stack:
        node = stack.pop()
        if "Index Name" in node:
            names.add(str(node["Index Name"]))
        stack.extend(node.get("Plans", ()))
    return frozenset(names)


@dataclass(frozen=True, slots=True)
class Failed:
    """A parameter set that could not be measured, and why (lock wait, timeout, error)."""

    label: str
    reason: str
    #: Set when the run hit the statement timeout: it took at least this long.
    timed_out_ms: float | None = None


Run = Timing | Failed


@dataclass(frozen=True, slots=True)
class Pair:
    """One parameter set measured before and after the change."""

    label: str
    before: Timing
    after: Timing

    @property
    def ratio(self) -> float:
        """after / before of the medians (< 1 is faster)."""
        return self.after.p50 / self.before.p50 if self.before.p50 > 0 else 1.0

    @property
    def noise_ms(self) -> float:
        """Run-to-run noise of this pair: the wider of the two p95 − fastest ranges."""
        return max(self.before.p95 - self.before.fastest, self.after.p95 - self.after.fastest)


@dataclass(frozen=True, slots=True)
class Means:
    """A statement's (before, after) means over its measured parameter sets."""

    p50: tuple[float, float]
    p95: tuple[float, float]
    buffers: tuple[float, float]


@dataclass(frozen=True, slots=True)
class StatementEvidence:
    """One affected statement: estimates, measured runs per parameter set, or why not measured."""

    query: Query
    write: bool
    cost_before: float | None = None
    cost_after: float | None = None
    before: tuple[Run, ...] = ()
    after: tuple[Run, ...] = ()
    #: Why the statement was not (fully) measured, e.g. an unbound ``$n``.
    notes: tuple[str, ...] = ()
    #: Some synthesized parameter set reproduced what pg_stat_statements saw for the
    #: statement (``app.engine.proof.reproduce``); ``None``: not checked.
    reproduced: bool | None = None
    #: Labels of the parameter sets that reproduced it: the statement is judged on the worst.
    representative: tuple[str, ...] = ()

    def pairs(self) -> list[Pair]:
        """Parameter sets measured on both sides.

        A run that hit the statement timeout before the change and finished after it counts,
        with the timeout as its time: a lower bound, so the speed-up is understated.
        """
        after = {r.label: r for r in self.after if isinstance(r, Timing)}
        found = []
        for b in self.before:
            if b.label not in after:
                continue
            if isinstance(b, Failed) and b.timed_out_ms is not None:
                b = Timing(b.label, (b.timed_out_ms,), 0, 0, 0.0)
            if isinstance(b, Timing):
                found.append(Pair(b.label, b, after[b.label]))
        return found

    @property
    def measured(self) -> bool:
        """At least one parameter set has timings before and after."""
        return bool(self.pairs())

    def judged(self) -> list[Pair]:
        """The pairs the statement is judged on: the representative ones when any were
        measured on both sides, else every pair."""
        pairs = self.pairs()
        chosen = [p for p in pairs if p.label in self.representative]
        return chosen or pairs

    def means(self) -> Means | None:
        """Means over the parameter sets measured on both sides (None: nothing measured).

        With representative sets, the worst of them (the largest after / before ratio)
        stands alone: a recommendation must hold for every case that looks like the workload.
        """
        pairs = self.judged()
        if not pairs:
            return None
        if self.representative and any(p.label in self.representative for p in pairs):
            pairs = [max(pairs, key=lambda p: p.ratio)]
        mean = statistics.fmean
        return Means(
            p50=(mean(p.before.p50 for p in pairs), mean(p.after.p50 for p in pairs)),
            p95=(mean(p.before.p95 for p in pairs), mean(p.after.p95 for p in pairs)),
            buffers=(mean(p.before.buffers for p in pairs), mean(p.after.buffers for p in pairs)),
        )

    def ms(self) -> tuple[float, float] | None:
        """Mean over parameter sets of the median time, before and after (ms)."""
        means = self.means()
        return means.p50 if means else None

    def failures(self) -> list[Failed]:
        """Runs that failed on either side."""
        return [r for r in (*self.before, *self.after) if isinstance(r, Failed)]


@dataclass(frozen=True, slots=True)
class PlanCheck:
    """One statement (one parameter set) planned with an index present and then absent."""

    query: Query
    label: str
    #: Index names the plan uses with the index present, then absent (hidden or dropped).
    before: frozenset[str]
    after: frozenset[str]
    cost_before: float
    cost_after: float


@dataclass(frozen=True, slots=True)
class Evidence:
    """What validating one recommendation measured, where, and at what cost."""

    #: ``sandbox`` (``--validate-dsn``) or ``target`` (a rolled-back transaction on it).
    where: str
    statements: tuple[StatementEvidence, ...] = ()
    #: Time the CREATE INDEX (or DROP INDEX) took inside the transaction.
    change_ms: float | None = None
    #: The real size of the index built in the transaction.
    index_bytes: int | None = None
    #: Validation did not run (or stopped) and why: a lock wait, a budget, a refusal.
    skipped: str | None = None
    #: The measured plans used the new index (create) for at least one statement.
    used_by_plans: bool | None = None
    #: How the timings were taken; None: a rolled-back build where ``where`` says.
    method: Method | None = None
    #: Why validation was skipped or stopped, as a token (with ``skipped``).
    cause: Cause | None = None
    #: How the index was taken away when it was not dropped in a rolled-back transaction:
    #: ``hidden index`` (HypoPG's hypopg_hide_index, timed) or ``plans only`` (dropped in a
    #: rolled-back transaction for the planning alone). ``None``: the change itself was made.
    drop_method: str | None = None
    #: Plans without timings (``plans only``): each statement planned before and after.
    plans: tuple[PlanCheck, ...] = ()

    def reads(self) -> list[StatementEvidence]:
        """Affected statements that only read the table."""
        return [s for s in self.statements if not s.write]

    def writes(self) -> list[StatementEvidence]:
        """INSERT / UPDATE / DELETE statements on the table."""
        return [s for s in self.statements if s.write]


@dataclass(frozen=True, slots=True)
class EvidenceConfig:
    """Thresholds for judging measurements."""

    #: A statement more than this much slower (beyond noise) rejects the recommendation.
    regression_tolerance: float = 0.10
    #: Differences below this per execution are within EXPLAIN ANALYZE's own resolution; they
    #: still count, summed over calls, in the write-overhead balance.
    noise_floor_ms: float = 0.05
    #: The affected reads, weighted by calls, must run at least this much faster.
    min_speedup: float = 0.20


def _clearly_slower(pair: Pair, config: EvidenceConfig) -> bool:
    """Slower by more than the tolerance, and beyond noise: even the fastest run after the
    change is slower than the slow (p95) runs before it, by more than the floor."""
    before, after = pair.before, pair.after
    return (
        after.p50 > before.p50 * (1 + config.regression_tolerance)
        and after.fastest > before.p95
        and after.p50 - before.p50 > config.noise_floor_ms
    )


def fmt_ms(value: float) -> str:
    """Milliseconds with a readable number of digits."""
    return f"{value:,.3f} ms" if abs(value) < 10 else f"{value:,.1f} ms"


def _short(query: Query) -> str:
    text = " ".join(redact(query.text).split())
    return text if len(text) <= 80 else text[:79] + "…"


def regressions(
    evidence: Evidence, config: EvidenceConfig | None = None, *, writes: bool | None = None
) -> list[str]:
    """Every (statement, parameter set) the change makes clearly slower, with its numbers.

    ``writes`` narrows to write statements (True) or reads (False).
    """
    config = config or EvidenceConfig()
    found = []
    for stmt in evidence.statements:
        if writes is not None and stmt.write != writes:
            continue
        for pair in stmt.pairs():
            if _clearly_slower(pair, config):
                found.append(
                    f"{_short(stmt.query)!r} with {pair.label} values: "
                    f"{fmt_ms(pair.before.p50)} → {fmt_ms(pair.after.p50)} p50 "
                    f"({pair.ratio - 1:.0%} slower; p95 {fmt_ms(pair.before.p95)} → "
                    f"{fmt_ms(pair.after.p95)})"
                )
    return found


@dataclass(frozen=True, slots=True)
class Balance:
    """Measured time per workload cycle (Σ calls × mean p50), reads and writes, before/after."""

    read_before: float = 0.0
    read_after: float = 0.0
    write_before: float = 0.0
    write_after: float = 0.0
    reads_measured: int = 0
    writes_measured: int = 0

    @property
    def read_saved(self) -> float:
        """Read time saved (ms, weighted by calls); negative when reads got slower."""
        return self.read_before - self.read_after

    @property
    def write_added(self) -> float:
        """Write time added (ms, weighted by calls); negative when writes got faster."""
        return self.write_after - self.write_before

    @property
    def speedup(self) -> float:
        """Fraction of the affected reads' time saved, 0 when nothing was measured."""
        return self.read_saved / self.read_before if self.read_before > 0 else 0.0


def balance(evidence: Evidence) -> Balance:
    """Weigh each measured statement by its calls."""
    totals = [0.0, 0.0, 0.0, 0.0]
    counts = [0, 0]
    for stmt in evidence.statements:
        ms = stmt.ms()
        if ms is None:
            continue
        calls = max(stmt.query.calls, 1)
        offset = 2 if stmt.write else 0
        totals[offset] += calls * ms[0]
        totals[offset + 1] += calls * ms[1]
        counts[1 if stmt.write else 0] += 1
    return Balance(
        read_before=totals[0],
        read_after=totals[1],
        write_before=totals[2],
        write_after=totals[3],
        reads_measured=counts[0],
        writes_measured=counts[1],
    )


def estimated_gain(evidence: Evidence) -> float | None:
    """The planner's estimated fraction of cost saved on the measured reads (by calls)."""
    before = after = 0.0
    for stmt in evidence.reads():
        if stmt.cost_before is None or stmt.cost_after is None or not stmt.measured:
            continue
        calls = max(stmt.query.calls, 1)
        before += calls * stmt.cost_before
        after += calls * stmt.cost_after
    return 1 - after / before if before > 0 else None


def create_verdict(evidence: Evidence, config: EvidenceConfig | None = None) -> str | None:
    """Why the measurements reject a new index, or ``None`` when they support it (or are absent).

    Three checks, each with its numbers: no affected statement clearly slower; the affected
    reads (weighted by calls) at least ``min_speedup`` faster; and the write time it adds
    does not exceed the read time it saves.
    """
    config = config or EvidenceConfig()
    if evidence.skipped is not None:
        return None
    tolerance = f"more than the {config.regression_tolerance:.0%} allowed"
    slower = regressions(evidence, config, writes=False)
    if slower:
        return f"measured regression ({tolerance}): " + "; ".join(slower[:3])
    slower = regressions(evidence, config, writes=True)
    if slower:
        return f"write overhead measured ({tolerance}): " + "; ".join(slower[:3])
    bal = balance(evidence)
    if bal.reads_measured and bal.speedup < config.min_speedup:
        estimate = estimated_gain(evidence)
        planner = f"; the planner estimated {estimate:.0%} less cost" if estimate else ""
        change = (
            f"{bal.speedup:.0%} faster, below {config.min_speedup:.0%}"
            if bal.speedup >= 0
            else f"{-bal.speedup:.0%} slower"
        )
        return (
            f"measurement does not support it: the affected reads ran "
            f"{fmt_ms(bal.read_before)} → {fmt_ms(bal.read_after)} per workload cycle "
            f"({change}){planner}"
        )
    if bal.writes_measured and bal.read_saved > 0 and bal.write_added >= bal.read_saved:
        return (
            f"write overhead measured: the table's writes take {fmt_ms(bal.write_added)} more "
            f"per workload cycle ({fmt_ms(bal.write_before)} → {fmt_ms(bal.write_after)}), "
            f"more than the {fmt_ms(bal.read_saved)} the reads save"
        )
    return None


def drop_verdict(evidence: Evidence, config: EvidenceConfig | None = None) -> str | None:
    """Why the measurements reject dropping an index: some statement clearly needs it."""
    config = config or EvidenceConfig()
    if evidence.skipped is not None:
        return None
    slower = regressions(evidence, config, writes=False)
    slower += [
        f"the planner's estimate for {_short(c.query)!r} with {c.label} values rises "
        f"{c.cost_before:,.1f} → {c.cost_after:,.1f}"
        for c in evidence.plans
        if c.cost_after > c.cost_before * (1 + config.regression_tolerance) + 0.01
    ]
    if slower:
        return "the workload still needs it: without it " + "; ".join(slower[:3])
    return None


def weighted_noise_margin(evidence: Evidence) -> float:
    """How many noise widths the median moved, averaged over measured reads by calls."""
    total = weight = 0.0
    for stmt in evidence.reads():
        for pair in stmt.judged():
            calls = max(stmt.query.calls, 1)
            noise = max(pair.noise_ms, 0.01 * pair.before.p50, 1e-3)
            total += calls * (pair.before.p50 - pair.after.p50) / noise
            weight += calls
    return total / weight if weight else 0.0
