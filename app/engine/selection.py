"""Workload-wide greedy index selection on weighted what-if costs, with write overhead and budgets.

Each round asks the cost oracle, for every remaining candidate, what the statements it may
serve would cost with the indexes chosen so far plus that candidate; it picks the one with the
largest net gain (Σ calls × cost saved − write overhead) and stops when nothing clears the
thresholds. A final pass drops any choice that later choices made redundant. Cost lookups are
cached on (statement, the chosen indexes that statement could use), so a round only plans the
statements touched by the previous pick.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from app.engine.candidates import CandidateSet
from app.engine.catalog import Catalog
from app.engine.model import Analyzed, Candidate, Rejection, StatementKind, Table
from app.engine.whatif import CostOracle, CostRequest

Progress = Callable[[str, int, int], None]

#: Planner cost units charged per index entry written (a B-tree insert touches a few cached
#: pages and writes WAL; seq_page_cost = 1). A heuristic until evidence measures writes.
WRITE_COST_PER_ENTRY = 1.0
#: Assumed fraction of a partial index's rows when statistics cannot tell.
DEFAULT_PARTIAL_FRACTION = 0.1


@dataclass(frozen=True, slots=True)
class SelectionConfig:
    """Thresholds and budgets for selection."""

    #: Some statement the index serves must get at least this much cheaper (0.2 = 20 %).
    min_improvement: float = 0.2
    max_new_per_table: int = 5
    max_new_total: int | None = None
    storage_budget_bytes: int | None = None
    write_cost_per_entry: float = WRITE_COST_PER_ENTRY


@dataclass(frozen=True, slots=True)
class Chosen:
    """A selected candidate with its estimated effects."""

    candidate: Candidate
    gain: float
    write_penalty: float
    size_bytes: int
    #: Statement position → (cost without any new index, cost with only this index).
    effects: dict[int, tuple[float, float]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Selection:
    """What selection chose and why the rest was left."""

    chosen: tuple[Chosen, ...]
    rejected: tuple[Rejection, ...]
    #: Statement position → estimated cost with no new index.
    baseline: dict[int, float]
    #: Statement position → estimated cost with every chosen index.
    final: dict[int, float]
    #: Statement position → why the planner could not plan it.
    unplannable: dict[int, str]


@dataclass(slots=True)
class _Eval:
    gain: float = 0.0
    best_ratio: float = 0.0
    penalty: float = 0.0

    @property
    def net(self) -> float:
        return self.gain - self.penalty


class _Costs:
    """Cached, batched access to the oracle."""

    def __init__(self, analyzed: Sequence[Analyzed], oracle: CostOracle) -> None:
        self.analyzed = analyzed
        self.oracle = oracle
        self.cache: dict[tuple[int, frozenset[Candidate]], float | None] = {}

    def fetch(self, keys: Sequence[tuple[int, frozenset[Candidate]]]) -> None:
        missing = list(dict.fromkeys(k for k in keys if k not in self.cache))
        if not missing:
            return
        requests = [
            CostRequest(self.analyzed[q].explain_sql, self.analyzed[q].params, s) for q, s in missing
        ]
        for key, cost in zip(missing, self.oracle.costs(requests), strict=True):
            self.cache[key] = cost

    def get(self, q: int, indexes: frozenset[Candidate]) -> float | None:
        return self.cache[(q, indexes)]


def select(
    analyzed: Sequence[Analyzed],
    cands: CandidateSet,
    oracle: CostOracle,
    catalog: Catalog,
    *,
    config: SelectionConfig | None = None,
    progress: Progress | None = None,
) -> Selection:
    """Choose indexes for the whole workload (see the module docstring)."""
    config = config or SelectionConfig()
    costs = _Costs(analyzed, oracle)
    served = sorted({q for c in cands.candidates for q in cands.serves[c]})
    empty: frozenset[Candidate] = frozenset()
    costs.fetch([(q, empty) for q in served])
    unplannable = {q: _error(oracle, analyzed[q]) for q in served if costs.get(q, empty) is None}
    baseline = {q: c for q in served if (c := costs.get(q, empty)) is not None}
    serves = {c: frozenset(q for q in cands.serves[c] if q in baseline) for c in cands.candidates}
    weights = {q: float(max(analyzed[q].query.calls, 1)) for q in baseline}
    writes = _write_load(analyzed, catalog)

    chosen: list[Candidate] = []
    remaining = [c for c in cands.candidates if serves[c]]
    rejected: dict[Candidate, str] = {
        c: "no statement it serves could be planned" for c in cands.candidates if not serves[c]
    }
    first_round: dict[Candidate, _Eval] = {}

    def usable(q: int, pool: Sequence[Candidate]) -> frozenset[Candidate]:
        return frozenset(c for c in pool if q in serves[c])

    def evaluate(batch: Sequence[Candidate]) -> dict[Candidate, _Eval]:
        keys = []
        for c in batch:
            for q in serves[c]:
                base = usable(q, chosen)
                keys += [(q, base), (q, base | {c})]
        costs.fetch(keys)
        result = {}
        for c in batch:
            ev = _Eval(penalty=_penalty(c, catalog, writes, config))
            for q in serves[c]:
                base = usable(q, chosen)
                before, after = costs.get(q, base), costs.get(q, base | {c})
                if before is None or after is None or before <= 0:
                    continue
                saved = max(before - after, 0.0)
                ev.gain += weights[q] * saved
                ev.best_ratio = max(ev.best_ratio, saved / before)
            result[c] = ev
        return result

    evals = evaluate(remaining)
    first_round.update(evals)
    size_used = 0
    per_table: dict[str, int] = {}
    rounds = 0
    while remaining:
        rounds += 1
        if progress:
            progress("select", len(chosen), len(chosen) + 1)
        best: Candidate | None = None
        for c in remaining:
            ev = evals[c]
            if _refusal(c, ev, config, per_table, size_used, catalog, len(chosen)) is None and (
                best is None or _rank(c, ev) > _rank(best, evals[best])
            ):
                best = c
        if best is None:
            break
        chosen.append(best)
        remaining.remove(best)
        per_table[best.table] = per_table.get(best.table, 0) + 1
        size_used += estimate_size(best, catalog.table(best.table))
        touched = serves[best]
        evals.update(evaluate([c for c in remaining if serves[c] & touched]))

    for c in remaining:
        reason = _refusal(c, evals[c], config, per_table, size_used, catalog, len(chosen))
        if (
            reason
            and not reason.startswith("budget")
            and first_round[c].net > 0
            and evals[c].gain < first_round[c].gain
        ):
            reason = _superseded(c, chosen, serves) or reason
        rejected[c] = reason or "not chosen"

    chosen = _prune(chosen, serves, costs, weights, catalog, writes, config, rejected)
    final_keys = [(q, usable(q, chosen)) for q in baseline]
    costs.fetch(final_keys)
    final = {q: costs.get(q, s) or baseline[q] for q, s in final_keys}
    picks = []
    for c in chosen:
        alone = [(q, frozenset({c})) for q in serves[c]]
        costs.fetch(alone)
        effects = {q: (baseline[q], costs.get(q, s) or baseline[q]) for q, s in alone}
        gain = sum(weights[q] * max(b - a, 0.0) for q, (b, a) in effects.items())
        picks.append(
            Chosen(
                candidate=c,
                gain=gain,
                write_penalty=_penalty(c, catalog, writes, config),
                size_bytes=estimate_size(c, catalog.table(c.table)),
                effects=effects,
            )
        )
    return Selection(
        chosen=tuple(picks),
        rejected=tuple(Rejection(c.label(), r) for c, r in rejected.items()),
        baseline=baseline,
        final=final,
        unplannable=unplannable,
    )


def _rank(c: Candidate, ev: _Eval) -> tuple[float, int, int, int]:
    """Largest net gain first; on ties prefer plain, fewer keys, no INCLUDE."""
    return (round(ev.net, 6), -(c.where is not None), -len(c.keys), -len(c.include))


def _refusal(
    c: Candidate,
    ev: _Eval,
    config: SelectionConfig,
    per_table: dict[str, int],
    size_used: int,
    catalog: Catalog,
    n_chosen: int,
) -> str | None:
    if ev.gain <= 0:
        return "the planner would not use it for any statement it could serve"
    if ev.best_ratio < config.min_improvement:
        return (
            f"best estimated improvement {ev.best_ratio:.0%} is below the "
            f"{config.min_improvement:.0%} threshold"
        )
    if ev.net <= 0:
        return (
            f"write overhead ({ev.penalty:,.0f} cost units) outweighs the estimated gain "
            f"({ev.gain:,.0f})"
        )
    if per_table.get(c.table, 0) >= config.max_new_per_table:
        return f"budget: already {config.max_new_per_table} new indexes on {c.table}"
    if config.max_new_total is not None and n_chosen >= config.max_new_total:
        return f"budget: already {config.max_new_total} new indexes in this audit"
    if config.storage_budget_bytes is not None:
        size = estimate_size(c, catalog.table(c.table))
        if size_used + size > config.storage_budget_bytes:
            return f"budget: {size:,} more bytes would exceed the storage budget"
    return None


def _superseded(c: Candidate, chosen: Sequence[Candidate], serves: dict[Candidate, frozenset[int]]) -> str | None:
    overlap = [o for o in chosen if o.table == c.table and serves[o] & serves[c]]
    if not overlap:
        return None
    names = ", ".join(o.label() for o in overlap)
    return f"served well enough by the chosen {names}"


def _prune(
    chosen: list[Candidate],
    serves: dict[Candidate, frozenset[int]],
    costs: _Costs,
    weights: dict[int, float],
    catalog: Catalog,
    writes: dict[str, _Writes],
    config: SelectionConfig,
    rejected: dict[Candidate, str],
) -> list[Candidate]:
    """Drop a choice whose marginal value vanished once later choices were made."""
    kept = list(chosen)
    for c in reversed(chosen):
        others = [o for o in kept if o is not c]
        keys = []
        for q in serves[c]:
            with_c = frozenset(o for o in kept if q in serves[o])
            keys += [(q, with_c), (q, with_c - {c})]
        costs.fetch(keys)
        gain = 0.0
        best_ratio = 0.0
        for q in serves[c]:
            with_c = frozenset(o for o in kept if q in serves[o])
            after, before = costs.get(q, with_c), costs.get(q, with_c - {c})
            if after is None or before is None or before <= 0:
                continue
            saved = max(before - after, 0.0)
            gain += weights[q] * saved
            best_ratio = max(best_ratio, saved / before)
        if gain - _penalty(c, catalog, writes, config) <= 0 or best_ratio < config.min_improvement:
            kept = others
            rejected[c] = _superseded(c, others, serves) or "made redundant by the other choices"
    return kept


@dataclass(slots=True)
class _Writes:
    """Rows written to a table by the workload, by kind."""

    inserted: float = 0.0
    updates: list[tuple[float, tuple[str, ...]]] = field(default_factory=list)


def _write_load(analyzed: Sequence[Analyzed], catalog: Catalog) -> dict[str, _Writes]:
    loads: dict[str, _Writes] = {}
    for stmt in analyzed:
        rows = float(max(stmt.query.rows, stmt.query.calls))
        for scan in stmt.scans:
            if not scan.write:
                continue
            load = loads.setdefault(scan.table, _Writes())
            if stmt.kind is StatementKind.insert:
                load.inserted += rows
            elif stmt.kind is StatementKind.update:
                load.updates.append((rows, scan.set_columns))
    return loads


def _penalty(c: Candidate, catalog: Catalog, writes: dict[str, _Writes], config: SelectionConfig) -> float:
    """Cost units of index maintenance the workload's writes would add."""
    load = writes.get(c.table)
    if load is None:
        return 0.0
    table = catalog.table(c.table)
    touched = set(c.columns) | set(c.include)
    existing = len(catalog.snapshot.indexes_on(c.table))
    hot_share = 0.5
    if table is not None and table.n_tup_upd:
        hot_share = table.n_tup_hot_upd / table.n_tup_upd
    entries = load.inserted
    for rows, set_columns in load.updates:
        if touched & set(set_columns):
            entries += rows * (1 + existing)  # HOT is lost: every index gets a new entry
        else:
            entries += rows * (1 - hot_share)
    width = _entry_bytes(c, table)
    return entries * config.write_cost_per_entry * (1 + width / 100)


def _entry_bytes(c: Candidate, table: Table | None) -> int:
    total = 0
    for name in (*c.columns, *c.include):
        col = table.column(name) if table else None
        width = col.stats.avg_width if col and col.stats else 8
        total += -(-width // 8) * 8
    return total


def estimate_size(c: Candidate, table: Table | None) -> int:
    """Rough B-tree size: rows × (tuple header + keys + line pointer) / 90 % fill, ≥ 8 kB."""
    rows = table.rows if table else 0.0
    if c.where:
        rows *= _partial_fraction(c, table)
    per_entry = 8 + 4 + _entry_bytes(c, table)
    return max(8192, int(rows * per_entry / 0.9))


def _partial_fraction(c: Candidate, table: Table | None) -> float:
    if table is None or not c.where:
        return DEFAULT_PARTIAL_FRACTION
    fraction = 1.0
    for part in c.where.split(" AND "):
        name, _, rest = part.partition(" ")
        col = table.column(name.strip('"'))
        stats = col.stats if col else None
        if stats is None:
            fraction *= DEFAULT_PARTIAL_FRACTION
        elif rest == "IS NULL":
            fraction *= stats.null_frac
        else:
            value = rest.removeprefix("= ").strip("'")
            freqs = dict(zip(stats.most_common_vals, stats.most_common_freqs, strict=False))
            fraction *= freqs.get(value, DEFAULT_PARTIAL_FRACTION)
    return max(fraction, 0.0001)


def _error(oracle: CostOracle, stmt: Analyzed) -> str:
    errors = getattr(oracle, "errors", None)
    if isinstance(errors, dict):
        message = errors.get(stmt.explain_sql)
        if message:
            return f"the planner could not plan it: {message}"
    return "the planner could not plan it"
