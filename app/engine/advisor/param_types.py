"""Types for the ``$n`` PostgreSQL cannot type from their context, read from the columns nearby.

pg_stat_statements replaces every constant with ``$n``, and some places then leave the planner
nothing to infer a type from: ``l_quantity <= $8 + $9`` ("operator is not unique: unknown +
unknown"), ``sum(CASE … THEN $3 ELSE $4 END)`` ("function sum(text) does not exist"). The
original statement had typed constants there, so the types are not a guess about the workload,
only about which of a few constructions it used; the column compared with, or the aggregate
around, says which. Only types from :data:`_CANONICAL` are ever written, never catalog text.
"""

from __future__ import annotations

from sqlglot import exp

from app.engine.catalog import Catalog

__all__ = ["canonical_type", "param_casts"]

#: Catalog type (``format_type`` without modifiers) → the cast written for a parameter.
_CANONICAL = {
    "smallint": "smallint",
    "integer": "integer",
    "bigint": "bigint",
    "numeric": "numeric",
    "real": "real",
    "double precision": "double precision",
    "date": "date",
    "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz",
    "interval": "interval",
    "text": "text",
    "character varying": "text",
    "character": "text",
    "boolean": "boolean",
    "uuid": "uuid",
}
_TEMPORAL = frozenset({"date", "timestamp", "timestamptz"})
_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div)
_COMPARISON = (exp.EQ, exp.NEQ, exp.LT, exp.LTE, exp.GT, exp.GTE)
#: Aggregates whose argument is a number when its type is not otherwise known.
_NUMERIC_AGGREGATES = (exp.Sum, exp.Avg)


def canonical_type(catalog_type: str) -> str | None:
    """The cast for a column of ``catalog_type``, or None (arrays, user types, the rest).

    >>> canonical_type("numeric(15,2)"), canonical_type("character(25)"), canonical_type("int[]")
    ('numeric', 'text', None)
    """
    if "[" in catalog_type:
        return None
    return _CANONICAL.get(catalog_type.split("(")[0].strip().lower())


def param_casts(tree: exp.Expr, catalog: Catalog) -> dict[int, str]:
    """``$n`` → cast, for parameters whose only neighbours are other parameters."""
    columns = _ColumnTypes(tree, catalog)
    casts: dict[int, str] = {}
    for node in tree.find_all(*_ARITHMETIC):
        if isinstance(node.parent, _ARITHMETIC) or not _only_params(node):
            continue
        wanted = columns.context(node)
        if wanted in _TEMPORAL and isinstance(node, exp.Add | exp.Sub):
            # date ± interval: the first operand is the date, the rest are intervals
            first, *rest = _params(node)
            casts[first] = wanted
            casts.update(dict.fromkeys(rest, "interval"))
        elif wanted is not None and wanted not in _TEMPORAL:
            casts.update(dict.fromkeys(_params(node), wanted))
    for case in tree.find_all(exp.Case):
        results = [branch.args.get("true") for branch in case.args.get("ifs") or ()]
        results.append(case.args.get("default"))
        if not all(isinstance(r, exp.Parameter) for r in results if r is not None):
            continue
        wanted = columns.context(case)
        if wanted is None and isinstance(_unwrapped_parent(case), _NUMERIC_AGGREGATES):
            wanted = "numeric"
        if wanted is not None:
            casts.update(dict.fromkeys(_params(case, results_only=True), wanted))
    return casts


def _number(param: exp.Parameter) -> int | None:
    text = param.name
    return int(text) if text.isdigit() else None


def _only_params(node: exp.Expr) -> bool:
    """An arithmetic tree whose leaves are all parameters."""
    if isinstance(node, exp.Paren):
        return _only_params(node.this)
    if isinstance(node, _ARITHMETIC):
        return _only_params(node.this) and _only_params(node.expression)
    return isinstance(node, exp.Parameter)


def _params(node: exp.Expr, *, results_only: bool = False) -> list[int]:
    """The parameter numbers of an arithmetic tree, left to right (of a CASE: its results)."""
    if results_only and isinstance(node, exp.Case):
        found = [b.args.get("true") for b in node.args.get("ifs") or ()]
        found.append(node.args.get("default"))
        return [n for p in found if isinstance(p, exp.Parameter) and (n := _number(p))]
    return [n for p in node.find_all(exp.Parameter) if (n := _number(p)) is not None]


def _unwrapped_parent(node: exp.Expr) -> exp.Expr | None:
    parent = node.parent
    while isinstance(parent, exp.Paren):
        parent = parent.parent
    return parent


class _ColumnTypes:
    """The type of a column a statement names, through its table aliases."""

    def __init__(self, tree: exp.Expr, catalog: Catalog) -> None:
        ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
        self._by_alias: dict[str, dict[str, str]] = {}
        for table in tree.find_all(exp.Table):
            qualified = catalog.resolve_table(table, cte_names=ctes)
            found = catalog.table(qualified) if qualified else None
            if found is not None:
                self._by_alias[table.alias_or_name] = {c.name: c.type for c in found.columns}

    def of(self, node: exp.Expr) -> str | None:
        """The cast for a column's type, when the column is one of the statement's tables'."""
        if not isinstance(node, exp.Column):
            return None
        if node.table:
            found = self._by_alias.get(node.table, {}).get(node.name)
            return canonical_type(found) if found else None
        kinds = {cols[node.name] for cols in self._by_alias.values() if node.name in cols}
        return canonical_type(kinds.pop()) if len(kinds) == 1 else None

    def context(self, node: exp.Expr) -> str | None:
        """The type ``node`` must have: that of the column it is compared with."""
        parent = _unwrapped_parent(node)
        if isinstance(parent, _COMPARISON):
            left = any(n is node for n in parent.this.walk())
            return self.of(parent.expression if left else parent.this)
        if isinstance(parent, exp.Between):
            return self.of(parent.this)
        return None
