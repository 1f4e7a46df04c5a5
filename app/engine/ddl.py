"""SQL text for index DDL: identifier quoting, index names within 63 bytes, CREATE/DROP INDEX."""

from __future__ import annotations

import hashlib
import re

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


def quote_qualified(qualified: str) -> str:
    """Quote ``schema.name`` (split on the first dot; names with dots are not supported).

    >>> quote_qualified("public.Users")
    'public."Users"'
    """
    schema, _, name = qualified.partition(".")
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "expr"


def index_name(candidate: Candidate) -> str:
    """A readable, deterministic index name within PostgreSQL's 63-byte limit.

    >>> from app.engine.model import IndexKey
    >>> index_name(Candidate("public.posts", (IndexKey("user_id"), IndexKey("blog_id"))))
    'posts_user_id_blog_id_idx'
    """
    table = _slug(candidate.table.partition(".")[2])
    parts = [table, *(_slug(k.key) for k in candidate.keys)]
    if candidate.where:
        parts.append("partial")
    name = "_".join(parts) + "_idx"
    if candidate.include or candidate.where or len(name.encode()) > MAX_IDENTIFIER_BYTES:
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


def create_index_sql(candidate: Candidate, name: str, *, concurrently: bool = True) -> str:
    """``CREATE INDEX [CONCURRENTLY] name ON table USING method (keys) [INCLUDE] [WHERE]``."""
    keys = ", ".join(
        key_sql(k.key, expression=k.expression, descending=k.descending) for k in candidate.keys
    )
    sql = "CREATE INDEX "
    if concurrently:
        sql += "CONCURRENTLY "
    table = quote_qualified(candidate.table)
    sql += f"{quote_ident(name)} ON {table} USING {candidate.using} ({keys})"
    if candidate.include:
        sql += f" INCLUDE ({', '.join(quote_ident(c) for c in candidate.include)})"
    if candidate.where:
        sql += f" WHERE {candidate.where}"
    return sql


def drop_index_sql(qualified_index: str, *, concurrently: bool = True) -> str:
    """``DROP INDEX [CONCURRENTLY] IF EXISTS schema.name``."""
    word = "CONCURRENTLY " if concurrently else ""
    return f"DROP INDEX {word}IF EXISTS {quote_qualified(qualified_index)}"
