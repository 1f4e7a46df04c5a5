"""The read-only SQL guard of `/ask`: proves a query only reads the application's tables.

A query passes only when every node of its sqlglot tree is on an allow-list (a SELECT over
allowed relations and columns, allowed functions and casts), and sqlglot's re-rendering of it
checks the same; what runs is that rendering, capped in rows.
"""
# Long module: the allow-lists and the checks that use them are one security boundary, read whole.

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from app.engine import markdown as md
from app.engine.model import RelKind, Snapshot, Table
from app.engine.sql import function_name

__all__ = [
    "ALLOWED_FUNCTIONS",
    "DIALECT",
    "MAX_SQL_CHARS",
    "Allowed",
    "UnsafeSql",
    "allowed_from",
    "check_select",
    "schema_text",
]

MAX_SQL_CHARS = 10_000
DIALECT = "postgres"

# ----------------------------------------------------------------------------- allowed objects


@dataclass(frozen=True, slots=True)
class Allowed:
    """The relations an `/ask` query may read, and where unqualified names are looked up."""

    #: ``schema.table`` → its column names (as stored in the catalog).
    tables: Mapping[str, frozenset[str]]
    #: Schemas an unqualified table name is looked up in, in order.
    search_path: tuple[str, ...] = ("public",)
    _columns: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names: set[str] = set()
        for columns in self.tables.values():
            names.update(columns)
        object.__setattr__(self, "_columns", frozenset(names))

    def resolve(self, name: str) -> str | None:
        """``schema.name`` of an unqualified table name, or None when no schema has it."""
        for schema in self.search_path:
            if f"{schema}.{name}" in self.tables:
                return f"{schema}.{name}"
        return None

    def has_column(self, name: str) -> bool:
        """Some allowed relation has a column called ``name``."""
        return name in self._columns


_ASKABLE = frozenset({RelKind.table, RelKind.partitioned, RelKind.view, RelKind.matview})


def _askable(snapshot: Snapshot) -> list[Table]:
    """Tables, partitioned tables, views and materialized views (foreign tables are not)."""
    return [t for t in snapshot.tables if t.kind in _ASKABLE]


def allowed_from(snapshot: Snapshot) -> Allowed:
    """The application's relations in ``snapshot`` (it holds no system or extension objects)."""
    tables = {t.qualified: frozenset(c.name for c in t.columns) for t in _askable(snapshot)}
    path = tuple(s for s in snapshot.search_path if not s.startswith("pg_")) or ("public",)
    return Allowed(tables=tables, search_path=path)


# ----------------------------------------------------------------------------- the guard


class UnsafeSql(ValueError):
    """The SQL guard refused a query; ``problem`` is one sentence naming what it refused."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(problem)


#: Side-effect-free functions, by the name PostgreSQL sees in the SQL that runs. Functions
#: that turn a few bytes into a huge value in one call (``repeat``, ``lpad``, ``rpad``,
#: ``format`` with a width) are left out: the statement timeout does not bound memory.
ALLOWED_FUNCTIONS = frozenset(
    {
        # aggregates
        "count", "sum", "avg", "min", "max", "array_agg", "string_agg", "bool_and", "bool_or",
        "every", "percentile_cont", "percentile_disc", "mode", "stddev", "stddev_pop",
        "stddev_samp", "variance", "var_pop", "var_samp", "corr", "covar_pop", "covar_samp",
        "json_agg", "jsonb_agg", "json_object_agg", "jsonb_object_agg",
        # window functions
        "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag",
        "lead", "first_value", "last_value", "nth_value",
        # conditionals, casts, subquery tests
        "case", "coalesce", "nullif", "greatest", "least", "cast", "exists",
        # math
        "abs", "round", "ceil", "ceiling", "floor", "trunc", "sign", "mod", "power", "pow",
        "sqrt", "cbrt", "exp", "ln", "log", "log10", "div", "width_bucket",
        # strings
        "lower", "upper", "length", "char_length", "character_length", "octet_length",
        "substring", "substr", "trim", "btrim", "ltrim", "rtrim", "concat", "concat_ws",
        "replace", "left", "right", "split_part", "position", "strpos", "initcap",
        "reverse", "starts_with", "translate", "to_number",
        "regexp_replace", "regexp_match", "regexp_matches", "regexp_split_to_array",
        "string_to_array", "array_to_string",
        # dates and times
        "date_trunc", "date_part", "extract", "now", "current_date", "current_time",
        "current_timestamp", "localtime", "localtimestamp", "age", "to_char", "to_date",
        "to_timestamp", "make_interval", "make_date", "make_time", "make_timestamp",
        "make_timestamptz", "date_bin", "justify_days", "justify_hours", "justify_interval",
        "isfinite",
        # json
        "jsonb_array_length", "json_array_length", "jsonb_typeof", "json_typeof",
        "jsonb_extract_path", "jsonb_extract_path_text", "json_extract_path",
        "json_extract_path_text", "jsonb_array_elements", "jsonb_array_elements_text",
        "json_array_elements", "json_array_elements_text", "jsonb_object_keys",
        "json_object_keys", "jsonb_each", "jsonb_each_text", "json_each", "json_each_text",
        "to_json", "to_jsonb", "json_build_object", "jsonb_build_object", "json_build_array",
        "jsonb_build_array",
        # arrays and sets
        "array", "array_length", "cardinality", "array_position", "unnest", "generate_series",
    }
)  # fmt: skip

#: Operators (sqlglot binary nodes) that only compute; all resolve to built-in functions.
_OPERATORS: frozenset[type[exp.Expr]] = frozenset(
    {
        exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ,
        exp.And, exp.Or, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod, exp.Pow,
        exp.DPipe, exp.Like, exp.ILike, exp.SimilarTo, exp.Escape, exp.Is, exp.RegexpLike,
        exp.RegexpILike, exp.ArrayContainsAll, exp.ArrayContainedBy, exp.ArrayOverlaps,
        exp.JSONExtract, exp.JSONExtractScalar, exp.JSONBExtract, exp.JSONBExtractScalar,
        exp.JSONBContains, exp.JSONBContainsTopKey, exp.JSONBContainsAnyTopKeys,
        exp.JSONBContainsAllTopKeys, exp.BitwiseAnd, exp.BitwiseOr, exp.BitwiseXor,
        exp.BitwiseLeftShift, exp.BitwiseRightShift, exp.Overlaps, exp.Collate, exp.Kwarg,
    }
)  # fmt: skip

#: The grammar of a plain query; any other node is refused.
_STRUCTURE: frozenset[type[exp.Expr]] = frozenset(
    {
        exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery, exp.With, exp.CTE,
        exp.From, exp.Join, exp.Lateral, exp.Where, exp.Group, exp.Having, exp.Order,
        exp.Ordered, exp.Limit, exp.Offset, exp.Fetch, exp.LimitOptions, exp.Distinct,
        exp.Table, exp.TableAlias, exp.Alias, exp.Identifier, exp.Column, exp.Star, exp.Dot,
        exp.Literal, exp.RawString, exp.Boolean, exp.Null, exp.Var, exp.Interval, exp.DataType,
        exp.DataTypeParam, exp.Tuple, exp.Paren, exp.Neg, exp.Not, exp.BitwiseNot, exp.In,
        exp.Between, exp.Any, exp.All, exp.Window, exp.WindowSpec, exp.Filter,
        exp.WithinGroup, exp.Bracket, exp.AtTimeZone, exp.Cube, exp.Rollup, exp.GroupingSets,
        exp.Values, exp.JSONPath, exp.JSONPathRoot, exp.JSONPathKey, exp.JSONPathSubscript,
    }
)  # fmt: skip

#: Types a value may be cast to (no reg* lookups, no user-defined input functions).
_CAST_TYPES = frozenset(
    {
        exp.DataType.Type.ARRAY, exp.DataType.Type.BIGINT, exp.DataType.Type.BOOLEAN,
        exp.DataType.Type.BPCHAR, exp.DataType.Type.CHAR, exp.DataType.Type.DATE,
        exp.DataType.Type.DECIMAL, exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT,
        exp.DataType.Type.INT, exp.DataType.Type.INTERVAL, exp.DataType.Type.JSON,
        exp.DataType.Type.JSONB, exp.DataType.Type.MONEY, exp.DataType.Type.NCHAR,
        exp.DataType.Type.NVARCHAR, exp.DataType.Type.SMALLINT, exp.DataType.Type.TEXT,
        exp.DataType.Type.TIME, exp.DataType.Type.TIMETZ, exp.DataType.Type.TIMESTAMP,
        exp.DataType.Type.TIMESTAMPTZ, exp.DataType.Type.UUID, exp.DataType.Type.VARCHAR,
        exp.DataType.Type.INET,
    }
)  # fmt: skip

_QUERY_ROOTS = (exp.Select, exp.Union, exp.Intersect, exp.Except)
_WRITES: dict[type[exp.Expr], str] = {
    exp.Insert: "INSERT",
    exp.Update: "UPDATE",
    exp.Delete: "DELETE",
    exp.Merge: "MERGE",
}
_CATALOG_SCHEMAS = frozenset({"pg_catalog", "information_schema", "pg_toast"})
#: How a rendered function call starts: ``NAME(``, ``ARRAY[``, a bare ``CURRENT_DATE``, ``CASE ``.
_SIMPLE_NAME = re.compile(r"[a-z_][a-z0-9_$]*")
_SCOPES: tuple[type[exp.Expr], ...] = (*_QUERY_ROOTS, exp.Subquery)


def check_select(sql: str, allowed: Allowed, *, row_cap: int = 50) -> str:
    """SQL that is safe to run for `/ask`: one read-only SELECT over the allowed relations.

    Refuses everything it cannot prove harmless: other statements, several statements,
    data-modifying CTEs, ``SELECT … INTO``, row locks, relations outside ``allowed``
    (catalogs, other schemas, other databases), functions off :data:`ALLOWED_FUNCTIONS`,
    casts to types that run lookups, and any syntax outside a plain query's grammar.

    Returns the checked query as sqlglot re-generates it (comments dropped, tables
    schema-qualified), wrapped so at most ``row_cap + 1`` rows come back; the extra row tells
    the caller the answer was truncated.

    >>> allowed = Allowed({"public.orders": frozenset({"id", "status"})})
    >>> check_select("select status, count(*) from orders group by 1", allowed, row_cap=10)
    'SELECT * FROM (SELECT status, COUNT(*) FROM public.orders GROUP BY 1) AS ask LIMIT 11'

    Raises:
        UnsafeSql: the query is refused; ``problem`` says why, naming the offending part.
        ValueError: ``row_cap`` is below 1.
    """
    if row_cap < 1:
        raise ValueError(f"row_cap must be at least 1, got {row_cap}")
    text = sql.strip()
    if not text:
        raise UnsafeSql("the SQL is empty")
    if len(text) > MAX_SQL_CHARS:
        raise UnsafeSql(
            f"the SQL is {len(text)} characters long; at most {MAX_SQL_CHARS} can be checked"
        )
    if "\\" in text:
        raise UnsafeSql(
            "the SQL contains a backslash (`\\`), which the guard cannot check reliably; "
            "write it without one (e.g. `[0-9]` instead of `\\d` in a pattern)"
        )
    if "\x00" in text:
        raise UnsafeSql("the SQL contains a NUL character")
    query = _guarded(_parse(text), allowed)
    # What runs is sqlglot's rendering: parse and check that too, and insist on a fixed point,
    # so the checked tree and the executed text cannot differ.
    again = _guarded(_parse(query), allowed)
    if again != query:
        raise UnsafeSql(
            "the SQL does not survive a round trip through the guard's parser unchanged; "
            "simplify it"
        )
    # The text is sqlglot's rendering of the tree checked above; the cap is an int.
    return f"SELECT * FROM ({query}) AS ask LIMIT {row_cap + 1}"  # noqa: S608


def _parse(text: str) -> exp.Expr:
    try:
        statements = sqlglot.parse(text, read=DIALECT)
    except (ParseError, TokenError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        first = re.sub(r"<Token token_type: [^,]*, text: ([^,]*),[^>]*>", r"'\1'", first)
        raise UnsafeSql(f"the SQL could not be parsed: {md.shorten(first, 160)}") from None
    except RecursionError:
        raise UnsafeSql("the SQL is nested too deeply to check") from None
    except Exception as err:  # the parser choked: whatever it is, the query is not proven
        raise UnsafeSql(f"the SQL could not be parsed ({type(err).__name__})") from None
    found = [s for s in statements if s is not None and not isinstance(s, exp.Semicolon)]
    if not found:
        raise UnsafeSql("the SQL holds no statement, only comments")
    if len(found) > 1:
        raise UnsafeSql(f"only one statement can be run, found {len(found)}")
    return found[0]


def _guarded(root: exp.Expr, allowed: Allowed) -> str:
    """Check one parsed statement; its SQL (tables qualified, no comments) when it passes."""
    try:
        while isinstance(root, exp.Subquery) and not root.alias and not root.args.get("with_"):
            root = root.this
        if isinstance(root, (exp.Condition, exp.Identifier, exp.Alias)):
            raise UnsafeSql(
                "the SQL could not be parsed as a statement (it reads as an expression)"
            )
        query = root.this if isinstance(root, exp.Subquery) else root
        if not isinstance(query, _QUERY_ROOTS):
            raise UnsafeSql(f"only a single SELECT can be run, not `{_keyword(query)}`")
        nodes = list(root.walk())
        _refuse_writes(nodes)
        _check_tables(nodes, allowed)
        _check_nodes(nodes)
        _check_columns(nodes, allowed)
        return root.sql(dialect=DIALECT, comments=False)
    except RecursionError:
        raise UnsafeSql("the SQL is nested too deeply to check") from None


def _keyword(node: exp.Expr) -> str:
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    words = node.sql(dialect=DIALECT, comments=False).split()
    return md.shorten(words[0].upper() if words else type(node).__name__.upper(), 30)


def _refuse_writes(nodes: Sequence[exp.Expr]) -> None:
    for node in nodes:
        for kind, keyword in _WRITES.items():
            if isinstance(node, kind):
                raise UnsafeSql(
                    f"`{keyword}` inside the query would change data; only reading is allowed"
                )
        if isinstance(node, (exp.DDL, exp.Command)):
            raise UnsafeSql(
                f"`{_keyword(node)}` inside the query is not a read; only reading is allowed"
            )
        if isinstance(node, exp.Into):
            raise UnsafeSql("`SELECT … INTO` creates a table; only a plain SELECT can be run")
        if isinstance(node, exp.Lock):
            clause = md.shorten(node.sql(dialect=DIALECT, comments=False), 40)
            raise UnsafeSql(f"`{clause}` locks rows; remove the locking clause")


# -- relations


def _name(identifier: exp.Expr | None) -> str | None:
    """The name PostgreSQL sees: unquoted identifiers fold to lower case."""
    if not isinstance(identifier, exp.Identifier):
        return None
    text = str(identifier.this)
    return text if identifier.quoted else text.lower()


def _check_tables(nodes: Sequence[exp.Expr], allowed: Allowed) -> None:
    """Every relation is a visible CTE or an allowed table; qualify the tables in place."""
    for node in nodes:
        if not isinstance(node, exp.Table):
            continue
        this = node.this
        if not isinstance(this, exp.Identifier):
            qualified = node.args.get("db") is not None or node.args.get("catalog") is not None
            if this is None or (isinstance(this, exp.Func) and not qualified):
                continue  # a table function: the function check covers it
            if isinstance(this, exp.Func):
                name = function_name(this)
                raise UnsafeSql(
                    f"`{_snippet(node)}` names a schema for the function `{name}`; "
                    "functions are called without one"
                )
            raise UnsafeSql(f"`{_snippet(node)}` is not supported in an /ask query")
        name = _name(this) or ""
        schema = _name(node.args.get("db"))
        shown = md.shorten(node.sql(dialect=DIALECT, comments=False).split(" AS ")[0], 60)
        if node.args.get("catalog") is not None:
            raise UnsafeSql(
                f"`{shown}` names another database: only the application's tables can be "
                "asked about"
            )
        if schema is None:
            if _cte_visible(node, name):
                continue
            resolved = allowed.resolve(name)
            if resolved is None:
                what = (
                    "is a system catalog"
                    if name.startswith("pg_")
                    else ("is not one of the application's tables")
                )
                raise UnsafeSql(
                    f"`{shown}` {what}: only the application's tables can be asked about"
                )
            target_schema = resolved.split(".", 1)[0]
            node.set("db", exp.Identifier(this=target_schema, quoted=_needs_quotes(target_schema)))
            continue
        if f"{schema}.{name}" in allowed.tables:
            continue
        catalog = schema in _CATALOG_SCHEMAS or schema.startswith("pg_")
        what = "is a system catalog" if catalog else "is not one of the application's tables"
        raise UnsafeSql(f"`{shown}` {what}: only the application's tables can be asked about")


def _cte_visible(table: exp.Table, name: str) -> bool:
    """Whether an unqualified ``name`` at ``table`` means a CTE in scope there.

    Conservative: inside a WITH list a CTE sees the earlier ones (and itself when RECURSIVE);
    the body sees them all. Anything else is a table, which the caller then checks.
    """
    path: list[exp.Expr] = []
    node: exp.Expr | None = table
    while node is not None:
        path.append(node)
        node = node.parent
    inside = set(map(id, path))
    for scope in path[1:]:
        if not isinstance(scope, _SCOPES):
            continue
        with_ = scope.args.get("with_")
        if not isinstance(with_, exp.With):
            continue
        ctes = [c for c in with_.expressions if isinstance(c, exp.CTE)]
        names = [_name(c.args["alias"].this) if c.args.get("alias") else None for c in ctes]
        visible = names
        for i, cte in enumerate(ctes):
            if id(cte) in inside:
                visible = names[: i + 1] if with_.args.get("recursive") else names[:i]
                break
        if name in visible:
            return True
    return False


def _needs_quotes(name: str) -> bool:
    return not _SIMPLE_NAME.fullmatch(name) or name.upper() in _RESERVED


# -- functions, types and grammar


def _check_nodes(nodes: Sequence[exp.Expr]) -> None:
    for node in nodes:
        kind = type(node)
        if isinstance(node, exp.Dot):
            _check_dot(node)
        elif isinstance(node, (exp.Parameter, exp.Placeholder, exp.SessionParameter)):
            raise UnsafeSql(
                f"`{_snippet(node)}` is a parameter; write the value into the query instead"
            )
        elif kind in _OPERATORS:
            continue
        elif isinstance(node, exp.Func):
            name = function_name(node)
            if name not in ALLOWED_FUNCTIONS:
                raise UnsafeSql(f"`{name}` is not an allowed function")
        elif isinstance(node, exp.DataType):
            _check_type(node)
        elif isinstance(node, exp.Lambda):
            # sqlglot reads ``f(col -> 'key')`` as a lambda; PostgreSQL has only the operator.
            if len(node.expressions) != 1 or not isinstance(node.expressions[0], exp.Identifier):
                raise UnsafeSql(f"`{_snippet(node)}` is not supported in an /ask query")
        elif kind not in _STRUCTURE:
            raise UnsafeSql(f"`{_snippet(node)}` is not supported in an /ask query")


def _check_dot(node: exp.Dot) -> None:
    """``(composite).field`` is fine; a schema-qualified function call is not."""
    target = node.expression
    if isinstance(target, exp.Func):
        qualifier = md.shorten(node.this.sql(dialect=DIALECT, comments=False), 40)
        name = function_name(target)
        if name in ALLOWED_FUNCTIONS:
            raise UnsafeSql(f"`{qualifier}.{name}` names a schema; call `{name}(…)` without one")
        raise UnsafeSql(f"`{qualifier}.{name}` is not an allowed function (`{name}`)")
    if not isinstance(target, exp.Identifier):
        raise UnsafeSql(f"`{_snippet(node)}` is not supported in an /ask query")


def _check_type(node: exp.DataType) -> None:
    kind = node.this
    if kind in _CAST_TYPES:
        return
    shown = md.shorten(node.sql(dialect=DIALECT, comments=False), 40)
    raise UnsafeSql(f"`{shown}` is not an allowed type to cast to")


# -- columns


def _check_columns(nodes: Sequence[exp.Expr], allowed: Allowed) -> None:
    """Every column name is one of an allowed table's, or a name the query itself defines.

    Blocks PostgreSQL's attribute notation for function calls (``t.some_function``).
    """
    defined: set[str] = set()
    for node in nodes:
        if isinstance(node, exp.Alias):
            defined.add(_name(node.args.get("alias")) or "")
        elif isinstance(node, exp.TableAlias):
            defined.update(_name(n) or "" for n in [node.this, *node.columns])
        elif isinstance(node, exp.Table):
            defined.add(_name(node.this) or "")
        elif isinstance(node, exp.Func) and not isinstance(node, exp.Binary):
            defined.add(function_name(node))  # a result column named after its function
    tables = _base_tables(nodes, allowed)
    for node in nodes:
        if isinstance(node, exp.Lambda):
            column = node.expressions[0]  # the operand of ``->`` (checked in _check_nodes)
        elif isinstance(node, exp.Column) and not isinstance(node.this, exp.Star):
            column = node.this
        else:
            continue
        name = _name(column)
        if name is None:
            raise UnsafeSql(f"`{_snippet(node)}` is not supported in an /ask query")
        qualifier = node.table if isinstance(node, exp.Column) else ""
        if qualifier in tables:
            # ``a.x`` on a table must be one of that table's own columns: anything else is
            # PostgreSQL's attribute notation for calling ``x(a)``.
            table, columns = tables[qualifier]
            if name not in columns:
                raise UnsafeSql(
                    f"`{md.shorten(qualifier + '.' + name, 60)}` is not a column of `{table}`"
                )
        elif not allowed.has_column(name) and name not in defined:
            raise UnsafeSql(f"`{md.shorten(name, 60)}` is not a column of the application's tables")


def _base_tables(
    nodes: Sequence[exp.Expr], allowed: Allowed
) -> dict[str, tuple[str, frozenset[str]]]:
    """Alias (or name) → (``schema.table``, its columns) for every allowed table read.

    A name used both for a table and for something else anywhere in the query keeps the
    table's columns: stricter, never looser.
    """
    found: dict[str, tuple[str, frozenset[str]]] = {}
    for node in nodes:
        if not isinstance(node, exp.Table) or not isinstance(node.this, exp.Identifier):
            continue
        schema, name = _name(node.args.get("db")), _name(node.this)
        qualified = f"{schema}.{name}"
        if schema is None or name is None or qualified not in allowed.tables:
            continue
        found[node.alias_or_name] = (qualified, allowed.tables[qualified])
    return found


# -- text helpers


def _snippet(node: exp.Expr) -> str:
    try:
        text = node.sql(dialect=DIALECT, comments=False)
    except Exception:  # rendering an odd node must not hide the refusal
        text = type(node).__name__
    return md.shorten(" ".join(text.split()).replace("`", "'"), 60) or type(node).__name__


#: PostgreSQL's reserved key words (they need quotes as names).
_RESERVED = frozenset(
    """
    ALL ANALYSE ANALYZE AND ANY ARRAY AS ASC ASYMMETRIC AUTHORIZATION BINARY BOTH CASE CAST
    CHECK COLLATE COLLATION COLUMN CONCURRENTLY CONSTRAINT CREATE CROSS CURRENT_CATALOG
    CURRENT_DATE CURRENT_ROLE CURRENT_SCHEMA CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER
    DEFAULT DEFERRABLE DESC DISTINCT DO ELSE END EXCEPT FALSE FETCH FOR FOREIGN FREEZE FROM
    FULL GRANT GROUP HAVING ILIKE IN INITIALLY INNER INTERSECT INTO IS ISNULL JOIN LATERAL
    LEADING LEFT LIKE LIMIT LOCALTIME LOCALTIMESTAMP NATURAL NOT NOTNULL NULL OFFSET ON ONLY
    OR ORDER OUTER OVERLAPS PLACING PRIMARY REFERENCES RETURNING RIGHT SELECT SESSION_USER
    SIMILAR SOME SYMMETRIC SYSTEM_USER TABLE TABLESAMPLE THEN TO TRAILING TRUE UNION UNIQUE
    USER USING VARIADIC VERBOSE WHEN WHERE WINDOW WITH
    """.split()
)


# ----------------------------------------------------------------------------- the LLM's view


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"' if _needs_quotes(name) else name


def schema_text(snapshot: Snapshot, *, max_chars: int = 12_000) -> str:
    """The askable relations for a prompt: ``public.orders(id bigint, status text, …)``.

    Names and types only (no statistics, no row data, no connection details), sorted by
    name; partitions are left out (their parent stands for them). When the text would pass
    ``max_chars`` the rest is summarised as one ``… N more tables`` line.
    """
    tables = sorted(
        (t for t in _askable(snapshot) if t.partition_of is None),
        key=lambda t: (t.schema, t.name),
    )
    lines: list[str] = []
    used = 0
    for i, table in enumerate(tables):
        columns = ", ".join(f"{_quoted(c.name)} {c.type}" for c in table.columns)
        kind = "" if table.kind in (RelKind.table, RelKind.partitioned) else f"  -- {table.kind}"
        line = f"{_quoted(table.schema)}.{_quoted(table.name)}({columns}){kind}"
        left = len(tables) - i - 1
        reserve = len(f"… {left} more tables") + 1 if left else 0
        if used + len(line) + 1 + reserve > max_chars:
            lines.append(f"… {len(tables) - i} more tables")
            break
        lines.append(line)
        used += len(line) + 1
    return "\n".join(lines)
