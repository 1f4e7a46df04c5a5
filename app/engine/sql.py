"""Statement text: repair normalised pg_stat_statements text, count ``$n``, parse, redact."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from app.engine import markdown as md
from app.engine.ddl import quote_ident, truncate_identifier

DIALECT = "postgres"
#: Every statement the tool runs on a target carries this tag, so its own queries are not workload.
OWN_TAG = "/* dbarchitect */"

# Type names that pg_stat_statements leaves in front of a placeholder when it normalises a
# typed literal: ``timestamptz '2024-01-01'`` becomes ``timestamptz $1``, which is not valid SQL.
_TYPED_PLACEHOLDER = re.compile(
    r"\b(timestamp\s+with(?:out)?\s+time\s+zone|time\s+with(?:out)?\s+time\s+zone|"
    r"double\s+precision|timestamptz|timestamp|timetz|date|time|interval|numeric|decimal|"
    r"bigint|integer|int[248]?|smallint|real|float[48]?|text|varchar|char|bool|boolean|uuid|"
    r"jsonb|json|inet|cidr|bytea)\s+(\$\d+)",
    re.IGNORECASE,
)
_PLACEHOLDER = re.compile(r"\$(\d+)")
# Strings, quoted identifiers and comments: placeholders inside them are not placeholders.
_OPAQUE = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/", re.DOTALL)


def _outside_opaque(
    text: str, fix: re.Pattern[str], repl: str | Callable[[re.Match[str]], str]
) -> str:
    """Apply ``fix.sub(repl, …)`` only to the parts of ``text`` outside strings and comments."""
    out: list[str] = []
    pos = 0
    for m in _OPAQUE.finditer(text):
        out.append(fix.sub(repl, text[pos : m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(fix.sub(repl, text[pos:]))
    return "".join(out)


def strip_statement(text: str) -> str:
    """Trim white space and trailing semicolons.

    >>> strip_statement("  SELECT 1 ;; ")
    'SELECT 1'
    """
    return text.strip().rstrip(";").strip()


def repair(text: str) -> str:
    """Make normalised statement text valid SQL where that is mechanical.

    >>> repair("SELECT * FROM t WHERE at > timestamptz $1")
    'SELECT * FROM t WHERE at > $1::timestamptz'
    """
    return _outside_opaque(strip_statement(text), _TYPED_PLACEHOLDER, r"\2::\1")


#: ``extract($n from x)``: PostgreSQL's grammar takes no parameter for the field.
_EXTRACT_PARAM = re.compile(r"\bextract\s*\(\s*(\$\d+)\s+from\b", re.IGNORECASE)
_BARE_PLACEHOLDER = re.compile(r"\$(\d+)\b(?!\s*::)")


def cast_params(text: str, casts: Mapping[int, str]) -> str:
    """``text`` with ``::type`` after each bare ``$n`` in ``casts``, and ``extract($n from x)``
    written ``date_part($n::text, x)`` (the same function; the grammar refuses ``$n`` there).

    The types come from the caller's allow-list, never from outside text.

    >>> cast_params("SELECT extract($1 FROM d) FROM t WHERE q <= $2 + $3", {2: "numeric"})
    'SELECT date_part($1::text, d) FROM t WHERE q <= $2::numeric + $3'
    """
    text = _outside_opaque(text, _EXTRACT_PARAM, r"date_part(\1::text,")

    def cast(match: re.Match[str]) -> str:
        found = casts.get(int(match.group(1)))
        return match.group(0) + f"::{found}" if found else match.group(0)

    return _outside_opaque(text, _BARE_PLACEHOLDER, cast) if casts else text


def param_count(text: str) -> int:
    """The highest ``$n`` used outside strings and comments.

    >>> param_count("SELECT '$9' FROM t WHERE a = $1 AND b IN ($2, $3)")
    3
    """
    found = 0
    pos = 0
    for m in [*_OPAQUE.finditer(text), None]:
        chunk = text[pos : m.start()] if m else text[pos:]
        for p in _PLACEHOLDER.findall(chunk):
            found = max(found, int(p))
        if m:
            pos = m.end()
    return found


def is_own(text: str) -> bool:
    """Whether the statement was issued by this tool (it carries :data:`OWN_TAG`)."""
    return OWN_TAG in text


#: Longer statement text is not parsed (sqlglot takes about 4 s per megabyte); generated
#: statements with thousands of placeholders stay well under it.
MAX_STATEMENT_CHARS = 65_536
#: Deeper parentheses are not parsed: sqlglot recurses some 20 frames per level, and Python
#: stops at 1,000 (RecursionError); hand-written SQL rarely nests ten deep.
MAX_NESTING = 32


class SqlError(ValueError):
    """A statement that cannot be parsed; the message is fit to show to a person."""


def nesting(text: str) -> int:
    """The deepest parenthesis nesting outside strings, quoted names and comments."""
    deepest = depth = 0
    for char in _OPAQUE.sub(" ", text):
        if char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif char == ")":
            depth -= 1
    return deepest


def parse(text: str) -> exp.Expr:
    """Parse one PostgreSQL statement (``$n`` placeholders allowed).

    Bounded: text over ``MAX_STATEMENT_CHARS`` or nested over ``MAX_NESTING`` is refused.

    Raises:
        SqlError: when the text is not one parseable statement, or is out of those bounds.
    """
    if len(text) > MAX_STATEMENT_CHARS:
        raise SqlError(
            f"is over {MAX_STATEMENT_CHARS:,} characters long; longer statements are not analysed"
        )
    if (deep := nesting(text)) > MAX_NESTING:
        raise SqlError(
            f"nests parentheses {deep} deep; statements nested over {MAX_NESTING} deep "
            "are not analysed"
        )
    # sqlglot reads "$2,$3" as a dollar-quote tag; a space after the comma is equivalent SQL.
    spaced = _outside_opaque(text, re.compile(r",\$(\d)"), r", $\1")
    try:
        statements = sqlglot.parse(spaced, read=DIALECT)
    except RecursionError:
        raise SqlError("is nested too deeply to analyse") from None
    except (ParseError, TokenError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        first = re.sub(r"<Token token_type: [^,]*, text: ([^,]*),[^>]*>", r"'\1'", first)
        raise SqlError(f"could not parse: {first}") from None
    found = [s for s in statements if s is not None]
    if len(found) != 1:
        raise SqlError(f"expected one statement, found {len(found)}")
    for ident in found[0].find_all(exp.Identifier):
        if isinstance(ident.this, str):
            ident.set("this", as_postgresql_reads(ident.this, quoted=bool(ident.quoted)))
            ident.set("quoted", True)  # folded already: sqlglot must not fold it again
    return found[0]


_ASCII_UPPER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def as_postgresql_reads(name: str, *, quoted: bool) -> str:
    """The name the server makes of an identifier in a statement (scan.l, downcase_identifier).

    Unquoted, only ASCII letters fold to lower case (``Ünï`` stays ``Ünï`` in a UTF-8
    database, where Python's ``lower()`` would make it ``ünï``); quoted or not, a name longer
    than 63 bytes is cut at a character boundary.

    >>> as_postgresql_reads("Tëst_Ü", quoted=False), as_postgresql_reads("Tëst_Ü", quoted=True)
    ('tëst_Ü', 'Tëst_Ü')
    """
    return truncate_identifier(name if quoted else name.translate(_ASCII_UPPER))


def _normalized(node: exp.Expr) -> exp.Expr:
    """Without table qualifiers and casts to text / varchar (they do not change the key)."""
    node = node.copy()
    for col in node.find_all(exp.Column):
        col.set("table", None)
    for cast in list(node.find_all(exp.Cast)):
        if cast.to.this in (exp.DataType.Type.TEXT, exp.DataType.Type.VARCHAR):
            cast.replace(cast.this.unnest())
    return node


def canonical(sql: str) -> str:
    """A comparable form of an expression, e.g. an expression index key.

    >>> canonical("LOWER( email )") == canonical("lower(email)")
    True
    """
    try:
        node = sqlglot.parse_one(sql, read=DIALECT)
    except (ParseError, TokenError):
        return " ".join(sql.lower().split())
    return _normalized(node).sql(dialect=DIALECT, normalize_functions="lower").replace('"', "")


def expression_key(node: exp.Expr) -> str:
    """An expression as index-key SQL: normalised like :func:`canonical`, names quoted as needed.

    >>> expression_key(sqlglot.parse_one('LOWER(t."Em ail")', read=DIALECT))
    'lower("Em ail")'
    """
    node = _normalized(node)
    for col in node.find_all(exp.Column):
        col.set("this", exp.to_identifier(col.name, quoted=quote_ident(col.name) != col.name))
    return node.sql(dialect=DIALECT, normalize_functions="lower")


_LITERAL = re.compile(
    r"(?P<s>(?:\b[eE])?'(?:[^']|'')*')|(?<![\w$.])(?P<n>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)(?![\w.])"
)


# Server messages can quote the offending value: 'x', : "x", value "x", Key (c)=(x).
_SINGLE_QUOTED = re.compile(r"(?:\b[eE]'|(?<![A-Za-z0-9])')(?:[^']|'')*'")
_QUOTED_VALUE = re.compile(r'(:\s*|\bvalue\s+)"(?:[^"]|"")*"', re.IGNORECASE)
_KEY_VALUE = re.compile(r"\)=\((?:[^()]|\([^()]*\))*\)")


def scrub_message(message: str) -> str:
    """A server message with the values it quotes blanked, on one line.

    >>> scrub_message('invalid input syntax for type integer: "abc"')
    'invalid input syntax for type integer: "…"'
    >>> scrub_message("Key (email)=(bob@example.com) already exists.")
    'Key (email)=(…) already exists.'
    """
    clean = _SINGLE_QUOTED.sub("'…'", " ".join(message.split()))
    clean = _QUOTED_VALUE.sub(r'\1"…"', clean)
    return _KEY_VALUE.sub(")=(…)", clean)


def redact(text: str) -> str:
    """Replace literal values with ``$n`` placeholders, as pg_stat_statements does.

    Used on everything shown to people or stored: literal values may be personal data.

    >>> redact("SELECT * FROM t WHERE email = 'a@b.c' AND id > 10 AND x = $1 LIMIT 5")
    'SELECT * FROM t WHERE email = $2 AND id > $3 AND x = $1 LIMIT $4'
    """
    return parameterize(text)[0]


def parameterize(text: str) -> tuple[str, tuple[str, ...]]:
    """:func:`redact`, also returning the literal values it replaced, in ``$n`` order.

    >>> parameterize("SELECT * FROM t WHERE name = 'O''Hara' LIMIT 5")
    ('SELECT * FROM t WHERE name = $1 LIMIT $2', ("O'Hara", '5'))
    """
    counter = param_count(text)
    out: list[str] = []
    values: list[str] = []
    pos = 0
    for m in re.finditer(r'"(?:[^"]|"")*"|--[^\n]*|/\*.*?\*/', text, re.DOTALL):
        chunk, counter = _redact_chunk(text[pos : m.start()], counter, values)
        out += [chunk, m.group(0)]
        pos = m.end()
    chunk, counter = _redact_chunk(text[pos:], counter, values)
    out.append(chunk)
    return "".join(out), tuple(values)


def _redact_chunk(chunk: str, counter: int, values: list[str]) -> tuple[str, int]:
    parts: list[str] = []
    pos = 0
    for m in _LITERAL.finditer(chunk):
        counter += 1
        parts += [chunk[pos : m.start()], f"${counter}"]
        literal = m.group(0)
        if m.group("s") is not None:
            literal = literal[literal.index("'") + 1 : -1].replace("''", "'")
        values.append(literal)
        pos = m.end()
    parts.append(chunk[pos:])
    return "".join(parts), counter


_FUNCTION_NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\(|\[|$)|(CASE)\s")


def function_name(node: exp.Func) -> str:
    """The function PostgreSQL will call: the name in the SQL sqlglot renders for ``node``.

    A name that is not a plain word (quoted, odd characters) comes back as written, cut to
    60 characters, backticks replaced (the name is quoted in markdown).
    """
    if isinstance(node, exp.Anonymous):
        raw = str(node.this)
        if not isinstance(node.this, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", raw):
            return md.shorten(raw.replace("`", "'"), 60)
        return raw.lower()
    rendered = node.sql(dialect=DIALECT, comments=False)
    match = _FUNCTION_NAME.match(rendered)
    if match is None:
        return md.shorten(rendered.split("(")[0].replace("`", "'"), 60)
    return (match.group(1) or match.group(2)).lower()
