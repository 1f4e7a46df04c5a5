"""Workload-wide greedy index selection on weighted what-if costs, with write overhead and budgets.

Each round asks the cost oracle, for every remaining candidate, what the statements it may
serve would cost with the indexes chosen so far plus that candidate; it picks the one with the
largest net gain (Σ calls × cost saved − write overhead) and stops when nothing clears the
thresholds. A final pass drops any choice that later choices made redundant. Cost lookups are
cached on (statement, the chosen indexes that statement could use), so a round only plans the
statements touched by the previous pick. Then a composite may replace the chosen narrower
picks it serves at least as well (``composite.py``): greedy additions alone cannot see that.
"""
# Long module: one greedy algorithm with its costs and budgets; splitting it hides the loop.

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from app.engine.advisor.budget import fmt_bytes
from app.engine.advisor.candidates import CandidateSet
from app.engine.advisor.composite import Comparison, parts_of, tie_reason, top_n_statements
from app.engine.advisor.sizes import DEDUP_VERSION, estimate_size, key_bytes
from app.engine.advisor.whatif import CostOracle, CostRequest
from app.engine.catalog import Catalog
from app.engine.model import Analyzed, Candidate, Rejection, StatementKind

Progress = Callable[[str, int, int], None]
_NONE: frozenset[Candidate] = frozenset()
#: A cached cost: (statement position, the new indexes it is planned with).
_Key = tuple[int, frozenset[Candidate]]

#: Planner cost units charged per index entry written (a B-tree insert touches a few cached
#: pages and writes WAL; seq_page_cost = 1). A heuristic until evidence measures writes.
WRITE_COST_PER_ENTRY = 1.0
#: Assumed fraction of a partial index's rows when statistics cannot tell.


@dataclass(frozen=True, slots=True)
class SelectionConfig:
    """Thresholds and budgets for selection."""

    #: Some statement the index serves must get at least this much cheaper (0.2 = 20 %).
    min_improvement: float = 0.2
    #: Statements estimated cheaper than this (cost units) are fast already: saving on them
    #: does not justify an index (Dexter uses 100).
    min_cost: float = 50.0
    #: Picks whose net gain is within this fraction of the best count as a tie; the smallest
    #: (then the one with fewer keys) wins, so a narrow index beats a wide one that does no better.
    near_tie: float = 0.02
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
    #: Why it was chosen over other options (e.g. the narrower picks a composite replaced).
    notes: tuple[str, ...] = ()


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
            CostRequest(self.analyzed[q].explain_sql, self.analyzed[q].params, s)
            for q, s in missing
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
    return _Greedy(analyzed, cands, oracle, catalog, config or SelectionConfig()).run(progress)


class _Greedy:
    """State of one selection run: cached costs, who serves what, the picks so far."""

    def __init__(
        self,
        analyzed: Sequence[Analyzed],
        cands: CandidateSet,
        oracle: CostOracle,
        catalog: Catalog,
        config: SelectionConfig,
    ) -> None:
        self.catalog, self.config = catalog, config
        self.analyzed = analyzed
        self.candidates = cands.candidates
        self.costs = _Costs(analyzed, oracle)
        served = [q for q, stmt in enumerate(analyzed) if stmt.scans]  # baseline for all
        empty: frozenset[Candidate] = frozenset()
        self.costs.fetch([(q, empty) for q in served])
        self.unplannable = {
            q: _error(oracle, analyzed[q]) for q in served if self.costs.get(q, empty) is None
        }
        self.baseline = {q: c for q in served if (c := self.costs.get(q, empty)) is not None}
        self.serves = {
            c: frozenset(q for q in cands.serves[c] if q in self.baseline) for c in cands.candidates
        }
        self.weights = {q: float(max(analyzed[q].query.calls, 1)) for q in self.baseline}
        self.writes = _write_load(analyzed)
        self.chosen: list[Candidate] = []
        #: Statement → the picks it could use, kept in step with ``chosen`` by choose/unchoose.
        self._usable: dict[int, frozenset[Candidate]] = {}
        #: Per-candidate constants, computed once (hashing a Candidate is not free).
        self._penalties: dict[Candidate, float] = {}
        self._sizes: dict[Candidate, int] = {}
        self.rejected: dict[Candidate, str] = {}
        #: Each candidate's value on its own (no other new index): every pick must also stand
        #: alone, since each becomes its own pull request and may be merged alone.
        self.alone: dict[Candidate, _Eval] = {}
        #: Composite → its comparison with the chosen parts (the last one made).
        self.compared: dict[Candidate, Comparison] = {}
        #: Composite → why it was not compared with its parts: at best a near tie.
        self.ties: dict[Candidate, str] = {}

    def usable(self, q: int) -> frozenset[Candidate]:
        """The current picks that statement ``q`` could use."""
        return self._usable.get(q, _NONE)

    def choose(self, c: Candidate) -> None:
        """Add ``c`` to the picks."""
        self.chosen.append(c)
        for q in self.serves[c]:
            self._usable[q] = self.usable(q) | {c}

    def unchoose(self, c: Candidate) -> None:
        """Take ``c`` out of the picks again."""
        self.chosen.remove(c)
        for q in self.serves[c]:
            self._usable[q] = self.usable(q) - {c}

    def penalty(self, c: Candidate) -> float:
        found = self._penalties.get(c)
        if found is None:
            found = self._penalties[c] = _penalty(c, self.catalog, self.writes, self.config)
        return found

    def _pairs(self, c: Candidate) -> list[tuple[int, _Key, _Key]]:
        """Per statement ``c`` serves: the cost keys without ``c`` (other picks) and with it."""
        alone = frozenset((c,))
        usable = self._usable
        pairs = []
        for q in self.serves[c]:
            base = usable.get(q, _NONE)
            if base and c in base:
                base = base - alone
            pairs.append((q, (q, base), (q, base | alone)))
        return pairs

    def _value(self, c: Candidate, pairs: list[tuple[int, _Key, _Key]]) -> _Eval:
        ev = _Eval(penalty=self.penalty(c))
        cache, weights = self.costs.cache, self.weights
        floor = max(self.config.min_cost, 1e-9)
        for q, without, with_c in pairs:
            before, after = cache[without], cache[with_c]
            if before is None or after is None or before < floor:
                continue
            saved = max(before - after, 0.0)
            ev.gain += weights[q] * saved
            ev.best_ratio = max(ev.best_ratio, saved / before)
        return ev

    def marginal(self, c: Candidate) -> _Eval:
        """Weighted saving of ``c`` on top of the current picks (other than ``c``) per statement.

        Plans what is not cached yet, in one batch.
        """
        return self.evaluate([c])[c]

    def evaluate(self, batch: Sequence[Candidate]) -> dict[Candidate, _Eval]:
        """Marginal value of each candidate, with all missing costs planned in one batch."""
        pairs = {c: self._pairs(c) for c in batch}
        cache = self.costs.cache
        missing: dict[_Key, None] = {}
        for ps in pairs.values():
            for _, without, with_c in ps:
                if without not in cache:
                    missing[without] = None
                if with_c not in cache:
                    missing[with_c] = None
        self.costs.fetch(list(missing))
        return {c: self._value(c, ps) for c, ps in pairs.items()}

    def refusal(
        self, c: Candidate, ev: _Eval, size_used: int, per_table: dict[str, int]
    ) -> str | None:
        reason = _refusal(c, ev, self.config, per_table, size_used, self.catalog, len(self.chosen))
        alone = self.alone.get(c)
        if reason is None and alone is not None and alone.best_ratio < self.config.min_improvement:
            return (
                f"on its own it improves no statement by {self.config.min_improvement:.0%} "
                f"(best {alone.best_ratio:.0%}); it pays only together with other new indexes"
            )
        return reason

    def run(self, progress: Progress | None) -> Selection:
        remaining = [c for c in self.candidates if self.serves[c]]
        for c in self.candidates:
            if not self.serves[c]:
                self.rejected[c] = "no statement it serves could be planned"
        evals = self.evaluate(remaining)
        first_round = dict(evals)
        self.alone = first_round
        size_used = 0
        per_table: dict[str, int] = {}
        while remaining:
            if progress:
                progress("select", len(self.chosen), len(self.chosen) + 1)
            eligible = [c for c in remaining if not self.refusal(c, evals[c], size_used, per_table)]
            if not eligible:
                break
            best = self.best(eligible, evals)
            self.choose(best)
            remaining.remove(best)
            per_table[best.table] = per_table.get(best.table, 0) + 1
            size_used += _size(best, self.catalog)
            touched = self.serves[best]
            evals.update(self.evaluate([c for c in remaining if self.serves[c] & touched]))
        reasons = {c: self.refusal(c, evals[c], size_used, per_table) for c in remaining}
        self.prune()
        self.replace_parts(size_used)
        for c in remaining:
            if c in self.chosen:
                continue  # a composite that replaced chosen parts
            reason = reasons[c]
            was_good = first_round[c].net > 0 and evals[c].gain < first_round[c].gain
            if reason and not reason.startswith("budget") and was_good:
                compared = self.compared.get(c)
                if compared is not None and compared.replaced and self.stands_alone(c):
                    reason = compared.reason_for_composite()
                elif c in self.ties:
                    reason = self.ties[c]
                else:
                    reason = _superseded(c, self.chosen, self.serves) or reason
            self.rejected[c] = reason or "not chosen"
        return self.result()

    def stands_alone(self, c: Candidate) -> bool:
        """``c`` on its own nets a gain and makes some statement cheaper by the threshold."""
        alone = self.alone.get(c)
        return (
            alone is not None and alone.net > 0 and alone.best_ratio >= self.config.min_improvement
        )

    def replace_parts(self, size_used: int) -> None:
        """Let composites replace chosen narrower picks while that nets more (``composite.py``).

        Each round makes the best winning swap; every swap strictly raises the workload's net
        benefit, so the loop ends. A composite that could at best tie (it could replace one
        index, costs no less to write, and avoids no sort) is not planned; after a swap only
        the composites on that table are compared again.
        """
        dirty: set[str] | None = None  # tables whose comparisons are stale; None: all
        for _ in range(len(self.candidates)):
            best: Comparison | None = None
            chosen = set(self.chosen)
            for c in self.candidates:
                parts = () if c in chosen else parts_of(c, self.chosen)
                if not parts or not self.serves[c] or not self.stands_alone(c):
                    continue
                found = self.compared.get(c)
                if found is None or dirty is None or c.table in dirty:
                    statements = self.serves[c].union(*(self.serves[p] for p in parts))
                    top_n = top_n_statements(c, parts, self.analyzed, statements)
                    write_parts = sum(self.penalty(p) for p in parts)
                    if not top_n and len(parts) < 2 and self.penalty(c) >= write_parts:
                        self.ties[c] = tie_reason(c, parts, self.penalty(c), write_parts)
                        continue
                    found = self.compared[c] = self.compare(c, parts, statements, top_n)
                extra = self.size(c) - sum(self.size(p) for p in found.replaced)
                budget = self.config.storage_budget_bytes
                if budget is not None and size_used + extra > budget:
                    continue
                if found.wins and (best is None or found.margin > best.margin):
                    best = found
            if best is None:
                return
            at = self.chosen.index(best.replaced[0])
            for p in best.replaced:
                self.unchoose(p)
                self.rejected[p] = best.reason_for_part()
            self.choose(best.composite)
            self.chosen.insert(at, self.chosen.pop())
            size_used += self.size(best.composite) - sum(self.size(p) for p in best.replaced)
            dirty = {best.composite.table}

    def compare(
        self, c: Candidate, parts: tuple[Candidate, ...], statements: frozenset[int], top_n: int
    ) -> Comparison:
        """The chosen picks against ``c`` plus the parts that still pay next to it."""
        chosen, usable = list(self.chosen), dict(self._usable)
        with_parts = {q: self.usable(q) for q in statements}
        self.choose(c)
        replaced = []
        for p in parts:
            ev = self.marginal(p)
            if ev.net <= 0 or ev.best_ratio < self.config.min_improvement:
                self.unchoose(p)
                replaced.append(p)
        with_c = {q: self.usable(q) for q in statements}
        self.chosen, self._usable = chosen, usable
        return Comparison(
            composite=c,
            parts=parts,
            replaced=tuple(replaced),
            benefit_parts=self.benefit(with_parts),
            benefit=self.benefit(with_c),
            write_parts=sum(self.penalty(p) for p in replaced),
            write=self.penalty(c),
            top_n=top_n,
        )

    def benefit(self, plans: dict[int, frozenset[Candidate]]) -> float:
        """Σ calls × cost saved against no new index, every statement counted (no floor)."""
        self.costs.fetch(list(plans.items()))
        total = 0.0
        for q, indexes in plans.items():
            cost = self.costs.get(q, indexes)
            if cost is not None:
                total += self.weights[q] * max(self.baseline[q] - cost, 0.0)
        return total

    def best(self, eligible: Sequence[Candidate], evals: dict[Candidate, _Eval]) -> Candidate:
        """Largest net gain; among near-ties the one serving most statements, then the smallest.

        Serving more statements lets a later pick replace earlier ones (the prune pass drops
        what it makes redundant), so the workload ends with fewer, shared indexes.
        """
        top = max(evals[c].net for c in eligible)
        tied = [c for c in eligible if evals[c].net >= top * (1 - self.config.near_tie)]
        return min(
            tied,
            key=lambda c: (
                -len(self.serves[c]),
                self.size(c),
                *_shape(c),
                -_lead_distinct(c, self.catalog),
                c.label(),
            ),
        )

    def size(self, c: Candidate) -> int:
        found = self._sizes.get(c)
        if found is None:
            found = self._sizes[c] = _size(c, self.catalog)
        return found

    def prune(self) -> None:
        """Drop a pick whose marginal value vanished once later picks were made."""
        for c in reversed(list(self.chosen)):
            ev = self.marginal(c)
            if ev.net <= 0 or ev.best_ratio < self.config.min_improvement:
                self.unchoose(c)
                self.rejected[c] = (
                    _superseded(c, self.chosen, self.serves)
                    or "made redundant by the other choices"
                )

    def result(self) -> Selection:
        final_keys = [(q, self.usable(q)) for q in self.baseline]
        self.costs.fetch(final_keys)
        final = {q: self.costs.get(q, s) or self.baseline[q] for q, s in final_keys}
        return Selection(
            chosen=tuple(self.pick(c) for c in self.chosen),
            rejected=tuple(Rejection(c.label(), r) for c, r in self.rejected.items()),
            baseline=self.baseline,
            final=final,
            unplannable=self.unplannable,
        )

    def pick(self, c: Candidate) -> Chosen:
        """A pick with its independent effect: each statement with no new index vs only this one."""
        alone = [(q, frozenset({c})) for q in self.serves[c]]
        self.costs.fetch(alone)
        effects = {
            q: (self.baseline[q], self.costs.get(q, s) or self.baseline[q]) for q, s in alone
        }
        return Chosen(
            candidate=c,
            gain=sum(self.weights[q] * max(b - a, 0.0) for q, (b, a) in effects.items()),
            write_penalty=self.penalty(c),
            size_bytes=_size(c, self.catalog),
            effects=effects,
            notes=(found.note(),) if (found := self.compared.get(c)) and found.wins else (),
        )


def _lead_distinct(c: Candidate, catalog: Catalog) -> float:
    """Distinct values of the leading key: among equivalent orders, most selective first."""
    table = catalog.table(c.table)
    col = table.column(c.keys[0].key) if table else None
    if table is None or col is None or col.stats is None:
        return 0.0
    distinct = col.stats.n_distinct
    return distinct if distinct >= 0 else -distinct * table.rows


def _shape(c: Candidate) -> tuple[int, int, int]:
    """Simpler first: fewer keys, no INCLUDE, no predicate."""
    return (len(c.keys), len(c.include), c.where is not None)


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
        size = _size(c, catalog)
        if size_used + size > config.storage_budget_bytes:
            return (
                f"budget: its ≈ {fmt_bytes(size)} would go over the audit's disk budget of "
                f"{fmt_bytes(config.storage_budget_bytes)} ({fmt_bytes(size_used)} already chosen)"
            )
    return None


def _superseded(
    c: Candidate, chosen: Sequence[Candidate], serves: dict[Candidate, frozenset[int]]
) -> str | None:
    overlap = [o for o in chosen if o.table == c.table and serves[o] & serves[c]]
    if not overlap:
        return None
    names = ", ".join(o.label() for o in overlap)
    return f"served well enough by the chosen {names}"


@dataclass(slots=True)
class _Writes:
    """Rows written to a table by the workload, by kind."""

    inserted: float = 0.0
    updates: list[tuple[float, tuple[str, ...]]] = field(default_factory=list)


def _write_load(analyzed: Sequence[Analyzed]) -> dict[str, _Writes]:
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


def _penalty(
    c: Candidate, catalog: Catalog, writes: dict[str, _Writes], config: SelectionConfig
) -> float:
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
    width = key_bytes(c, table)
    return entries * config.write_cost_per_entry * (1 + width / 100)


def _size(c: Candidate, catalog: Catalog) -> int:
    """Estimated bytes of ``c`` (deduplicated where the server deduplicates)."""
    dedup = catalog.snapshot.server_version_num >= DEDUP_VERSION
    return estimate_size(c, catalog.table(c.table), dedup=dedup)


def _error(oracle: CostOracle, stmt: Analyzed) -> str:
    errors = getattr(oracle, "errors", None)
    if isinstance(errors, dict):
        message = errors.get(stmt.explain_sql)
        if message:
            return f"the planner could not plan it: {message}"
    return "the planner could not plan it"
