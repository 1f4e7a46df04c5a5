"""Realistic values for ``$n`` placeholders from pg_stats: common, typical and rare values.

Two bounds on one column (``col >= $1 AND col < $2``, ``BETWEEN``, or bounds split across
the WHERE) are drawn together as one range with ordered bounds (see
:mod:`app.engine.advisor.ranges`): a wide range for the common set, a typical one, a narrow
one for the rare set; :func:`resample_sets` gives more ranges (narrow, typical, wide at other
positions) and other values, for when the first sets do not reproduce what the workload saw.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, traverse_scope

from app.engine.advisor.ranges import (
    NARROW,
    TYPICAL,
    WIDE,
    WIDTHS,
    at_fraction,
    bound,
    distribution,
    draw,
)
from app.engine.advisor.scans import prepare
from app.engine.catalog import Catalog
from app.engine.model import Analyzed, ColumnStats
from app.engine.sql import DIALECT, SqlError, parse

#: Values for LIMIT / OFFSET placeholders: a page of results from the start.
LIMIT_VALUE = "20"
OFFSET_VALUE = "0"
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.In, exp.Between, exp.Like)
_UPPER_BOUND = (exp.LT, exp.LTE)
#: Functions of a placeholder that still stand for a value of the column it is compared with.
_VALUE_FOLDS = exp.Lower | exp.Upper | exp.Trim
#: Views and derived tables looked through to find a base column.
MAX_DEPTH = 4


@dataclass(frozen=True, slots=True)
class Binding:
    """What placeholder ``$index`` is compared with: a column, LIMIT/OFFSET, or nothing known."""

    index: int
    table: str | None = None
    column: str | None = None
    #: ``eq`` (=, IN, LIKE, SET col =), ``lower`` (col > $n), ``upper`` (col < $n), ``limit``,
    #: ``offset``, ``insert`` (a VALUES item), ``unique`` (a VALUES item for a unique column).
    role: str = "unknown"
    #: ``lower`` / ``upper`` when the column is compared through that function.
    transform: str | None = None


@dataclass(frozen=True, slots=True)
class _Draw:
    """How one parameter set is drawn: its label, its ranges, and its equality values."""

    label: str
    #: Fraction of the rows a range (two bounds on one column) selects, and where it starts.
    width: float
    start: float
    #: ``None``: lone bounds and equality values by label (common, typical, rare); ``k``: the
    #: k-th alternative value, and lone bounds that keep ``width`` of the rows.
    alternative: int | None = None


#: The first sets: the common one selects many rows, the rare one few.
FIRST_DRAWS = (
    _Draw("common", WIDE, 0.1),
    _Draw("typical", TYPICAL, 0.5 - TYPICAL / 2),
    _Draw("rare", NARROW, 0.9),
)
#: Where resampled ranges start (fractions of the rows below their lower bound).
RESAMPLE_STARTS = (0.25, 0.6)
#: At most this many resampled sets per statement.
MAX_RESAMPLES = 6


@dataclass(frozen=True, slots=True)
class ParamSet:
    """One assignment of text values (``None`` = NULL) to ``$1 … $n``, with what it represents."""

    label: str
    values: tuple[str | None, ...]


def bindings(stmt: Analyzed, catalog: Catalog) -> tuple[Binding, ...]:
    """For each ``$n`` of the statement, the column (or clause) it feeds.

    Placeholders the engine cannot tie to a column come back with ``role="unknown"``; their
    plans fall back to a generic plan, and the report says so.
    """
    found: dict[int, Binding] = {}
    try:
        tree = qualify(
            prepare(parse(stmt.explain_sql), catalog),
            schema=catalog.schema,
            dialect=DIALECT,
            validate_qualify_columns=False,
            quote_identifiers=False,
        )
    except (SqlError, SqlglotError, RecursionError):
        tree = None
    if tree is not None:
        found.update(_dml_bindings(tree, catalog))
        for scope in traverse_scope(tree):
            for param in scope.expression.find_all(exp.Parameter):
                number = _number(param)
                if number is not None and number not in found:
                    binding = _bind(scope.sources, param, number)
                    if binding is not None:
                        found[number] = binding
    return tuple(found.get(n, Binding(n)) for n in range(1, stmt.params + 1))


def parameter_sets(stmt: Analyzed, catalog: Catalog) -> tuple[list[ParamSet], list[str]]:
    """Up to three value sets (most common, typical, rare) and notes on unbound placeholders."""
    binds = bindings(stmt, catalog)
    notes = [
        f"${b.index} is not compared with a column: planned with the generic plan"
        if b.role == "unknown"
        else f"${b.index} feeds the unique column {b.column}: a value from pg_stats would "
        "collide, so the statement is planned with the generic plan"
        for b in binds
        if b.role in ("unknown", "unique")
    ]
    return _sets(binds, catalog, FIRST_DRAWS, ()), notes


def resample_sets(
    stmt: Analyzed, catalog: Catalog, exclude: tuple[ParamSet, ...] = ()
) -> list[ParamSet]:
    """More sets for when the first ones do not reproduce the workload: other ranges (narrow,
    typical and wide, at other positions) and other values; none that repeats ``exclude``.

    Labels name the range width and position (``wide-2``) when the statement has a range,
    else ``other-k``.
    """
    binds = bindings(stmt, catalog)
    ranged = bool(_range_columns(binds, catalog))
    combos = [
        (n, start, name, width)
        for n, start in enumerate(RESAMPLE_STARTS, 1)
        for name, width in WIDTHS.items()
    ]
    draws = tuple(
        _Draw(f"{name}-{n}" if ranged else f"other-{k}", width, start, k)
        for k, (n, start, name, width) in enumerate(combos)
    )
    return _sets(binds, catalog, draws, exclude)[:MAX_RESAMPLES]


def _sets(
    binds: tuple[Binding, ...],
    catalog: Catalog,
    draws: tuple[_Draw, ...],
    exclude: tuple[ParamSet, ...],
) -> list[ParamSet]:
    ranges = _range_columns(binds, catalog)
    seen = [s.values for s in exclude]
    sets: list[ParamSet] = []
    for how in draws:
        drawn = {key: draw(stats, how.start, how.width) for key, stats in ranges.items()}
        values = tuple(_value(b, catalog, how, drawn) for b in binds)
        if all(v is None for v, b in zip(values, binds, strict=True) if b.role != "unknown"):
            continue
        if values not in seen:
            seen.append(values)
            sets.append(ParamSet(how.label, values))
    return sets


def _range_columns(
    binds: tuple[Binding, ...], catalog: Catalog
) -> dict[tuple[str, str], ColumnStats]:
    """Columns with both a lower and an upper bound: their bounds are drawn as one range."""
    roles: dict[tuple[str, str], set[str]] = {}
    for b in binds:
        if b.role in ("lower", "upper") and b.table and b.column:
            roles.setdefault((b.table, b.column), set()).add(b.role)
    return {
        key: stats
        for key, found in roles.items()
        if found == {"lower", "upper"} and (stats := _stats(catalog, key[0], key[1])) is not None
    }


def _dml_bindings(tree: exp.Expr, catalog: Catalog) -> dict[int, Binding]:
    """Placeholders in INSERT … VALUES and in the SET and WHERE of UPDATE / DELETE.

    Subqueries of the statement are left to the scope pass.
    """
    if isinstance(tree, exp.Insert):
        return _insert_bindings(tree, catalog)
    if not isinstance(tree, exp.Update | exp.Delete) or not isinstance(tree.this, exp.Table):
        return {}
    qualified = catalog.resolve_table(tree.this, cte_names=set())
    if qualified is None:
        return {}
    target = exp.to_table(qualified)
    sources = {"": target, tree.this.alias_or_name: target}
    found: dict[int, Binding] = {}
    for param in tree.find_all(exp.Parameter):
        number = _number(param)
        if number is None or number in found or param.find_ancestor(exp.Select) is not None:
            continue
        binding = _bind(sources, param, number)
        if binding is not None:
            found[number] = binding
    return found


def _insert_bindings(tree: exp.Insert, catalog: Catalog) -> dict[int, Binding]:
    """``INSERT INTO t (a, b) VALUES ($1, $2)``: each placeholder feeds its column."""
    into = tree.this
    table = into.this if isinstance(into, exp.Schema) else into
    values = tree.expression
    if not isinstance(table, exp.Table) or not isinstance(values, exp.Values):
        return {}
    qualified = catalog.resolve_table(table, cte_names=set())
    relation = catalog.table(qualified) if qualified else None
    if qualified is None or relation is None:
        return {}
    columns = (
        [c.name for c in into.expressions]
        if isinstance(into, exp.Schema) and into.expressions
        else [c.name for c in relation.columns]
    )
    unique = {
        ix.columns[0]
        for ix in catalog.snapshot.indexes_on(qualified)
        if ix.unique and len(ix.columns) == 1 and ix.where is None
    }
    found: dict[int, Binding] = {}
    for row in values.expressions:
        for position, item in enumerate(row.expressions if isinstance(row, exp.Tuple) else []):
            inner = item
            while isinstance(inner, exp.Cast | exp.Paren):
                inner = inner.this
            number = _number(inner) if isinstance(inner, exp.Parameter) else None
            if number is None or position >= len(columns):
                continue
            column = columns[position]
            role = "unique" if column in unique else "insert"
            found.setdefault(number, Binding(number, qualified, column, role))
    return found


def _number(param: exp.Expr) -> int | None:
    inner = param.this
    text = str(inner.name if isinstance(inner, exp.Expr) else inner)
    return int(text) if text.isdigit() else None


def _bind(sources: Mapping[str, object], param: exp.Expr, number: int) -> Binding | None:
    parent = param.parent
    # ``lower(email) = lower($1)``: a case or blank fold of the placeholder keeps it a value of
    # the column it is compared with (an expression index's statements are written this way).
    while isinstance(parent, exp.Paren | exp.Cast | exp.Tuple | _VALUE_FOLDS):
        parent = parent.parent
    if isinstance(parent, exp.Limit):
        return Binding(number, role="limit")
    if isinstance(parent, exp.Offset):
        return Binding(number, role="offset")
    if not isinstance(parent, _COMPARISONS):
        return None
    # The placeholder's counterpart must be a plain column, or lower()/upper() of one:
    # ``length(body) > $2`` says nothing about which values of body are realistic.
    found: tuple[exp.Column, exp.Table] | None = None
    transform: str | None = None
    for operand in (parent.this, parent.args.get("expression")):
        inner = operand.unnest() if isinstance(operand, exp.Expr) else None
        if isinstance(inner, exp.Lower | exp.Upper) and isinstance(inner.this, exp.Column):
            transform, inner = ("lower" if isinstance(inner, exp.Lower) else "upper"), inner.this
        if isinstance(inner, exp.Column):
            found = _base_column(sources, inner)
            if found is not None:
                break
        transform = None
    if found is None:
        return None
    column, table = found
    role = "eq"
    if isinstance(parent, exp.GT | exp.GTE | exp.LT | exp.LTE):
        param_right = parent.expression is param or param in parent.expression.find_all(
            exp.Parameter
        )
        upper = isinstance(parent, _UPPER_BOUND)
        role = "upper" if upper == param_right else "lower"
    elif isinstance(parent, exp.Between):
        role = "lower" if parent.args.get("low") is param else "upper"
    return Binding(number, f"{table.db}.{table.name}", column.name, role, transform)


def _base_column(
    sources: Mapping[str, object], column: exp.Column, depth: int = 0
) -> tuple[exp.Column, exp.Table] | None:
    """The base table column behind ``column``, looking through views and derived tables."""
    source = sources.get(column.table)
    if isinstance(source, exp.Table):
        return column, source
    if not isinstance(source, Scope) or depth > MAX_DEPTH:
        return None
    for projection in source.expression.selects if isinstance(source.expression, exp.Query) else []:
        if projection.alias_or_name != column.name:
            continue
        inner = projection.unalias() if isinstance(projection, exp.Alias) else projection
        if isinstance(inner, exp.Column):
            return _base_column(source.sources, inner, depth + 1)
        return None
    return None


def _stats(catalog: Catalog, table_name: str, column: str) -> ColumnStats | None:
    table = catalog.table(table_name)
    col = table.column(column) if table else None
    return col.stats if col is not None else None


def _value(
    binding: Binding,
    catalog: Catalog,
    how: _Draw,
    drawn: Mapping[tuple[str, str], tuple[str, str] | None],
) -> str | None:
    if binding.role == "limit":
        return LIMIT_VALUE
    if binding.role == "offset":
        return OFFSET_VALUE
    if binding.table is None or binding.column is None or binding.role == "unique":
        return None
    stats = _stats(catalog, binding.table, binding.column)
    if stats is None:
        return None
    key = (binding.table, binding.column)
    if key in drawn:
        pair = drawn[key]
        value = None if pair is None else pair[0] if binding.role == "lower" else pair[1]
    elif binding.role in ("lower", "upper") and how.alternative is not None:
        value = bound(stats, binding.role, how.width)
    elif how.alternative is not None:
        found = _alternatives(stats)
        value = found[how.alternative % len(found)] if found else None
    else:
        value = _from_stats(stats, binding.role, how.label)
    if value is not None and binding.transform == "lower":
        return value.lower()
    if value is not None and binding.transform == "upper":
        return value.upper()
    return value


def _alternatives(stats: ColumnStats) -> list[str]:
    """Other equality values: the next most common ones, then histogram quantiles."""
    points = distribution(ColumnStats(histogram_bounds=stats.histogram_bounds))
    quantiles = [v for q in (0.25, 0.75, 0.1, 0.9) if (v := at_fraction(points, q)) is not None]
    found: list[str] = []
    for value in (*stats.most_common_vals[1:3], *quantiles, *stats.most_common_vals[3:5]):
        if value not in found:
            found.append(value)
    return found


def _from_stats(stats: ColumnStats, role: str, label: str) -> str | None:
    """Pick a value: MCVs for common, the histogram's middle for typical, its edge for rare.

    For a lone range bound the choice is turned around so that the rows it selects match the
    label: ``col > v`` selects few rows when ``v`` is near the top of the column's values
    (the histogram, else the most common values sorted by value, not by frequency).
    """
    mcv, hist = stats.most_common_vals, stats.histogram_bounds
    if role in ("eq", "insert"):
        if label == "common" and mcv:
            return mcv[0]
        if label == "typical" and hist:
            return hist[len(hist) // 2]
        if label == "rare":
            # The least frequent of the most common values (the list is ordered by frequency).
            return hist[1] if len(hist) > 2 else (mcv[-1] if mcv else None)
        return mcv[0] if mcv else (hist[len(hist) // 2] if hist else None)
    position = {"common": 0.1, "typical": 0.5, "rare": 0.95}[label]
    if role == "upper":
        position = 1 - position
    # ``col > v`` keeps rows above v: a low v ("common") keeps many, a high v keeps few.
    return at_fraction(distribution(stats), position)
