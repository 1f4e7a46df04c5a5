"""Hand-written fakes for unit tests: a deterministic cost oracle over the engine's own scans."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from app.engine.advisor.scans import analyze
from app.engine.advisor.whatif import CostRequest
from app.engine.catalog import Catalog
from app.engine.model import (
    Analyzed,
    Candidate,
    Column,
    ColumnStats,
    Index,
    IndexKey,
    Op,
    Predicate,
    Query,
    RelKind,
    Scan,
    Snapshot,
    StatementKind,
    Table,
)

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def column(
    name: str, type_: str = "bigint", *, distinct: float = -1.0, btree: bool = True
) -> Column:
    """A column with simple statistics (negative distinct = fraction of rows)."""
    return Column(name, type_, btree=btree, stats=ColumnStats(n_distinct=distinct, avg_width=8))


def table(
    name: str, rows: float, *cols: Column, kind: RelKind = RelKind.table, **kw: object
) -> Table:
    """A public table."""
    return Table("public", name, kind=kind, columns=cols, rows=rows, **kw)  # type: ignore[arg-type]


def snapshot(*tables: Table, indexes: Sequence[Index] = ()) -> Snapshot:
    """A PostgreSQL 18 snapshot of the given tables."""
    return Snapshot("18.6", 180006, "app", NOW, tables=tables, indexes=tuple(indexes))


class FakeOracle:
    """Costs from a toy planner: seq scan = rows; an index scan = rows × selectivity of its prefix.

    Equality keys multiply selectivity by 1/distinct (IS NULL by the null fraction when the
    statistics know it), a range key after them by 0.3, and an index that delivers the ORDER
    BY of a LIMIT query costs almost nothing, provided its leading keys take every predicate
    (otherwise it would have to walk and filter rows in order until the LIMIT is met).
    """

    kind = "fake"

    def __init__(self, snap: Snapshot) -> None:
        self.catalog = Catalog(snap)
        self.calls = 0
        self.errors: dict[str, str] = {}
        self.baseline_indexes: dict[str, frozenset[str]] = {}
        self._scans: dict[str, Analyzed | None] = {}

    def costs(self, requests: Sequence[CostRequest]) -> list[float | None]:
        out: list[float | None] = []
        for req in requests:
            self.calls += 1
            if req.sql not in self._scans:
                result = analyze(Query(req.sql), self.catalog)
                self._scans[req.sql] = result if isinstance(result, Analyzed) else None
            stmt = self._scans[req.sql]
            if stmt is None:
                self.errors[req.sql] = "syntax error"
                out.append(None)
                continue
            insert = stmt.kind is StatementKind.insert
            # An INSERT's target is written, not read: one row, not a scan of the table.
            scans = [s for s in stmt.scans if not (insert and s.write)]
            out.append(sum(self._scan_cost(s, req.indexes) for s in scans) + 1.0)
        return out

    def _scan_cost(self, scan: Scan, indexes: frozenset[Candidate]) -> float:
        t = self.catalog.table(scan.table)
        rows = t.rows if t else 1000.0
        best = rows
        existing = [
            Candidate(i.table, tuple(IndexKey(c) for c in i.columns), where=i.where)
            for i in self.catalog.snapshot.indexes_on(scan.table)
            if i.valid
        ]
        for idx in (*indexes, *existing):
            if idx.table != scan.table:
                continue
            best = min(best, self._index_cost(scan, idx, rows))
        return best

    def _index_cost(self, scan: Scan, idx: Candidate, rows: float) -> float:
        preds = {p.key: p for p in scan.predicates}
        if idx.where and not any(p.constant for p in scan.predicates):
            return rows
        # A partial index's WHERE answers the constant predicates it names.
        implied = {
            p.key for p in scan.predicates if idx.where and p.constant and p.key in idx.where
        }
        sel = 1.0
        used = 0
        for key in idx.keys:
            pred = preds.get(key.key)
            if pred is None:
                break
            sel *= self._selectivity(scan.table, pred, rows)
            used += 1
            if pred.op not in (Op.eq, Op.in_, Op.is_null):
                break  # a range: later keys no longer narrow the scan
        keys = {k.key for k in idx.keys[:used]}
        for name in implied - keys:
            sel *= self._selectivity(scan.table, preds[name], rows)
        order = [k.key for k in scan.order_by]
        delivered = [k.key for k in idx.keys[used : used + len(order)]] == order
        if scan.limit and order and delivered and keys | implied >= preds.keys():
            return 4.0 + used
        if used == 0 and not implied:
            if scan.join_keys and idx.keys[0].key in scan.join_keys:
                return 4.0
            return rows
        return 4.0 + rows * sel * 1.1

    def _selectivity(self, table_name: str, pred: Predicate, rows: float) -> float:
        if pred.op is Op.is_null:
            return self._null_selectivity(table_name, pred.key, rows)
        if pred.op in (Op.eq, Op.in_):
            return self._eq_selectivity(table_name, pred.key, rows)
        return 0.3

    def _eq_selectivity(self, table_name: str, key: str, rows: float) -> float:
        t = self.catalog.table(table_name)
        col = t.column(key) if t else None
        if col is None or col.stats is None or col.stats.n_distinct == 0:
            return 0.01
        distinct = col.stats.n_distinct
        if distinct < 0:
            distinct = -distinct * rows
        return 1.0 / max(distinct, 1.0)

    def _null_selectivity(self, table_name: str, key: str, rows: float) -> float:
        t = self.catalog.table(table_name)
        col = t.column(key) if t else None
        if col is None or col.stats is None or col.stats.null_frac == 0:
            return self._eq_selectivity(table_name, key, rows)
        return col.stats.null_frac


class DictMemo:
    """An in-process ``app.flows.requests.Memo``: a dict."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    async def get(self, key: str) -> str | None:
        """The value, or ``None``."""
        return self.values.get(key)

    async def set(self, key: str, value: str, ttl_s: int) -> None:
        """Remember ``value`` (``ttl_s`` is ignored in process)."""
        self.values[key] = value
