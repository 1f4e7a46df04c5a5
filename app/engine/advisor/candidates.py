"""Index candidates from scans: keys ordered equality → range → sort; partial and covering."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import permutations

from app.engine.advisor.constants import (
    MIN_CONSTANT_CALLS,
    Constant,
    Site,
    describe,
    evidenced,
)
from app.engine.catalog import Catalog
from app.engine.model import (
    Analyzed,
    Candidate,
    Index,
    IndexKey,
    Op,
    Predicate,
    Rejection,
    RelKind,
    Scan,
    SortKey,
    Table,
)
from app.engine.sql import canonical

_EQUALITY = (Op.eq, Op.in_, Op.is_null)
_RANGE = (Op.range, Op.like_prefix)
_INDEXABLE = (RelKind.table, RelKind.partitioned, RelKind.matview)


@dataclass(frozen=True, slots=True)
class CandidateSet:
    """The candidates worth asking the planner about, and what was turned away up front."""

    candidates: tuple[Candidate, ...]
    rejected: tuple[Rejection, ...]
    #: Statement positions (into the analysed workload) each candidate may serve.
    serves: dict[Candidate, frozenset[int]]
    #: Partial predicate (a candidate's ``where``) → why its values count as constant.
    evidence: dict[str, str] = field(default_factory=dict)


def generate(
    analyzed: Sequence[Analyzed],
    catalog: Catalog,
    *,
    max_columns: int = 3,
    max_include: int = 2,
    min_constant_calls: int = MIN_CONSTANT_CALLS,
) -> CandidateSet:
    """Propose B-tree candidates for every scan of every analysed statement.

    Candidates already served by an existing index (same predicate, its keys a prefix of the
    existing index's keys with compatible directions) are rejected with the index named.
    Partial candidates come only from predicates the workload shows constant
    (:func:`app.engine.advisor.constants.evidenced`); other literals are keys like ``$n``.
    """
    constants = evidenced(analyzed, min_calls=min_constant_calls)
    evidence: dict[str, str] = {}
    serves: dict[Candidate, set[int]] = {}
    rejected: dict[str, Rejection] = {}
    existing: dict[str, tuple[Index, ...]] = {}
    for index in catalog.snapshot.indexes:
        existing[index.table] = (*existing.get(index.table, ()), index)
    for pos, stmt in enumerate(analyzed):
        for j, scan in enumerate(stmt.scans):
            if not (scan.predicates or scan.join_keys or scan.order_by or scan.group_by):
                continue
            table = catalog.table(scan.table)
            if table is None:
                continue
            if table.kind not in _INDEXABLE:
                label = f"{scan.table} ({table.kind.value})"
                rejected[label] = Rejection(label, f"a {table.kind.value} cannot be indexed")
                continue
            backed = constants.get((pos, j), ())
            where = _where_sql(backed)
            if where and where not in evidence:
                evidence[where] = describe(backed)
            shapes = _for_scan(
                scan, table, existing, backed, max_columns=max_columns, max_include=max_include
            )
            for cand in shapes:
                problem = _unusable(cand, table)
                if problem:
                    rejected[cand.label()] = Rejection(cand.label(), problem)
                    continue
                covering = [i for i in existing.get(table.qualified, ()) if covered_by(cand, (i,))]
                if covering:
                    reason = f"covered by existing index {covering[0].name}"
                    names = tuple(i.qualified for i in covering)
                    rejected[cand.label()] = Rejection(cand.label(), reason, names)
                    continue
                serves.setdefault(cand, set()).add(pos)
    _extend_serves(serves, analyzed, constants)
    ordered = sorted(serves, key=lambda c: (c.table, c.label()))
    return CandidateSet(
        candidates=tuple(ordered),
        rejected=tuple(rejected.values()),
        serves={c: frozenset(serves[c]) for c in ordered},
        evidence={w: e for w, e in evidence.items() if e},
    )


def _key_shapes(
    eq: list[IndexKey],
    ranges: list[IndexKey],
    sort: list[IndexKey],
    joins: list[IndexKey],
    group: list[IndexKey],
    max_columns: int,
) -> list[list[IndexKey]]:
    """Key lists to try: singles, equality prefixes (+ one range, the sort, or a join key).

    Equality columns come most selective first; every order of them is tried as well (at most
    3! = 6), because the order that lets one index serve several statements is not knowable
    from one statement alone.
    """
    shapes: list[list[IndexKey]] = [[k] for k in (*eq, *ranges, *joins)]
    for k in range(1, min(len(eq), max_columns) + 1):
        prefix = eq[:k]
        shapes.append(prefix)
        for tail in (ranges[:1], sort, joins[:1]):
            if tail:
                shapes.append([*prefix, *tail])
    for width in range(2, min(len(eq), max_columns) + 1):
        shapes.extend(list(p) for p in permutations(eq[:max_columns], width))
    if sort:
        shapes.append(sort)
    if group and not eq:
        shapes.append(group)
    return shapes


def _extend_serves(
    serves: dict[Candidate, set[int]],
    analyzed: Sequence[Analyzed],
    constants: dict[Site, tuple[Constant, ...]],
) -> None:
    """A candidate serves every statement whose scans on its table mention its leading key."""
    by_table: dict[str, list[Candidate]] = {}
    for cand in serves:
        by_table.setdefault(cand.table, []).append(cand)
    for pos, stmt in enumerate(analyzed):
        for j, scan in enumerate(stmt.scans):
            mentioned = _mentioned(scan)
            where = _where_sql(constants.get((pos, j), ()))
            for cand in by_table.get(scan.table, ()):
                if cand.keys[0].key in mentioned and (cand.where is None or cand.where == where):
                    serves[cand].add(pos)


def _mentioned(scan: Scan) -> set[str]:
    keys = {p.key for p in scan.predicates}
    keys.update(scan.join_keys, scan.group_by, (k.key for k in scan.order_by))
    return keys


def _selectivity_rank(pred: Predicate, table: Table) -> float:
    """Higher = more selective; equality columns go first in that order."""
    if pred.op is Op.is_null:
        return 0.0
    col = table.column(pred.key)
    stats = col.stats if col else None
    if stats is None or stats.n_distinct == 0:
        return 1.0 if pred.expression else 2.0
    distinct = stats.n_distinct if stats.n_distinct > 0 else -stats.n_distinct * max(table.rows, 1)
    return distinct + (0.5 if pred.op is Op.eq else 0.0)


def _keys(preds: Iterable[Predicate]) -> list[IndexKey]:
    seen: dict[str, IndexKey] = {}
    for p in preds:
        seen.setdefault(p.key, IndexKey(p.key, expression=p.expression))
    return list(seen.values())


def _sort_keys(order: Sequence[SortKey]) -> list[IndexKey]:
    """Sort keys as index keys; an index read backwards serves the inverted direction."""
    if not order:
        return []
    flip = order[0].descending
    return [IndexKey(k.key, descending=k.descending != flip) for k in order]


def _for_scan(
    scan: Scan,
    table: Table,
    indexes_by_table: dict[str, tuple[Index, ...]],
    constants: Sequence[Constant],
    *,
    max_columns: int,
    max_include: int,
) -> list[Candidate]:
    eq_preds = sorted(
        (p for p in scan.predicates if p.op in _EQUALITY),
        key=lambda p: -_selectivity_rank(p, table),
    )
    eq = _keys(eq_preds)
    ranges = _keys(
        p for p in scan.predicates if p.op in _RANGE and p.key not in {k.key for k in eq}
    )
    fixed = {k.key for k in eq}
    sort = [k for k in _sort_keys(scan.order_by) if k.key not in fixed] if scan.limit else []
    joins = [IndexKey(j) for j in scan.join_keys if j not in fixed]
    group = [IndexKey(g) for g in scan.group_by if g not in fixed]

    shapes = _key_shapes(eq, ranges, sort, joins, group, max_columns)
    table_name = table.qualified
    out: dict[Candidate, None] = {}
    for shape in shapes:
        keys = tuple(_dedupe(shape)[:max_columns])
        if keys:
            out.setdefault(Candidate(table_name, keys))

    # Partial: constant predicates (status = 'pending', deleted_at IS NULL) become the WHERE,
    # when the workload shows them constant (``constants``); other literals stay keys.
    where = _where_sql(constants)
    if where:
        rest = [k for k in eq if k.key not in {c.predicate.key for c in constants}]
        for shape in ([*rest[:2], *ranges[:1]], [*rest[:2], *sort], rest[:1]):
            trimmed = tuple(_dedupe(shape)[:max_columns])
            if trimmed:
                out.setdefault(Candidate(table_name, trimmed, where=where))

    # Covering: the widest key shape plus the few other columns the statement reads.
    existing = indexes_by_table.get(table_name, ())
    if max_include and eq:
        widest = max(out, key=lambda c: (c.where is None, len(c.keys)))
        if covered_by(widest, existing) is not None:
            return list(out)  # an existing index has these keys; INCLUDE alone is not worth it
        key_names = {k.key for k in widest.keys}
        extra = tuple(c for c in scan.columns if c not in key_names)
        if not all(_narrow(table, c) for c in extra):
            return list(out)
        if 0 < len(extra) <= max_include and not scan.write:
            out.setdefault(Candidate(table_name, widest.keys, include=extra, where=widest.where))
    return list(out)


def _where_sql(constants: Sequence[Constant]) -> str | None:
    """The partial-index predicate a scan's evidenced constant conditions make, if any."""
    return " AND ".join(c.sql() for c in constants) if constants else None


#: Widest column (average bytes, pg_stats.avg_width) worth copying into an index's INCLUDE.
MAX_INCLUDE_WIDTH = 32
_FIXED_WIDTH = ("smallint", "integer", "bigint", "boolean", "date", "timestamp", "uuid", "real")


def _narrow(table: Table, name: str) -> bool:
    """Small enough to carry in an index: known narrow by statistics, or a fixed-width type."""
    col = table.column(name)
    if col is None:
        return False
    if col.stats is not None:
        return col.stats.avg_width <= MAX_INCLUDE_WIDTH
    return col.type.startswith(_FIXED_WIDTH) or col.type == "double precision"


def _dedupe(keys: Sequence[IndexKey]) -> list[IndexKey]:
    seen: set[str] = set()
    result = []
    for k in keys:
        if k.key not in seen:
            seen.add(k.key)
            result.append(k)
    return result


def _unusable(cand: Candidate, table: Table) -> str | None:
    for key in (*cand.keys, *(IndexKey(c) for c in cand.include)):
        if key.expression:
            continue
        col = table.column(key.key)
        if col is None:
            return f"column {key.key} not found on {table.qualified}"
        if key.key in cand.columns and not col.btree:
            return f"column {key.key} has type {col.type}, which has no B-tree operator class"
    return None


def covered_by(cand: Candidate, existing: Iterable[Index]) -> Index | None:
    """The existing valid B-tree index that already serves ``cand``, if any."""
    want = [canonical(k.key) if k.expression else k.key for k in cand.keys]
    for index in existing:
        if not index.valid or index.using != "btree" or len(index.columns) < len(want):
            continue
        if (index.where and canonical(index.where)) != (cand.where and canonical(cand.where)):
            continue
        have = [canonical(c) if not _is_plain(c) else c for c in index.columns]
        if have[: len(want)] != want:
            continue
        if len(want) > 1:
            mine = [k.descending for k in cand.keys]
            theirs = list(index.descending[: len(want)]) or [False] * len(want)
            if mine != theirs and mine != [not d for d in theirs]:
                continue
        available = set(index.columns[len(want) :]) | set(index.include)
        if not set(cand.include) <= available:
            continue
        return index
    return None


def _is_plain(key: str) -> bool:
    return key.replace("_", "").isalnum() or not any(ch in key for ch in "()+-*/:, ")
