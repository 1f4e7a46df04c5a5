"""The workload: top statements from pg_stat_statements, and what to run when it is missing."""

from __future__ import annotations

import re
from datetime import datetime
from typing import LiteralString

import structlog
from psycopg import sql

from app.adapters.errors import MissingPrerequisite, TargetQueryError
from app.adapters.target_pg.gate import TAG, Session
from app.engine.advisor.workload import is_housekeeping
from app.engine.ddl import quote_ident
from app.engine.model import Query, QuerySource
from app.engine.sql import MAX_STATEMENT_CHARS

log = structlog.get_logger(__name__)

Q_EXTENSION: LiteralString = """
SELECT
    n.nspname AS schema,
    e.extversion AS version
FROM pg_catalog.pg_extension AS e
JOIN pg_catalog.pg_namespace AS n
    ON n.oid = e.extnamespace
WHERE e.extname = %(name)s
"""

Q_EXTENSION_AVAILABLE: LiteralString = """
SELECT
    EXISTS (
        SELECT 1
        FROM pg_catalog.pg_available_extensions AS a
        WHERE a.name = %(name)s
    ) AS available
"""

#: Statements whose first keyword (after comments and parentheses) can use an index.
_WORKLOAD_KEYWORDS: LiteralString = (
    r"^(\s|/\*([^*]|\*+[^*/])*\*+/|--[^\n]*\n|\()*"
    r"(select|with|insert|update|delete|merge|values|table)\M"
)

# {pgss}: the extension's schema-qualified view; {total}: total_exec_time (total_time < 1.8).
# Text beyond max_chars is never fetched: a longer statement is not analysed anyway, and
# 1,000 entries of a megabyte each would be a gigabyte.
Q_WORKLOAD: LiteralString = (
    """
SELECT
    s.queryid::text AS queryid,
    pg_catalog.left(min(s.query), %(max_chars)s) AS query,
    sum(s.calls)::bigint AS calls,
    sum(s.{total})::float8 AS total_ms,
    sum(s.rows)::bigint AS rows
FROM {pgss} AS s
WHERE s.dbid = (
        SELECT d.oid
        FROM pg_catalog.pg_database AS d
        WHERE d.datname = pg_catalog.current_database()
    )
    AND pg_catalog.strpos(s.query, %(tag)s) = 0
    AND s.query ~* '"""
    + _WORKLOAD_KEYWORDS
    + """'
GROUP BY
    s.queryid
HAVING sum(s.calls) >= %(min_calls)s
    AND sum(s.{total}) >= %(min_total_ms)s
ORDER BY
    total_ms DESC,
    queryid
LIMIT %(limit)s
OFFSET %(offset)s
"""
)

Q_WORKLOAD_HIDDEN: LiteralString = """
SELECT
    count(*) AS hidden
FROM {pgss} AS s
WHERE s.dbid = (
        SELECT d.oid
        FROM pg_catalog.pg_database AS d
        WHERE d.datname = pg_catalog.current_database()
    )
    AND s.query = '<insufficient privilege>'
"""

Q_WORKLOAD_RESET: LiteralString = """
SELECT
    i.stats_reset
FROM {info} AS i
"""


MISSING_HINT = "or pass the workload with --queries FILE"


def read_workload(
    session: Session, *, min_calls: int = 1, min_total_ms: float = 0.0, limit: int = 1000
) -> list[Query]:
    """Top statements of this database by total execution time, from pg_stat_statements.

    Excludes our own tagged statements, utility statements (only SELECT / WITH / INSERT /
    UPDATE / DELETE / MERGE / VALUES / TABLE remain) and catalog-only housekeeping.
    """
    schema, version = _pg_stat_statements(session)
    pgss = sql.Identifier(schema, "pg_stat_statements")
    total = sql.Identifier("total_exec_time" if version >= (1, 8) else "total_time")
    _check_readable(session, schema, pgss)
    # Housekeeping is recognised here, after the SQL LIMIT: page until ``limit`` remain.
    query = sql.SQL(Q_WORKLOAD).format(pgss=pgss, total=total)
    queries: list[Query] = []
    read = 0
    while len(queries) < limit:
        page = session.rows(
            query,
            {
                "tag": TAG,
                "min_calls": int(min_calls),
                "min_total_ms": float(min_total_ms),
                "limit": int(limit),
                "offset": read,
                "max_chars": MAX_STATEMENT_CHARS + 1,
            },
        )
        read += len(page)
        queries += [
            Query(
                text=str(r["query"]).strip(),
                calls=int(r["calls"]),
                total_ms=float(r["total_ms"]),
                rows=int(r["rows"]),
                queryid=r["queryid"],
                source=QuerySource.pg_stat_statements,
            )
            for r in page
            if r["query"] and not is_housekeeping(str(r["query"]))
        ]
        if len(page) < limit:
            break
    queries = queries[:limit]
    log.info("target.workload", statements=len(queries), read=read)
    return queries


def stat_statements_reset_time(session: Session) -> datetime | None:
    """When pg_stat_statements was last reset (PostgreSQL 14+, extension 1.9+), else None."""
    found = _extension(session, "pg_stat_statements")
    if found is None or found[1] < (1, 9):
        return None
    info = sql.Identifier(found[0], "pg_stat_statements_info")
    try:
        row = session.one(sql.SQL(Q_WORKLOAD_RESET).format(info=info))
    except TargetQueryError as exc:
        if exc.sqlstate == "55000":
            return None
        raise
    reset = row["stats_reset"]
    return reset if isinstance(reset, datetime) else None


def _extension(session: Session, name: str) -> tuple[str, tuple[int, ...]] | None:
    found = session.rows(Q_EXTENSION, {"name": name})
    if not found:
        return None
    version = tuple(int(p) for p in re.findall(r"\d+", str(found[0]["version"])))
    return str(found[0]["schema"]), version


def _pg_stat_statements(session: Session) -> tuple[str, tuple[int, ...]]:
    """Schema and version of pg_stat_statements, or MissingPrerequisite saying what to run."""
    found = _extension(session, "pg_stat_statements")
    if found is not None:
        return found
    available = bool(
        session.one(Q_EXTENSION_AVAILABLE, {"name": "pg_stat_statements"})["available"]
    )
    if not available:
        raise MissingPrerequisite(
            "pg_stat_statements is not available on the target server: install the "
            "PostgreSQL contrib package, set shared_preload_libraries = 'pg_stat_statements' "
            "in postgresql.conf, restart PostgreSQL, then run CREATE EXTENSION "
            f"pg_stat_statements; in database {session.database!r} ({MISSING_HINT})"
        )
    raise MissingPrerequisite(
        f"pg_stat_statements is not installed in database {session.database!r}: run "
        "CREATE EXTENSION pg_stat_statements; (the server also needs "
        "shared_preload_libraries = 'pg_stat_statements' in postgresql.conf and a restart) "
        f"{MISSING_HINT}"
    )


def _check_readable(session: Session, schema: str, pgss: sql.Identifier) -> None:
    """MissingPrerequisite unless the library is loaded and every statement's text readable."""
    user = quote_ident(session.user)
    try:
        hidden = session.one(sql.SQL(Q_WORKLOAD_HIDDEN).format(pgss=pgss))["hidden"]
    except TargetQueryError as exc:
        if exc.sqlstate == "55000":
            raise MissingPrerequisite(
                "pg_stat_statements is installed but its library is not loaded: add "
                "shared_preload_libraries = 'pg_stat_statements' to postgresql.conf (keep any "
                "existing entries, comma-separated), restart PostgreSQL, then run "
                f"CREATE EXTENSION IF NOT EXISTS pg_stat_statements; ({MISSING_HINT})"
            ) from None
        if exc.sqlstate == "42501":
            raise MissingPrerequisite(
                f"user {session.user!r} may not read pg_stat_statements ({exc.message}): run "
                f"GRANT pg_read_all_stats TO {user}; and "
                f"GRANT SELECT ON {schema}.pg_stat_statements TO {user};"
            ) from None
        raise
    if hidden:
        raise MissingPrerequisite(
            f"user {session.user!r} cannot read the text of other users' statements in "
            f"pg_stat_statements ({hidden} hidden): run GRANT pg_read_all_stats TO {user};"
        )
