"""Turn one workload statement into per-table scans: predicates, joins, order, writes."""
# Long module: one walk over sqlglot's tree; its cases only make sense side by side.

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from sqlglot import exp
from sqlglot.errors import OptimizeError, SqlglotError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, traverse_scope

from app.engine.advisor.param_types import param_casts
from app.engine.catalog import Catalog
from app.engine.model import (
    Analyzed,
    Op,
    Predicate,
    Query,
    Scan,
    Skipped,
    SortKey,
    StatementKind,
)
from app.engine.sql import (
    DIALECT,
    SqlError,
    cast_params,
    expression_key,
    is_own,
    param_count,
    parse,
    repair,
)

#: Functions of one column that make a usable expression-index key (immutable in PostgreSQL).
EXPRESSION_FUNCTIONS: tuple[type[exp.Expr], ...] = (exp.Lower, exp.Upper)
_RANGE_OPS: tuple[type[exp.Expr], ...] = (exp.GT, exp.GTE, exp.LT, exp.LTE)
_MAX_VIEW_DEPTH = 8


@dataclass(frozen=True, slots=True)
class _Ref:
    """A resolved reference: the owning scan and the key (column or expression SQL)."""

    scan: tuple[int, str]
    table: str
    key: str
    expression: bool = False


@dataclass(slots=True)
class _ScanAcc:
    """Mutable accumulator for one base-table occurrence."""

    table: str
    predicates: dict[tuple[str, Op, str | None], Predicate] = field(default_factory=dict)
    join_keys: list[str] = field(default_factory=list)
    order_by: tuple[SortKey, ...] = ()
    group_by: tuple[str, ...] = ()
    limit: bool = False
    columns: set[str] = field(default_factory=set)
    write: bool = False
    set_columns: tuple[str, ...] = ()

    def freeze(self) -> Scan:
        return Scan(
            table=self.table,
            predicates=tuple(self.predicates.values()),
            join_keys=tuple(dict.fromkeys(self.join_keys)),
            order_by=self.order_by,
            group_by=self.group_by,
            limit=self.limit,
            columns=tuple(sorted(self.columns)),
            write=self.write,
            set_columns=self.set_columns,
        )


_Accs = dict[tuple[int, str], _ScanAcc]


class _Skip(Exception):
    """Internal: the statement is not analysable; the message is the reason."""


def analyze(query: Query, catalog: Catalog) -> Analyzed | Skipped:
    """Parse a statement and extract what it asks of each base table.

    Returns ``Skipped`` with a human-readable reason when the statement is not analysable
    or cannot benefit from an index on a user table.
    """
    if is_own(query.text):
        return Skipped(query, "issued by DB Architect itself")
    sql = repair(query.text)
    if not sql:
        return Skipped(query, "empty statement")
    try:
        tree = parse(sql)
        kind, select, target = _as_select(tree)
        scans = _extract(select, target, catalog, tree)
    except SqlError as err:
        return Skipped(query, str(err))
    except _Skip as err:
        return Skipped(query, str(err))
    except (OptimizeError, SqlglotError) as err:
        return Skipped(query, f"could not resolve columns: {str(err).splitlines()[0]}")
    except RecursionError:  # parse() bounds nesting; sqlglot's later passes recurse deeper
        return Skipped(query, "is nested too deeply to analyse")
    sql = cast_params(sql, param_casts(tree, catalog))
    return Analyzed(query, kind, scans, explain_sql=sql, params=param_count(sql))


def _as_select(
    tree: exp.Expr,
) -> tuple[StatementKind, exp.Expr | None, exp.Table | None]:
    """The statement kind, a SELECT to analyse for scans, and the written table if any."""
    if isinstance(tree, exp.Query):
        return StatementKind.select, tree, None
    if isinstance(tree, exp.Update | exp.Delete):
        table = tree.this
        if not isinstance(table, exp.Table):
            raise _Skip("cannot tell which table the statement writes")
        select = exp.select("*").from_(table.copy())
        extra = tree.args.get("from_") or tree.args.get("from")
        if isinstance(extra, exp.From):
            select = select.join(extra.this.copy())
        for using in tree.args.get("using") or []:
            select = select.join(using.copy())
        where = tree.args.get("where")
        if where is not None:
            select = select.where(where.this.copy())
        with_ = tree.args.get("with_") or tree.args.get("with")
        if with_ is not None:
            select.set("with_", with_.copy())
        kind = StatementKind.update if isinstance(tree, exp.Update) else StatementKind.delete
        return kind, select, table
    if isinstance(tree, exp.Insert):
        target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
        if not isinstance(target, exp.Table):
            raise _Skip("cannot tell which table the statement writes")
        source = tree.expression
        return StatementKind.insert, source if isinstance(source, exp.Query) else None, target
    name = type(tree).__name__.upper()
    raise _Skip(f"utility statement ({name}) is not workload an index can serve")


def _reads_user_table(select: exp.Expr, catalog: Catalog) -> bool:
    ctes = {cte.alias_or_name for cte in select.find_all(exp.CTE)}
    return any(
        catalog.resolve_table(t, cte_names=ctes) is not None
        for t in select.find_all(exp.Table)
        if t.name and not isinstance(t.this, exp.Func)
    )


def _extract(
    select: exp.Expr | None, target: exp.Table | None, catalog: Catalog, tree: exp.Expr
) -> tuple[Scan, ...]:
    scans: list[Scan] = []
    if target is not None:
        written = catalog.resolve_table(target, cte_names=set())
        if written is None:
            raise _Skip(_not_found(target))
        set_columns: tuple[str, ...] = ()
        if isinstance(tree, exp.Update):
            set_columns = tuple(
                e.this.name for e in tree.expressions if isinstance(e, exp.EQ | exp.PropertyEQ)
            )
        if isinstance(tree, exp.Insert):
            scans.append(Scan(table=written, write=True))
    if select is None or (isinstance(tree, exp.Insert) and not _reads_user_table(select, catalog)):
        return tuple(scans)  # INSERT … VALUES, or rows made up by functions
    select = _prepare(select, catalog)
    qualified = qualify(
        select,
        schema=catalog.schema,
        dialect=DIALECT,
        validate_qualify_columns=False,
        quote_identifiers=False,
    )
    accs: _Accs = {}
    for scope in traverse_scope(qualified):
        _scan_scope(scope, accs, catalog)
    if not accs:
        raise _Skip("reads no table")
    for acc in accs.values():
        if target is not None and not isinstance(tree, exp.Insert) and acc.table == written:
            acc.write = True
            acc.set_columns = set_columns
            target = None  # only the first occurrence is the written one
        scans.append(acc.freeze())
    return tuple(scans)


def _not_found(table: exp.Table) -> str:
    text = f"relation {table.sql(dialect=DIALECT)} is not in the target's catalog"
    if "." in table.db:
        # The snapshot leaves such schemas out (see app.adapters.target_pg.catalog_sql).
        text += "; schemas whose name contains a dot are not supported: rename the schema"
    return text


def prepare(tree: exp.Expr, catalog: Catalog) -> exp.Expr:
    """Qualify table names and expand views, as for scan extraction.

    Raises:
        SqlError: the statement reads no user table, or names one the catalog lacks.
    """
    try:
        return _prepare(tree, catalog)
    except _Skip as err:
        raise SqlError(str(err)) from None


def _prepare(select: exp.Expr, catalog: Catalog) -> exp.Expr:
    """Qualify table names by search_path, expand views, refuse catalog-only statements."""
    if select.parent is not None:
        select = select.copy()  # part of a larger statement (INSERT … SELECT): detach it
    for _ in range(_MAX_VIEW_DEPTH):
        cte_names = {cte.alias_or_name for cte in select.find_all(exp.CTE)}
        expanded = False
        user_tables = system_tables = 0
        for table in list(select.find_all(exp.Table)):
            if not table.name or isinstance(table.this, exp.Func):
                continue  # table functions such as generate_series
            if not table.db and table.name in cte_names:
                continue
            if catalog.is_system(table):
                system_tables += 1
                continue
            qualified = catalog.resolve_table(table, cte_names=cte_names)
            if qualified is None:
                raise _Skip(_not_found(table))
            user_tables += 1
            view_sql = catalog.view_sql(qualified)
            schema, _, name = qualified.partition(".")
            if view_sql is None:
                table.set("db", exp.to_identifier(schema, quoted=True))
                table.set("this", exp.to_identifier(name, quoted=True))
                continue
            view = parse(view_sql)
            alias = table.alias or name
            table.replace(
                exp.Subquery(
                    this=view, alias=exp.TableAlias(this=exp.to_identifier(alias, quoted=True))
                )
            )
            expanded = True
        if user_tables == 0:
            raise _Skip("reads only system catalogs" if system_tables else "reads no table")
        if not expanded:
            return select
    raise _Skip("views nested too deeply to resolve")


def _scan_scope(scope: Scope, accs: _Accs, catalog: Catalog) -> None:
    node = scope.expression
    if not isinstance(node, exp.Select):
        return
    for alias, source in scope.sources.items():
        if isinstance(source, exp.Table) and not catalog.is_system(source):
            qualified = f"{source.db}.{source.name}"
            accs.setdefault((id(scope), alias), _ScanAcc(qualified))
    for column in scope.columns:
        ref = _resolve(scope, column)
        if ref is not None and not ref.expression and ref.scan in accs:
            accs[ref.scan].columns.add(ref.key)
    for condition in _conditions(node):
        _classify(scope, condition, accs)
    _order_group(scope, node, accs)


def _conditions(node: exp.Select) -> Iterator[exp.Expr]:
    where = node.args.get("where")
    if where is not None:
        yield from _conjuncts(where.this)
    for join in node.args.get("joins") or []:
        on = join.args.get("on")
        if on is not None:
            yield from _conjuncts(on)


def _conjuncts(cond: exp.Expr) -> Iterator[exp.Expr]:
    cond = cond.unnest()
    if isinstance(cond, exp.And):
        for part in cond.flatten():
            yield from _conjuncts(part)
    else:
        yield cond


def _resolve(scope: Scope, node: exp.Expr, depth: int = 0) -> _Ref | None:
    """Follow a column (or a one-column expression) down to a base table, if it can be."""
    node = node.unnest()
    if isinstance(node, EXPRESSION_FUNCTIONS):
        cols = list(node.find_all(exp.Column))
        if len(cols) != 1:
            return None
        inner = _resolve(scope, cols[0], depth)
        if inner is None or inner.expression:
            return None
        text = node.copy()
        for col in text.find_all(exp.Column):
            col.replace(exp.column(inner.key))
        return _Ref(inner.scan, inner.table, expression_key(text), expression=True)
    if not isinstance(node, exp.Column) or depth > _MAX_VIEW_DEPTH:
        return None
    source = scope.sources.get(node.table)
    if isinstance(source, exp.Table):
        return _Ref((id(scope), node.table), f"{source.db}.{source.name}", node.name)
    if isinstance(source, Scope) and not _is_fence(source):
        inner_select = source.expression
        if not isinstance(inner_select, exp.Select):
            return None
        for projection in inner_select.selects:
            if projection.alias_or_name == node.name:
                return _resolve(source, projection.unalias(), depth + 1)
    return None


def _is_fence(scope: Scope) -> bool:
    """Predicates cannot be pushed into this derived table (PostgreSQL would not either)."""
    node = scope.expression
    if not isinstance(node, exp.Select):
        return True
    if any(node.args.get(k) for k in ("limit", "offset", "distinct", "group", "having")):
        return True
    if node.find(exp.Window) or node.find(exp.AggFunc):
        return True
    cte = node.parent
    if isinstance(cte, exp.CTE):
        materialized = cte.args.get("materialized")
        if materialized is True:
            return True
        if materialized is None:
            root = node.root()
            uses = sum(
                1 for t in root.find_all(exp.Table) if not t.db and t.name == cte.alias_or_name
            )
            return uses > 1  # PostgreSQL materialises a CTE referenced more than once
    return False


def _is_free(scope: Scope, node: exp.Expr) -> bool:
    """The expression is fixed for a scan: constants, parameters, outer references."""
    for col in node.find_all(exp.Column):
        if col.table in scope.sources:
            return False
    return not node.find(exp.Select)


def _constant(node: exp.Expr) -> str | None:
    node = node.unnest()
    if isinstance(node, exp.Literal | exp.Boolean):
        return node.sql(dialect=DIALECT)
    if isinstance(node, exp.Cast) and isinstance(node.this, exp.Literal):
        return node.sql(dialect=DIALECT)
    return None


def _add(accs: _Accs, ref: _Ref, op: Op, constant: str | None) -> None:
    acc = accs.get(ref.scan)
    if acc is None:
        return
    pred = Predicate(ref.key, op, constant, ref.expression)
    acc.predicates.setdefault((ref.key, op, constant), pred)


def _classify(scope: Scope, cond: exp.Expr, accs: _Accs) -> None:
    """Record what one conjunct of WHERE / JOIN ON asks of the tables it mentions."""
    for kind, handler in _HANDLERS:
        if isinstance(cond, kind):
            handler(scope, cond, accs)
            return


def _on_eq(scope: Scope, cond: exp.Expr, accs: _Accs) -> None:
    left, right = cond.this, cond.expression
    lref, rref = _resolve(scope, left), _resolve(scope, right)
    if lref and rref:
        if lref.scan != rref.scan:
            for ref in (lref, rref):
                if not ref.expression and ref.scan in accs:
                    accs[ref.scan].join_keys.append(ref.key)
        return
    single, other = (lref, right) if lref else (rref, left)
    if single is not None and _is_free(scope, other):
        op = Op.in_ if isinstance(other.unnest(), exp.Any) else Op.eq
        _add(accs, single, op, _constant(other) if op is Op.eq else None)


def _on_in(scope: Scope, cond: exp.Expr, accs: _Accs) -> None:
    ref = _resolve(scope, cond.this)
    if ref is not None:
        _add(accs, ref, Op.in_, None)


def _on_range(scope: Scope, cond: exp.Expr, accs: _Accs) -> None:
    lref, rref = _resolve(scope, cond.this), _resolve(scope, cond.expression)
    if lref and not rref and _is_free(scope, cond.expression):
        _add(accs, lref, Op.range, None)
    elif rref and not lref and _is_free(scope, cond.this):
        _add(accs, rref, Op.range, None)


def _on_between(scope: Scope, cond: exp.Expr, accs: _Accs) -> None:
    ref = _resolve(scope, cond.this)
    if ref is not None:
        _add(accs, ref, Op.range, None)


def _on_is(scope: Scope, cond: exp.Expr, accs: _Accs) -> None:
    ref = _resolve(scope, cond.this)
    if ref is not None and isinstance(cond.expression, exp.Null):
        _add(accs, ref, Op.is_null, "NULL")


def _on_like(scope: Scope, cond: exp.Expr, accs: _Accs) -> None:
    """``LIKE 'abc%'`` can use a B-tree (C collation or pattern ops); a leading wildcard cannot."""
    ref = _resolve(scope, cond.this)
    pattern = cond.expression
    if (
        ref is not None
        and isinstance(pattern, exp.Literal)
        and pattern.is_string
        and pattern.this[:1] not in ("%", "_", "")
    ):
        _add(accs, ref, Op.like_prefix, None)


def _on_or(scope: Scope, cond: exp.Expr, accs: _Accs) -> None:
    """``a = 1 OR a = 2`` is ``a IN (1, 2)``; other disjunctions are not index keys."""
    refs = []
    for part in cond.flatten():
        part = part.unnest()
        if not isinstance(part, exp.EQ):
            return
        ref = _resolve(scope, part.this)
        if ref is None or not _is_free(scope, part.expression):
            return
        refs.append(ref)
    if refs and all(r == refs[0] for r in refs):
        _add(accs, refs[0], Op.in_, None)


_Handler = Callable[[Scope, exp.Expr, "_Accs"], None]
_HANDLERS: tuple[tuple[type[exp.Expr] | tuple[type[exp.Expr], ...], _Handler], ...] = (
    (exp.EQ, _on_eq),
    (exp.In, _on_in),
    (_RANGE_OPS, _on_range),
    (exp.Between, _on_between),
    (exp.Is, _on_is),
    (exp.Like, _on_like),
    (exp.Or, _on_or),
)


def _order_group(scope: Scope, node: exp.Select, accs: _Accs) -> None:
    order = node.args.get("order")
    if order is not None:
        keys: list[tuple[_Ref, SortKey]] = []
        for ordered in order.expressions:
            target = ordered.this
            if isinstance(target, exp.Column) and not target.table:
                target = _projection(node, target.name) or target
            ref = _resolve(scope, target)
            if ref is None:
                keys = []
                break
            nulls_first = ordered.args.get("nulls_first")
            keys.append((ref, SortKey(ref.key, bool(ordered.args.get("desc")), nulls_first)))
        if keys and all(r.scan == keys[0][0].scan for r, _ in keys) and keys[0][0].scan in accs:
            acc = accs[keys[0][0].scan]
            acc.order_by = tuple(k for _, k in keys)
            acc.limit = node.args.get("limit") is not None
    group = node.args.get("group")
    if group is not None:
        refs = [r for g in group.expressions if (r := _resolve(scope, g)) is not None]
        complete = refs and len(refs) == len(group.expressions) and refs[0].scan in accs
        if complete and all(r.scan == refs[0].scan for r in refs):
            accs[refs[0].scan].group_by = tuple(r.key for r in refs)


def _projection(node: exp.Select, name: str) -> exp.Expr | None:
    for projection in node.selects:
        if isinstance(projection, exp.Alias) and projection.alias == name:
            found: exp.Expr = projection.this
            return found
    return None
