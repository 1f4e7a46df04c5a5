"""`/ask`: the comment command, the SQL guard that proves a query only reads, and the replies."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from app.engine import markdown as md
from app.engine.model import RelKind, Snapshot, Table
from app.engine.sql import function_name

__all__ = [
    "ALLOWED_FUNCTIONS",
    "ASK_USAGE",
    "MAX_COMMENT_CHARS",
    "Allowed",
    "AskCommand",
    "AskError",
    "UnsafeSql",
    "allowed_from",
    "answer_markdown",
    "check_select",
    "parse_ask_command",
    "problem_markdown",
    "quote_block",
    "refusal_markdown",
    "schema_text",
]

ASK_USAGE = (
    "`/ask <a question about the data>`, or `/ask` followed by a ```` ```sql ```` block "
    "holding one SELECT"
)
MAX_QUESTION_CHARS = 500
MAX_SQL_CHARS = 10_000
MAX_CELL_CHARS = 80
MAX_COLUMNS = 20
MAX_COMMENT_CHARS = 60_000
DIALECT = "postgres"

# ----------------------------------------------------------------------------- the command

#: Matched against the line with its blanks stripped (no backtracking over a run of blanks).
_COMMAND = re.compile(r"/ask(?:[ \t]+(?P<rest>.*))?")
_FENCE = re.compile(r"[ \t]{0,3}(?P<fence>`{3,}|~{3,})(?P<info>.*)")
_QUOTE = re.compile(r"[ \t]{0,3}>")
_SQL_INFO = frozenset({"", "sql", "postgresql", "postgres", "pgsql", "psql"})


class AskError(ValueError):
    """The `/ask` comment is malformed; the message (what was wrong, then usage) is for the user."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(f"{problem}\n\nUsage: {ASK_USAGE}")


@dataclass(frozen=True, slots=True)
class AskCommand:
    """What one `/ask` comment asked: a question, SQL the user wrote, or both."""

    #: The natural-language question ("" when only SQL was given).
    question: str
    #: SQL the user wrote in a ```sql fence after `/ask`, if any.
    sql: str | None = None


@dataclass(frozen=True, slots=True)
class _Line:
    """One line of a comment and where it stands: prose, a fence line, fenced code, or skipped."""

    text: str
    kind: str  # text | open | code | close | skip
    info: str = ""


def _lines(body: str) -> Iterator[_Line]:
    """Classify the lines of ``body`` (code fences, ``>`` quotes and HTML comments as GitHub)."""
    fence: str | None = None
    in_comment = False
    for line in body.splitlines():
        if in_comment:
            in_comment = "-->" not in line
            yield _Line(line, "skip")
            continue
        marker = _FENCE.match(line)
        if fence is not None:
            if marker and _closes(marker, fence):
                fence = None
                yield _Line(line, "close")
            else:
                yield _Line(line, "code")
            continue
        if marker and not (marker["fence"][0] == "`" and "`" in marker["info"]):
            fence = marker["fence"]
            info = marker["info"].strip().split(maxsplit=1)
            yield _Line(line, "open", info[0].lower() if info else "")
            continue
        if line.lstrip().startswith("<!--"):
            in_comment = "-->" not in line
            yield _Line(line, "skip")
            continue
        yield _Line(line, "skip" if _QUOTE.match(line) else "text")


def _closes(marker: re.Match[str], fence: str) -> bool:
    """A closing fence: the same character, at least as long, nothing after it."""
    found = marker["fence"]
    return found[0] == fence[0] and len(found) >= len(fence) and not marker["info"].strip()


def parse_ask_command(body: str) -> AskCommand | None:
    """The first `/ask` command that starts a line, or None when there is none.

    The question is the rest of that line plus the prose lines right after it, up to a blank
    line or a code fence. A ```` ```sql ```` (or ``postgresql``, or plain) fenced block after the
    command gives SQL to run as written. Lines in fences, ``>`` quotes and HTML comments are not
    commands, and ``/asking`` is not ``/ask``.

    >>> parse_ask_command("/ask how many orders\\nwere paid last week?\\n\\nthanks")
    AskCommand(question='how many orders were paid last week?', sql=None)
    >>> parse_ask_command("/ask\\n```sql\\nSELECT count(*) FROM orders\\n```")
    AskCommand(question='', sql='SELECT count(*) FROM orders')
    >>> parse_ask_command("> /ask quoted") is None
    True

    Raises:
        AskError: nothing asked, a question over 500 characters, an overlong SQL block.
    """
    lines = list(_lines(body))
    found = next(
        (
            (i, match)
            for i, line in enumerate(lines)
            if line.kind == "text" and (match := _COMMAND.fullmatch(line.text.strip(" \t")))
        ),
        None,
    )
    if found is None:
        return None
    start, command = found
    words = [command["rest"] or ""]
    for line in lines[start + 1 :]:
        if line.kind != "text" or not line.text.strip():
            break
        words.append(line.text)
    question = " ".join(" ".join(words).split())
    sql = _fenced_sql(lines[start + 1 :])
    if not question and sql is None:
        raise AskError(
            "`/ask` needs a question, e.g. `/ask how many orders were placed last week?`"
        )
    if len(question) > MAX_QUESTION_CHARS:
        raise AskError(
            f"The question is {len(question)} characters long; keep it under "
            f"{MAX_QUESTION_CHARS} characters."
        )
    if sql is not None and len(sql) > MAX_SQL_CHARS:
        raise AskError(
            f"The SQL block is {len(sql)} characters long; at most {MAX_SQL_CHARS} can be checked."
        )
    return AskCommand(question=question, sql=sql)


def _fenced_sql(lines: Sequence[_Line]) -> str | None:
    """The body of the first SQL (or unlabelled) fenced block, or None; blank blocks don't count."""
    body: list[str] | None = None
    for line in lines:
        if body is None:
            if line.kind == "open" and line.info in _SQL_INFO:
                body = []
            continue
        if line.kind != "code":
            break
        body.append(line.text)
    text = "\n".join(body).strip() if body is not None else ""
    return text or None


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
        raise UnsafeSql(f"the SQL could not be parsed: {_cut(first, 160)}") from None
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
    return _cut(words[0].upper() if words else type(node).__name__.upper(), 30)


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
            clause = _cut(node.sql(dialect=DIALECT, comments=False), 40)
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
        shown = _cut(node.sql(dialect=DIALECT, comments=False).split(" AS ")[0], 60)
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
        qualifier = _cut(node.this.sql(dialect=DIALECT, comments=False), 40)
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
    shown = _cut(node.sql(dialect=DIALECT, comments=False), 40)
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
                    f"`{_cut(qualifier + '.' + name, 60)}` is not a column of `{table}`"
                )
        elif not allowed.has_column(name) and name not in defined:
            raise UnsafeSql(f"`{_cut(name, 60)}` is not a column of the application's tables")


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
    return _cut(" ".join(text.split()).replace("`", "'"), 60) or type(node).__name__


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


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


# ----------------------------------------------------------------------------- the replies


def quote_block(question: str) -> str:
    """The question asked, as a blockquote that renders as plain text ("" when empty)."""
    return md.quote(question, MAX_QUESTION_CHARS) if question.strip() else ""


def _sql_block(sql: str) -> str:
    return md.fence(sql.strip(), "sql", MAX_SQL_CHARS)


def _cell(value: str) -> str:
    return md.text(value, MAX_CELL_CHARS) or " "


def _elapsed(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def answer_markdown(
    question: str,
    sql: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    truncated: bool,
    row_cap: int,
    elapsed_ms: float,
    drafted_by: str | None,
) -> str:
    """The GitHub comment that answers an `/ask`: question, SQL, a small table, provenance.

    Cells are escaped (``|``, newlines, backticks, HTML, mentions) and cut to 80 characters;
    at most 20 columns are shown and rows stop before the comment would pass 60,000 characters.
    """
    head = ["### `/ask` answer", ""]
    if question.strip():
        head += [quote_block(question), ""]
    head += [_sql_block(sql), ""]
    shown = list(columns[:MAX_COLUMNS])
    if drafted_by:
        who = f"SQL drafted by {md.text(drafted_by, 40)}, checked by DB Architect's SQL guard"
    else:
        who = "SQL as written, checked by DB Architect's SQL guard"
    notes: list[str] = []
    table: list[str] = []
    if not shown:
        notes.append("_The query returned no columns._")
    elif not rows:
        notes.append("_No rows._")
    else:
        table = [
            "| " + " | ".join(_cell(c) for c in shown) + " |",
            "|" + "---|" * len(shown),
        ]
    if len(columns) > MAX_COLUMNS:
        notes.append(f"_Showing the first {MAX_COLUMNS} of {len(columns)} columns._")
    footer = [
        "",
        f"_{who}. Ran in a read-only transaction with a statement timeout; "
        f"took {_elapsed(elapsed_ms)}._",
    ]
    budget = MAX_COMMENT_CHARS - 400 - sum(len(x) + 1 for x in [*head, *table, *notes, *footer])
    fitted = 0
    for row in rows[:row_cap]:
        line = "| " + " | ".join(_cell(str(v)) for v in list(row)[: len(shown)]) + " |"
        if len(line) + 1 > budget:
            break
        table.append(line)
        budget -= len(line) + 1
        fitted += 1
    if shown and rows and fitted < min(len(rows), row_cap):
        notes.append(f"_Only the first {fitted} rows fit in a comment._")
    elif truncated:
        notes.append(f"_Showing the first {row_cap} rows; the query returned more._")
    body = [*head, *table]
    if notes:
        body += ["", *notes]
    return "\n".join([*body, *footer])


def problem_markdown(question: str, problem: str, what_to_do: str) -> str:
    """The GitHub comment for an `/ask` that could not be answered, and what to do."""
    said = f"{quote_block(question)}\n\n" if question.strip() else ""
    return (
        f"### `/ask`: not answered\n\n{said}{md.inline(problem, 1000)}\n\n"
        f"**What to do:** {md.inline(what_to_do, 600)}"
    )


def refusal_markdown(question: str, sql: str | None, problem: str, what_to_do: str) -> str:
    """The GitHub comment for an `/ask` that was not run: what was refused and what to do."""
    parts = ["### `/ask`: not run", ""]
    if question.strip():
        parts += [quote_block(question), ""]
    parts += [f"DB Architect's SQL guard refused the query: {md.inline(problem, 400)}.", ""]
    if sql and sql.strip():
        parts += [_sql_block(sql), ""]
    parts.append(f"**What to do:** {md.inline(what_to_do, 600)}")
    return "\n".join(parts)
