"""Pure helpers for workload text: split SQL on ``;``, read query files, spot housekeeping."""

from __future__ import annotations

import re
from collections.abc import Iterator

from app.engine.model import Query, QuerySource

_TAG_CHAR = re.compile(r"[A-Za-z0-9_\x80-\U0010ffff]")
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_\x80-\U0010ffff]*)?\$")


def _ident_char(ch: str) -> bool:
    return ch == "$" or bool(_TAG_CHAR.match(ch))


def _quoted_end(text: str, i: int, quote: str, *, backslash: bool = False) -> int:
    """End (exclusive) of a quoted string or identifier opening at ``i``; doubled quotes escape."""
    j, n = i + 1, len(text)
    while j < n:
        if backslash and text[j] == "\\":
            j += 2
        elif text[j] != quote:
            j += 1
        elif j + 1 < n and text[j + 1] == quote:
            j += 2
        else:
            return j + 1
    return n


def _block_comment_end(text: str, i: int) -> int:
    """End of a ``/* */`` comment opening at ``i`` (PostgreSQL nests them)."""
    depth, j, n = 1, i + 2, len(text)
    while j < n and depth:
        if text.startswith("/*", j):
            depth, j = depth + 1, j + 2
        elif text.startswith("*/", j):
            depth, j = depth - 1, j + 2
        else:
            j += 1
    return j


def _lexeme(text: str, i: int) -> tuple[str, int] | None:
    """``(kind, end)`` of a string, identifier, comment or ``;`` starting at ``i``, else None."""
    ch = text[i]
    prev = text[i - 1] if i else ""
    if ch == "'":
        escapes = prev in ("e", "E") and (i < 2 or not _ident_char(text[i - 2]))
        return "string", _quoted_end(text, i, "'", backslash=escapes)
    if ch == '"':
        return "ident", _quoted_end(text, i, '"')
    if text.startswith("--", i):
        j = text.find("\n", i)
        return "comment", len(text) if j < 0 else j + 1
    if text.startswith("/*", i):
        return "comment", _block_comment_end(text, i)
    if ch == "$" and not (prev and _ident_char(prev)):
        m = _DOLLAR_TAG.match(text, i)
        if m is None:
            return None  # $1: a parameter
        end = text.find(m.group(), m.end())
        return "string", len(text) if end < 0 else end + len(m.group())
    if ch == ";":
        return "semicolon", i + 1
    return None


def _segments(text: str) -> Iterator[tuple[str, str]]:
    """Yield ``(kind, chunk)`` pieces: ``code``, ``string``, ``ident``, ``comment``, ``semicolon``.

    Knows PostgreSQL's lexical rules that matter for splitting: '' and E'\\'' strings,
    "quoted" identifiers, -- and nested /* */ comments, $tag$ dollar quotes (``$1`` is a
    parameter, and ``$`` inside an identifier such as ``a$b`` starts nothing).
    """
    i, code_start, n = 0, 0, len(text)
    while i < n:
        found = _lexeme(text, i) if text[i] in "'\"-/$;" else None
        if found is None:
            i += 1
            continue
        kind, end = found
        if i > code_start:
            yield "code", text[code_start:i]
        yield kind, text[i:end]
        i = code_start = end
    if n > code_start:
        yield "code", text[code_start:n]


def split_statements(text: str) -> list[str]:
    """Split a SQL script on top-level ``;``; drop statements that are only blanks or comments.

    >>> split_statements("SELECT 'a;b'; -- c;\\nSELECT $x$;$x$, $1;;")
    ["SELECT 'a;b'", '-- c;\\nSELECT $x$;$x$, $1']
    """
    statements: list[str] = []
    parts: list[str] = []
    substantive = False
    for kind, chunk in _segments(text):
        if kind == "semicolon":
            if substantive:
                statements.append("".join(parts).strip())
            parts, substantive = [], False
            continue
        parts.append(chunk)
        if kind != "comment" and chunk.strip():
            substantive = True
    if substantive:
        statements.append("".join(parts).strip())
    return statements


def read_queries(text: str) -> list[Query]:
    """Statements of a ``;``-separated workload file, each occurrence counted as one call.

    Identical statements are merged into one :class:`Query` whose ``calls`` is the number
    of occurrences, in order of first appearance.

    >>> [(q.text, q.calls) for q in read_queries("select 1; select 2;\\nselect 1")]
    [('select 1', 2), ('select 2', 1)]
    """
    counts: dict[str, int] = {}
    for statement in split_statements(text):
        counts[statement] = counts.get(statement, 0) + 1
    return [Query(text=t, calls=c, source=QuerySource.file) for t, c in counts.items()]


_WORD = re.compile(r'"(?:[^"]|"")*"|[A-Za-z_][A-Za-z0-9_$]*|\S')
_CATALOG_SCHEMAS = frozenset({"pg_catalog", "information_schema"})
#: Functions that read or change server state, as monitoring tools and drivers call them.
_SERVER_FUNCTIONS = frozenset(
    {"version", "current_setting", "set_config", "current_database", "current_schema"}
)
#: Words that precede "(" without being function calls.
_SQL_WORDS = frozenset({"select", "values", "in", "as", "and", "or", "not", "exists", "on"})
_NOT_ALIAS = frozenset(
    {
        *("where", "join", "inner", "left", "right", "full", "cross", "natural", "on"),
        *("using", "group", "order", "limit", "offset", "having", "window", "union"),
        *("intersect", "except", "for", "fetch", "returning", "set", "values", "lateral"),
    }
)


def _tokens(text: str) -> list[str]:
    """Words, quoted identifiers and punctuation of the code (strings and comments dropped)."""
    code = " ".join(chunk if kind in ("code", "ident") else " " for kind, chunk in _segments(text))
    return _WORD.findall(code)


def _relations(tokens: list[str]) -> Iterator[tuple[str | None, str]]:
    """``(schema, name)`` of relations named after FROM / JOIN / UPDATE / INTO (best effort)."""
    i = 0
    while i < len(tokens):
        word = tokens[i].lower()
        i += 1
        if word not in ("from", "join", "update", "into"):
            continue
        while i < len(tokens):
            if tokens[i].lower() in ("only", "lateral"):
                i += 1
                continue
            if not (tokens[i][0] == '"' or tokens[i][0].isalpha() or tokens[i][0] == "_"):
                break  # a sub-select or a parenthesis: not a named relation
            names = [tokens[i]]
            i += 1
            while i + 1 < len(tokens) and tokens[i] == ".":
                names.append(tokens[i + 1])
                i += 2
            if i < len(tokens) and tokens[i] == "(":
                break  # a set-returning function call, not a relation
            clean = [n[1:-1].replace('""', '"') if n[0] == '"' else n.lower() for n in names]
            yield (clean[-2] if len(clean) > 1 else None), clean[-1]
            if i < len(tokens) and tokens[i].lower() == "as":
                i += 1
            if (
                i < len(tokens)
                and tokens[i] not in (",", "(", ")", ".")
                and (tokens[i].lower() not in _NOT_ALIAS)
            ):
                i += 1  # alias
            if i < len(tokens) and tokens[i] == ",":
                i += 1
                continue
            break


def _function_calls(tokens: list[str]) -> list[str]:
    """Names (lower case, schema dropped) of the functions the statement calls."""
    return [
        tokens[i].lower()
        for i in range(len(tokens) - 1)
        if tokens[i + 1] == "(" and (tokens[i][0].isalpha() or tokens[i][0] == "_")
    ]


def is_housekeeping(text: str) -> bool:
    """True for monitoring and tool statements: every relation named is a system catalog, or
    no relation is named and only server functions (``pg_*``, settings, version) are called.

    Other statements naming no relation (``SELECT 1``) are left to the engine.

    >>> is_housekeeping("SELECT * FROM pg_stat_activity a JOIN pg_catalog.pg_class c ON true")
    True
    >>> is_housekeeping("SELECT pg_stat_statements_reset()")
    True
    >>> is_housekeeping("SELECT * FROM pg_class, users")
    False
    """
    tokens = _tokens(text)
    relations = list(_relations(tokens))
    if relations:
        return all(
            (schema in _CATALOG_SCHEMAS) if schema else name.startswith("pg_")
            for schema, name in relations
        )
    calls = [c for c in _function_calls(tokens) if c not in _SQL_WORDS]
    return bool(calls) and all(c.startswith("pg_") or c in _SERVER_FUNCTIONS for c in calls)
