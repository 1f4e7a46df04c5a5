"""SQL text for index DDL: identifier quoting, index names within 63 bytes, CREATE/DROP INDEX."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection

from app.engine.model import Candidate

MAX_IDENTIFIER_BYTES = 63
_BARE = re.compile(r"^[a-z_][a-z0-9_$]*$")
# Reserved words that must be quoted when used as a name (PostgreSQL appendix C, "reserved").
RESERVED = frozenset(
    """all analyse analyze and any array as asc asymmetric both case cast check collate column
    constraint create current_catalog current_date current_role current_time current_timestamp
    current_user default deferrable desc distinct do else end except false fetch for foreign from
    grant group having in initially intersect into lateral leading limit localtime localtimestamp
    not null offset on only or order placing primary references returning select session_user
    some symmetric system_user table then to trailing true union unique user using variadic when
    where window with authorization binary collation concurrently cross current_schema freeze
    full ilike inner is isnull join left like natural notnull outer overlaps right similar
    tablesample verbose""".split()
)


def quote_ident(name: str) -> str:
    """Quote an identifier only when PostgreSQL needs it.

    >>> quote_ident("posts"), quote_ident("User"), quote_ident("order")
    ('posts', '"User"', '"order"')
    """
    if _BARE.match(name) and name not in RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


def truncate_identifier(name: str) -> str:
    """The name PostgreSQL keeps: at most 63 bytes, cut at a character boundary (pg_mbcliplen).

    >>> truncate_identifier("ü" * 40) == "ü" * 31
    True
    """
    data = name.encode()
    if len(data) <= MAX_IDENTIFIER_BYTES:
        return name
    return data[:MAX_IDENTIFIER_BYTES].decode(errors="ignore")


def quote_qualified(qualified: str) -> str:
    """Quote ``schema.name``, split on the first dot.

    A table or index name may hold dots, a schema name may not: the snapshot leaves out
    schemas whose names hold one (``app.adapters.target_pg.snapshot``).

    >>> quote_qualified("public.Users")
    'public."Users"'
    """
    schema, _, name = qualified.partition(".")
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "expr"


def index_name(candidate: Candidate, taken: Collection[str] = ()) -> str:
    """A readable, deterministic index name within PostgreSQL's 63-byte limit.

    A digest of the whole definition is added when the readable part could be shared by
    another index: INCLUDE, WHERE, an expression key, more than 63 bytes, a table or column
    name the slug changes beyond lower case (``"a b"`` and ``"a-b"`` both read ``a_b``), or a
    name already ``taken`` by a relation of the table's schema (``IF NOT EXISTS`` would then
    quietly keep that other relation instead of building the measured index).

    >>> from app.engine.model import IndexKey
    >>> index_name(Candidate("public.posts", (IndexKey("user_id"), IndexKey("blog_id"))))
    'posts_user_id_blog_id_idx'
    >>> index_name(Candidate("public.posts", (IndexKey("a b"),)))
    'posts_a_b_6bd7956e_idx'
    """
    table_name = candidate.table.partition(".")[2]
    parts = [_slug(table_name), *(_slug(k.key) for k in candidate.keys)]
    if candidate.where:
        parts.append("partial")
    name = "_".join(parts) + "_idx"
    names = [table_name, *(k.key for k in candidate.keys if not k.expression)]
    lossy = any(_slug(n) != n.lower() for n in names) or any(k.expression for k in candidate.keys)
    ambiguous = lossy or candidate.include or candidate.where or name in taken
    if ambiguous or len(name.encode()) > MAX_IDENTIFIER_BYTES:
        digest = hashlib.sha256(candidate.label().encode()).hexdigest()[:8]
        stem = "_".join(parts)
        room = MAX_IDENTIFIER_BYTES - len(digest) - len("__idx")
        stem = stem.encode()[:room].decode(errors="ignore").rstrip("_")
        name = f"{stem}_{digest}_idx"
    return name


def key_sql(key: str, *, expression: bool, descending: bool) -> str:
    """One index key as DDL text: a quoted column or a parenthesised expression."""
    text = f"({key})" if expression else quote_ident(key)
    return text + (" DESC" if descending else "")


def _create_head(
    name: str, table: str, *, concurrently: bool, if_not_exists: bool, only: bool = False
) -> str:
    """``CREATE INDEX [CONCURRENTLY] [IF NOT EXISTS] name ON [ONLY] table `` (trailing space)."""
    words = ["CREATE INDEX"]
    if concurrently:
        words.append("CONCURRENTLY")
    if if_not_exists:
        words.append("IF NOT EXISTS")
    words += [quote_ident(name), "ON"]
    if only:
        words.append("ONLY")
    words.append(quote_qualified(table))
    return " ".join(words) + " "


def _create_tail(candidate: Candidate) -> str:
    """``USING method (keys) [INCLUDE (...)] [WHERE ...]``: what the index is, not where."""
    keys = ", ".join(
        key_sql(k.key, expression=k.expression, descending=k.descending) for k in candidate.keys
    )
    sql = f"USING {candidate.using} ({keys})"
    if candidate.include:
        sql += f" INCLUDE ({', '.join(quote_ident(c) for c in candidate.include)})"
    if candidate.where:
        sql += f" WHERE {candidate.where}"
    return sql


def create_index_sql(
    candidate: Candidate, name: str, *, concurrently: bool = True, if_not_exists: bool = False
) -> str:
    """``CREATE INDEX [CONCURRENTLY] [IF NOT EXISTS] name ON table USING method (keys) …``."""
    head = _create_head(
        name, candidate.table, concurrently=concurrently, if_not_exists=if_not_exists
    )
    return head + _create_tail(candidate)


def index_tail(ddl: str, *, name: str, table: str) -> str:
    """The ``USING …`` part of a statement :func:`create_index_sql` made for ``name`` on ``table``.

    Raises:
        ValueError: ``ddl`` is not such a statement (then nothing derived from it is safe).
    """
    for concurrently in (True, False):
        for if_not_exists in (False, True):
            head = _create_head(name, table, concurrently=concurrently, if_not_exists=if_not_exists)
            if ddl.startswith(head) and ddl[len(head) :].startswith("USING "):
                return ddl[len(head) :]
    raise ValueError(
        f"not the CREATE INDEX statement of {name!r} on {table!r}: {ddl[:120]!r}; "
        "re-run the audit so the statement is rebuilt from its candidate"
    )


def restate_create_index(
    ddl: str,
    *,
    name: str,
    table: str,
    concurrently: bool,
    if_not_exists: bool,
    on: tuple[str, str] | None = None,
    only: bool = False,
) -> str:
    """The same index (keys, INCLUDE and WHERE kept byte for byte) with other options.

    ``on`` = ``(index name, table)`` builds the same index under another name on another
    table (a partition); ``only`` adds ``ON ONLY`` (a partitioned parent's catalog-only index).

    >>> ddl = 'CREATE INDEX CONCURRENTLY "T_a_idx" ON public."T" USING btree (a)'
    >>> restate_create_index(
    ...     ddl, name="T_a_idx", table="public.T", concurrently=True, if_not_exists=True
    ... )
    'CREATE INDEX CONCURRENTLY IF NOT EXISTS "T_a_idx" ON public."T" USING btree (a)'

    Raises:
        ValueError: ``ddl`` is not the statement :func:`create_index_sql` made for ``name``.
    """
    tail = index_tail(ddl, name=name, table=table)
    new_name, new_table = on or (name, table)
    head = _create_head(
        new_name, new_table, concurrently=concurrently, if_not_exists=if_not_exists, only=only
    )
    return head + tail


def drop_index_sql(qualified_index: str, *, concurrently: bool = True) -> str:
    """``DROP INDEX [CONCURRENTLY] IF EXISTS schema.name``."""
    word = "CONCURRENTLY " if concurrently else ""
    return f"DROP INDEX {word}IF EXISTS {quote_qualified(qualified_index)}"
