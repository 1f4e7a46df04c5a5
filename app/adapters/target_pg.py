"""The one gate for SQL against a target database: read-only session, snapshot and workload."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, LiteralString

import psycopg
import structlog
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from app.adapters.errors import (
    MissingPrerequisite,
    TargetError,
    TargetQueryError,
    TargetUnavailable,
)
from app.engine.ddl import quote_ident
from app.engine.model import (
    Column,
    ColumnStats,
    ForeignKey,
    Index,
    Query,
    QuerySource,
    RelKind,
    Snapshot,
    Table,
)
from app.engine.workload import is_housekeeping, split_statements

log = structlog.get_logger(__name__)

#: Every statement we send starts (and ends) with this comment. PostgreSQL 18's
#: pg_stat_statements drops leading comments from the stored text, hence the trailing copy.
TAG = "/* dbarchitect */"
APPLICATION_NAME = "dbarchitect"

Row = dict[str, Any]
Params = Sequence[Any] | Mapping[str, Any]

# --------------------------------------------------------------------------------------------
# SQL. Catalog objects are schema-qualified so a user's search_path cannot shadow them.
# --------------------------------------------------------------------------------------------

# Session settings: read-only by default, time limits, no JIT (it costs seconds on big
# catalog queries and our EXPLAINs never execute), and the string rules our splitter assumes.
Q_SESSION_SETUP: LiteralString = """
SELECT
    pg_catalog.set_config('statement_timeout', %(statement_timeout)s, false),
    pg_catalog.set_config('lock_timeout', %(lock_timeout)s, false),
    pg_catalog.set_config('idle_in_transaction_session_timeout', %(idle_timeout)s, false),
    pg_catalog.set_config('default_transaction_read_only', 'on', false),
    pg_catalog.set_config('jit', 'off', false),
    pg_catalog.set_config('standard_conforming_strings', 'on', false),
    pg_catalog.current_setting('server_version_num')::int AS server_version_num,
    pg_catalog.current_database() AS database,
    current_user AS username
"""

Q_SERVER: LiteralString = """
SELECT
    pg_catalog.current_setting('server_version') AS server_version,
    pg_catalog.current_setting('server_version_num')::int AS server_version_num,
    pg_catalog.current_database() AS database,
    pg_catalog.current_schemas(false)::text[] AS search_path,
    pg_catalog.now() AS taken_at,
    (
        SELECT d.stats_reset
        FROM pg_catalog.pg_stat_database AS d
        WHERE d.datname = pg_catalog.current_database()
    ) AS stats_reset,
    EXISTS (
        SELECT 1
        FROM pg_catalog.pg_extension AS e
        WHERE e.extname = 'hypopg'
    ) AS hypopg_installed,
    EXISTS (
        SELECT 1
        FROM pg_catalog.pg_available_extensions AS a
        WHERE a.name = 'hypopg'
    ) AS hypopg_available
"""

# Relations we audit: tables, partitioned tables, views, materialized views, foreign tables
# outside system schemas (user schemas cannot start with pg_) and not owned by an extension.
_REL_CTE: LiteralString = """
rel AS (
    SELECT
        c.oid,
        n.nspname,
        c.relname,
        c.relkind,
        c.reltuples,
        c.relispartition
    FROM pg_catalog.pg_class AS c
    JOIN pg_catalog.pg_namespace AS n
        ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
        AND n.nspname !~ '^pg_'
        AND n.nspname <> 'information_schema'
        AND NOT EXISTS (
            SELECT 1
            FROM pg_catalog.pg_depend AS d
            WHERE d.classid = 'pg_catalog.pg_class'::regclass
                AND d.objid = c.oid
                AND d.deptype = 'e'
        )
)"""

Q_TABLES: LiteralString = (
    "WITH"
    + _REL_CTE
    + """
SELECT
    rel.nspname AS schema,
    rel.relname AS name,
    rel.relkind AS kind,
    CASE
        WHEN rel.relkind = 'p' THEN (
            SELECT COALESCE(sum(GREATEST(lc.reltuples, 0)), 0)
            FROM pg_catalog.pg_partition_tree(rel.oid) AS pt
            JOIN pg_catalog.pg_class AS lc
                ON lc.oid = pt.relid
            WHERE pt.isleaf
        )
        ELSE GREATEST(rel.reltuples, 0)
    END AS rows,
    CASE
        WHEN rel.relkind = 'p' THEN (
            SELECT COALESCE(sum(pg_catalog.pg_relation_size(pt.relid)), 0)
            FROM pg_catalog.pg_partition_tree(rel.oid) AS pt
            WHERE pt.isleaf
        )
        ELSE pg_catalog.pg_relation_size(rel.oid)
    END AS size_bytes,
    CASE
        WHEN rel.relkind = 'p' THEN (
            SELECT COALESCE(sum(pg_catalog.pg_total_relation_size(pt.relid)), 0)
            FROM pg_catalog.pg_partition_tree(rel.oid) AS pt
            WHERE pt.isleaf
        )
        ELSE pg_catalog.pg_total_relation_size(rel.oid)
    END AS total_bytes,
    CASE
        WHEN rel.relispartition THEN (
            SELECT ARRAY[pn.nspname, pc.relname]::text[]
            FROM pg_catalog.pg_inherits AS i
            JOIN pg_catalog.pg_class AS pc
                ON pc.oid = i.inhparent
            JOIN pg_catalog.pg_namespace AS pn
                ON pn.oid = pc.relnamespace
            WHERE i.inhrelid = rel.oid
        )
    END AS parent,
    CASE
        WHEN rel.relkind IN ('v', 'm') THEN pg_catalog.pg_get_viewdef(rel.oid, true)
    END AS view_sql,
    COALESCE(st.seq_scan, 0) AS seq_scan,
    COALESCE(st.idx_scan, 0) AS idx_scan,
    COALESCE(st.n_tup_ins, 0) AS n_tup_ins,
    COALESCE(st.n_tup_upd, 0) AS n_tup_upd,
    COALESCE(st.n_tup_del, 0) AS n_tup_del,
    COALESCE(st.n_tup_hot_upd, 0) AS n_tup_hot_upd,
    GREATEST(st.last_analyze, st.last_autoanalyze) AS last_analyze
FROM rel
LEFT JOIN pg_catalog.pg_stat_user_tables AS st
    ON st.relid = rel.oid
ORDER BY
    rel.nspname,
    rel.relname
"""
)

# One row per column (unordered: sorting 10k rows with their statistics spills to disk;
# Python orders by attnum). ``btree``: the type (domains resolved to their base) has a
# default B-tree operator class, exactly or through an implicit binary-coercible cast (as
# GetDefaultOpClass decides), or is an enum / range / multirange / composite (polymorphic
# opclasses), or is an array whose element type qualifies. json, point, xml, box … do not.
# Statistics arrays become text[] only for types whose array delimiter is ',' (not box).
Q_COLUMNS: LiteralString = (
    "WITH RECURSIVE"
    + _REL_CTE
    + """,
btree_opc AS (
    SELECT
        oc.opcintype
    FROM pg_catalog.pg_opclass AS oc
    JOIN pg_catalog.pg_am AS am
        ON am.oid = oc.opcmethod
    WHERE am.amname = 'btree'
        AND oc.opcdefault
),
dom (oid, base) AS (
    SELECT
        t.oid,
        t.typbasetype
    FROM pg_catalog.pg_type AS t
    WHERE t.typtype = 'd'
    UNION ALL
    SELECT
        dom.oid,
        t.typbasetype
    FROM dom
    JOIN pg_catalog.pg_type AS t
        ON t.oid = dom.base
    WHERE t.typtype = 'd'
),
base_of (oid, base) AS (
    SELECT
        dom.oid,
        dom.base
    FROM dom
    JOIN pg_catalog.pg_type AS t
        ON t.oid = dom.base
    WHERE t.typtype <> 'd'
),
sortable (oid) AS (
    SELECT
        t.oid
    FROM pg_catalog.pg_type AS t
    WHERE t.typtype NOT IN ('d', 'p')
        AND (
            t.oid IN (SELECT opcintype FROM btree_opc)
            OR EXISTS (
                SELECT 1
                FROM pg_catalog.pg_cast AS pc
                WHERE pc.castsource = t.oid
                    AND pc.castmethod = 'b'
                    AND pc.castcontext = 'i'
                    AND pc.casttarget IN (SELECT opcintype FROM btree_opc)
            )
            OR (
                t.typtype = 'e'
                AND 'pg_catalog.anyenum'::regtype::oid IN (SELECT opcintype FROM btree_opc)
            )
            OR (
                t.typtype = 'r'
                AND 'pg_catalog.anyrange'::regtype::oid IN (SELECT opcintype FROM btree_opc)
            )
            OR (
                t.typtype = 'm'
                AND pg_catalog.to_regtype('pg_catalog.anymultirange')::oid
                    IN (SELECT opcintype FROM btree_opc)
            )
            OR (
                t.typtype = 'c'
                AND 'pg_catalog.record'::regtype::oid IN (SELECT opcintype FROM btree_opc)
            )
        )
)
SELECT
    rel.nspname AS schema,
    rel.relname AS table_name,
    a.attnum,
    a.attname AS name,
    pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,
    a.attnotnull AS not_null,
    (
        bt.oid IN (SELECT oid FROM sortable)
        OR (
            bt.typcategory = 'A'
            AND 'pg_catalog.anyarray'::regtype::oid IN (SELECT opcintype FROM btree_opc)
            AND COALESCE(
                (SELECT b.base FROM base_of AS b WHERE b.oid = bt.typelem),
                bt.typelem
            ) IN (SELECT oid FROM sortable)
        )
    ) AS btree,
    s.attname IS NOT NULL AS has_stats,
    s.null_frac,
    s.n_distinct,
    s.avg_width,
    CASE
        WHEN bt.typdelim = ',' THEN s.most_common_vals::text::text[]
    END AS most_common_vals,
    s.most_common_freqs,
    CASE
        WHEN bt.typdelim = ',' THEN s.histogram_bounds::text::text[]
    END AS histogram_bounds,
    s.correlation
FROM rel
JOIN pg_catalog.pg_attribute AS a
    ON a.attrelid = rel.oid
    AND a.attnum > 0
    AND NOT a.attisdropped
JOIN pg_catalog.pg_type AS bt
    ON bt.oid = COALESCE(
        (SELECT b.base FROM base_of AS b WHERE b.oid = a.atttypid),
        a.atttypid
    )
LEFT JOIN pg_catalog.pg_stats AS s
    ON s.schemaname = rel.nspname
    AND s.tablename = rel.relname
    AND s.attname = a.attname
    AND s.inherited = (rel.relkind = 'p')
    AND s.schemaname !~ '^pg_'
    AND s.schemaname <> 'information_schema'
"""
)

# One row per index. Key columns by name, expression keys as pg_get_indexdef text; DESC
# from indoption bit 0; INCLUDE columns after indnkeyatts; the backing PK/UNIQUE/EXCLUDE
# constraint (conindid of a foreign key points at the referenced index, so filter contype).
Q_INDEXES: LiteralString = (
    "WITH"
    + _REL_CTE
    + """
SELECT
    ns.nspname AS schema,
    ic.relname AS name,
    rel.nspname AS table_schema,
    rel.relname AS table_name,
    ARRAY(
        SELECT
            CASE
                WHEN i.indkey[k - 1] = 0 THEN pg_catalog.pg_get_indexdef(i.indexrelid, k, true)
                ELSE (
                    SELECT a.attname::text
                    FROM pg_catalog.pg_attribute AS a
                    WHERE a.attrelid = i.indrelid
                        AND a.attnum = i.indkey[k - 1]
                )
            END
        FROM pg_catalog.generate_series(1, i.indnkeyatts) AS k
        ORDER BY k
    ) AS columns,
    ARRAY(
        SELECT i.indkey[k - 1] = 0
        FROM pg_catalog.generate_series(1, i.indnkeyatts) AS k
        ORDER BY k
    ) AS expression,
    ARRAY(
        SELECT (i.indoption[k - 1] & 1) = 1
        FROM pg_catalog.generate_series(1, i.indnkeyatts) AS k
        ORDER BY k
    ) AS descending,
    ARRAY(
        SELECT a.attname::text
        FROM pg_catalog.generate_series(i.indnkeyatts + 1, i.indnatts) AS k
        JOIN pg_catalog.pg_attribute AS a
            ON a.attrelid = i.indrelid
            AND a.attnum = i.indkey[k - 1]
        ORDER BY k
    ) AS include,
    pg_catalog.pg_get_expr(i.indpred, i.indrelid, true) AS predicate,
    am.amname AS using,
    i.indisunique AS is_unique,
    i.indisprimary AS is_primary,
    con.conname AS constraint_name,
    i.indisvalid AS valid,
    pg_catalog.pg_relation_size(i.indexrelid) AS size_bytes,
    COALESCE(pg_catalog.pg_stat_get_numscans(i.indexrelid), 0) AS scans,
    pg_catalog.pg_get_indexdef(i.indexrelid) AS definition
FROM pg_catalog.pg_index AS i
JOIN rel
    ON rel.oid = i.indrelid
JOIN pg_catalog.pg_class AS ic
    ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_namespace AS ns
    ON ns.oid = ic.relnamespace
JOIN pg_catalog.pg_am AS am
    ON am.oid = ic.relam
LEFT JOIN pg_catalog.pg_constraint AS con
    ON con.conindid = i.indexrelid
    AND con.conrelid = i.indrelid
    AND con.contype IN ('p', 'u', 'x')
ORDER BY
    rel.nspname,
    rel.relname,
    ic.relname
"""
)

# Declared foreign keys only: constraints cloned onto partitions have conparentid <> 0.
Q_FOREIGN_KEYS: LiteralString = (
    "WITH"
    + _REL_CTE
    + """
SELECT
    con.conname AS name,
    rel.nspname AS schema,
    rel.relname AS table_name,
    ARRAY(
        SELECT a.attname::text
        FROM pg_catalog.unnest(con.conkey) WITH ORDINALITY AS u(attnum, ord)
        JOIN pg_catalog.pg_attribute AS a
            ON a.attrelid = con.conrelid
            AND a.attnum = u.attnum
        ORDER BY u.ord
    ) AS columns,
    rn.nspname AS ref_schema,
    rc.relname AS ref_table,
    ARRAY(
        SELECT a.attname::text
        FROM pg_catalog.unnest(con.confkey) WITH ORDINALITY AS u(attnum, ord)
        JOIN pg_catalog.pg_attribute AS a
            ON a.attrelid = con.confrelid
            AND a.attnum = u.attnum
        ORDER BY u.ord
    ) AS ref_columns
FROM pg_catalog.pg_constraint AS con
JOIN rel
    ON rel.oid = con.conrelid
JOIN pg_catalog.pg_class AS rc
    ON rc.oid = con.confrelid
JOIN pg_catalog.pg_namespace AS rn
    ON rn.oid = rc.relnamespace
WHERE con.contype = 'f'
    AND con.conparentid = 0
ORDER BY
    rel.nspname,
    rel.relname,
    con.conname
"""
)

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
Q_WORKLOAD: LiteralString = (
    """
SELECT
    s.queryid::text AS queryid,
    min(s.query) AS query,
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

Q_BEGIN_READ_WRITE: LiteralString = "BEGIN READ WRITE"
Q_ROLLBACK: LiteralString = "ROLLBACK"
Q_LOCAL_TIMEOUTS: LiteralString = """
SELECT
    pg_catalog.set_config('lock_timeout', %(lock_timeout)s, true),
    pg_catalog.set_config('statement_timeout', %(statement_timeout)s, true)
"""


# --------------------------------------------------------------------------------------------
# Connecting, and turning library errors into ours without leaking the DSN.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Where:
    """The non-secret parts of a DSN, for messages."""

    host: str
    port: str
    database: str
    user: str

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def _where(params: Mapping[str, Any]) -> _Where:
    return _Where(
        host=str(params.get("host") or params.get("hostaddr") or "localhost"),
        port=str(params.get("port") or "5432"),
        database=str(params.get("dbname") or params.get("user") or "(default)"),
        user=str(params.get("user") or "(default)"),
    )


def _scrub(text: str, secrets: Sequence[str]) -> str:
    """Remove secrets from a library message; drop it entirely if a secret is too short."""
    for secret in secrets:
        if not secret:
            continue
        if len(secret) < 4:
            return ""
        text = text.replace(secret, "***")
    return text


def _connect_error(exc: psycopg.Error, where: _Where, secrets: Sequence[str]) -> TargetUnavailable:
    """Classify a failed connection attempt into an actionable, DSN-free message."""
    raw = str(exc)
    reason = _scrub(raw, secrets).strip().splitlines()
    detail = reason[0] if reason else ""
    detail = re.sub(r"^connection failed:\s*", "", detail)
    lowered = raw.lower()
    if "password authentication failed" in lowered or "authentication failed" in lowered:
        msg = (
            f"authentication failed for user {where.user!r} at {where.address}: "
            "check the user name and password of the target connection"
        )
    elif "no pg_hba.conf entry" in lowered:
        msg = (
            f"the server at {where.address} refused user {where.user!r} for database "
            f"{where.database!r} (no pg_hba.conf entry): ask the DBA to allow this client"
        )
    elif re.search(r'database ".*" does not exist', raw):
        msg = (
            f"database {where.database!r} does not exist at {where.address}: "
            "check the database name of the target connection"
        )
    elif re.search(r'role ".*" does not exist', raw):
        msg = (
            f"role {where.user!r} does not exist at {where.address}: "
            "check the user name of the target connection"
        )
    elif "connection refused" in lowered:
        msg = (
            f"connection refused by {where.address}: check that PostgreSQL is running and "
            "listens on that host and port (listen_addresses, port, firewall)"
        )
    elif "timeout" in lowered or "timed out" in lowered:
        msg = f"timed out connecting to {where.address}: check the host, port and network path"
    elif "resolve host" in lowered or "translate host name" in lowered:
        msg = f"cannot resolve host {where.host!r}: check the host name of the target connection"
    else:
        msg = f"cannot connect to {where.address} as {where.user!r}"
        if detail:
            msg += f": {detail}"
    return TargetUnavailable(msg)


def connect(
    dsn: str,
    *,
    statement_timeout_ms: int = 30_000,
    lock_timeout_ms: int = 5_000,
    idle_in_transaction_timeout_ms: int = 60_000,
    connect_timeout_s: int = 10,
) -> Target:
    """Open a read-only, time-limited session on the target (``application_name=dbarchitect``).

    Raises :class:`TargetUnavailable` with a message naming what to check (never the DSN).
    """
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error:
        # libpq echoes fragments of a malformed DSN: say nothing of its content.
        raise TargetUnavailable(
            "the target connection string could not be parsed: use "
            "'postgresql://user@host:port/db' or 'host=… port=… dbname=… user=…'"
        ) from None
    where = _where(params)
    extra: dict[str, Any] = {"application_name": APPLICATION_NAME}
    if "connect_timeout" not in params:
        extra["connect_timeout"] = connect_timeout_s
    try:
        conn: psycopg.Connection[Row] = psycopg.connect(
            dsn, autocommit=True, prepare_threshold=None, row_factory=dict_row, **extra
        )
    except psycopg.Error as exc:
        error = _connect_error(exc, where, [str(params.get("password") or ""), dsn])
        log.warning("target.connect_failed", reason=str(error))
        raise error from None
    target = Target(conn, where=where)
    try:
        row = target.one(
            Q_SESSION_SETUP,
            {
                "statement_timeout": f"{int(statement_timeout_ms)}ms",
                "lock_timeout": f"{int(lock_timeout_ms)}ms",
                "idle_timeout": f"{int(idle_in_transaction_timeout_ms)}ms",
            },
        )
    except TargetError:
        target.close()
        raise
    target.server_version_num = int(row["server_version_num"])
    target.database = str(row["database"])
    target.user = str(row["username"])
    log.info(
        "target.connected",
        server_version_num=target.server_version_num,
        statement_timeout_ms=statement_timeout_ms,
        lock_timeout_ms=lock_timeout_ms,
    )
    return target


def untrusted(text: str) -> sql.SQL:
    """Wrap statement text that did not come from this module (workload SQL, index DDL).

    It is only ever sent as ONE statement: callers check it with :func:`single_statement`.
    """
    return sql.SQL(text)  # type-wise a LiteralString; see the docstring for why it is safe


def single_statement(text: str) -> str:
    """The text as exactly one statement (a trailing ``;`` dropped), or ``ValueError``."""
    statements = split_statements(text)
    if len(statements) != 1:
        raise ValueError(f"expected one SQL statement, found {len(statements)}")
    return statements[0]


def _tagged(query: sql.Composable) -> sql.Composed:
    return sql.Composed([sql.SQL(TAG + "\n"), query, sql.SQL("\n" + TAG)])


def _as_composable(query: LiteralString | sql.Composable) -> sql.Composable:
    return query if isinstance(query, sql.Composable) else sql.SQL(query)


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text))


class Target:
    """A session on the target database. Not thread-safe: one caller at a time."""

    def __init__(self, conn: psycopg.Connection[Row], *, where: _Where) -> None:
        self._conn = conn
        self._where = where
        self.server_version_num = 0
        self.database = where.database
        self.user = where.user

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the session (idempotent)."""
        self._conn.close()

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        """The session is closed or broken."""
        return self._conn.closed or self._conn.broken

    @property
    def in_transaction(self) -> bool:
        """An explicit transaction is open on the session."""
        return self._conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    # -- the gate ----------------------------------------------------------------------------

    def _error(self, exc: psycopg.Error) -> TargetError:
        if self._conn.broken or self._conn.closed:
            return TargetUnavailable(
                f"lost the connection to the target at {self._where.address}: "
                "check that the server is up and reachable"
            )
        if exc.sqlstate is None:  # raised by the driver, not the server
            return TargetQueryError(f"{type(exc).__name__}: {exc}")
        primary = exc.diag.message_primary or type(exc).__name__
        if exc.sqlstate == "57014":
            primary = "statement timed out (statement_timeout)"
        elif exc.sqlstate == "55P03":
            primary = "gave up waiting for a lock (lock_timeout)"
        return TargetQueryError(primary, sqlstate=exc.sqlstate)

    def rows(
        self, query: LiteralString | sql.Composable, params: Params | None = None
    ) -> list[Row]:
        """Run one tagged statement with bound parameters; its rows (empty for commands)."""
        statement = _tagged(_as_composable(query))
        try:
            cur = self._conn.execute(statement, params)
            return cur.fetchall() if cur.description is not None else []
        except psycopg.Error as exc:
            error = self._error(exc)
            log.debug("target.statement_failed", sqlstate=exc.sqlstate)
            raise error from None

    def one(self, query: LiteralString | sql.Composable, params: Params | None = None) -> Row:
        """The single row of a statement that returns exactly one."""
        result = self.rows(query, params)
        if len(result) != 1:
            raise TargetQueryError(f"expected one row, got {len(result)}")
        return result[0]

    def script(self, statements: Sequence[sql.Composable]) -> list[Row]:
        """Send several tagged statements in ONE round trip (simple protocol, no parameters).

        Returns the rows of the last statement that produced any. The statements run in one
        implicit transaction unless an explicit one is open; the first error stops the rest.
        Untrusted text must have passed :func:`single_statement` before it gets here.
        """
        joined = sql.SQL(";\n").join(_tagged(s) for s in statements)
        try:
            cur = self._conn.execute(joined)
            result: list[Row] = []
            for _ in cur.results():
                if cur.description is not None:
                    result = cur.fetchall()
            return result
        except psycopg.Error as exc:
            error = self._error(exc)
            log.debug("target.statement_failed", sqlstate=exc.sqlstate)
            raise error from None

    @contextmanager
    def read_write_transaction(
        self, *, lock_timeout_ms: int, statement_timeout_ms: int
    ) -> Iterator[None]:
        """``BEGIN READ WRITE`` … ``ROLLBACK``: the only writable path, and it never commits.

        Used by the rolled-back-build what-if only. Timeouts are ``SET LOCAL``.
        """
        if self.in_transaction:
            raise TargetQueryError("a transaction is already open on the target session")
        self.rows(Q_BEGIN_READ_WRITE)
        try:
            self.rows(
                Q_LOCAL_TIMEOUTS,
                {
                    "lock_timeout": f"{int(lock_timeout_ms)}ms",
                    "statement_timeout": f"{int(statement_timeout_ms)}ms",
                },
            )
            yield
        finally:
            self.rollback()

    def rollback(self) -> None:
        """Roll back whatever transaction is open (no-op when idle or disconnected)."""
        if self._conn.closed or self._conn.broken or not self.in_transaction:
            return
        try:
            self._conn.execute(_tagged(sql.SQL(Q_ROLLBACK)))
        except psycopg.Error:
            log.warning("target.rollback_failed")

    # -- snapshot ----------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Catalog, statistics and activity counters of the current database, in five queries."""
        started = time.perf_counter()
        server = self.one(Q_SERVER)
        columns: dict[tuple[str, str], list[tuple[int, Column]]] = {}
        for r in self.rows(Q_COLUMNS):
            stats = None
            if r["has_stats"]:
                stats = ColumnStats(
                    null_frac=float(r["null_frac"] or 0.0),
                    n_distinct=float(r["n_distinct"] or 0.0),
                    avg_width=int(r["avg_width"] or 0),
                    most_common_vals=tuple(r["most_common_vals"] or ()),
                    most_common_freqs=tuple(float(f) for f in r["most_common_freqs"] or ()),
                    histogram_bounds=tuple(r["histogram_bounds"] or ()),
                    correlation=None if r["correlation"] is None else float(r["correlation"]),
                )
            column = Column(
                name=r["name"],
                type=r["type"],
                not_null=bool(r["not_null"]),
                btree=bool(r["btree"]),
                stats=stats,
            )
            columns.setdefault((r["schema"], r["table_name"]), []).append((r["attnum"], column))
        tables = tuple(
            Table(
                schema=r["schema"],
                name=r["name"],
                kind=_RELKINDS[r["kind"]],
                columns=_in_order(columns.get((r["schema"], r["name"]), [])),
                rows=float(r["rows"]),
                size_bytes=int(r["size_bytes"]),
                total_bytes=int(r["total_bytes"]),
                seq_scan=int(r["seq_scan"]),
                idx_scan=int(r["idx_scan"]),
                n_tup_ins=int(r["n_tup_ins"]),
                n_tup_upd=int(r["n_tup_upd"]),
                n_tup_del=int(r["n_tup_del"]),
                n_tup_hot_upd=int(r["n_tup_hot_upd"]),
                partition_of=".".join(r["parent"]) if r["parent"] else None,
                view_sql=r["view_sql"],
                last_analyze=r["last_analyze"],
            )
            for r in self.rows(Q_TABLES)
        )
        indexes = tuple(
            Index(
                schema=r["schema"],
                name=r["name"],
                table=f"{r['table_schema']}.{r['table_name']}",
                columns=tuple(r["columns"]),
                descending=tuple(r["descending"]),
                include=tuple(r["include"]),
                where=r["predicate"],
                using=r["using"],
                unique=bool(r["is_unique"]),
                primary=bool(r["is_primary"]),
                constraint=r["constraint_name"],
                valid=bool(r["valid"]),
                size_bytes=int(r["size_bytes"]),
                scans=int(r["scans"]),
                definition=r["definition"],
            )
            for r in self.rows(Q_INDEXES)
        )
        foreign_keys = tuple(
            ForeignKey(
                name=r["name"],
                table=f"{r['schema']}.{r['table_name']}",
                columns=tuple(r["columns"]),
                ref_table=f"{r['ref_schema']}.{r['ref_table']}",
                ref_columns=tuple(r["ref_columns"]),
            )
            for r in self.rows(Q_FOREIGN_KEYS)
        )
        snapshot = Snapshot(
            server_version=str(server["server_version"]).split()[0],
            server_version_num=int(server["server_version_num"]),
            database=str(server["database"]),
            taken_at=server["taken_at"],
            tables=tables,
            indexes=indexes,
            foreign_keys=foreign_keys,
            hypopg=bool(server["hypopg_installed"]),
            hypopg_available=bool(server["hypopg_available"]),
            stats_reset=server["stats_reset"],
            search_path=tuple(server["search_path"] or ()),
        )
        log.info(
            "target.snapshot",
            tables=len(tables),
            indexes=len(indexes),
            foreign_keys=len(foreign_keys),
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return snapshot

    # -- workload ----------------------------------------------------------------------------

    def _extension(self, name: str) -> tuple[str, tuple[int, ...]] | None:
        found = self.rows(Q_EXTENSION, {"name": name})
        if not found:
            return None
        return str(found[0]["schema"]), _version_tuple(str(found[0]["version"]))

    def _pg_stat_statements(self) -> tuple[str, tuple[int, ...]]:
        """Schema and version of pg_stat_statements, or MissingPrerequisite saying what to run."""
        found = self._extension("pg_stat_statements")
        if found is not None:
            return found
        available = bool(
            self.one(Q_EXTENSION_AVAILABLE, {"name": "pg_stat_statements"})["available"]
        )
        if not available:
            raise MissingPrerequisite(
                "pg_stat_statements is not available on the target server: install the "
                "PostgreSQL contrib package, set shared_preload_libraries = 'pg_stat_statements' "
                "in postgresql.conf, restart PostgreSQL, then run CREATE EXTENSION "
                f"pg_stat_statements; in database {self.database!r} "
                "(or pass the workload with --queries FILE)"
            )
        raise MissingPrerequisite(
            f"pg_stat_statements is not installed in database {self.database!r}: run "
            "CREATE EXTENSION pg_stat_statements; (the server also needs "
            "shared_preload_libraries = 'pg_stat_statements' in postgresql.conf and a restart) "
            "or pass the workload with --queries FILE"
        )

    def _not_loaded(self) -> MissingPrerequisite:
        return MissingPrerequisite(
            "pg_stat_statements is installed but its library is not loaded: add "
            "shared_preload_libraries = 'pg_stat_statements' to postgresql.conf (keep any "
            "existing entries, comma-separated), restart PostgreSQL, then run "
            "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; "
            "(or pass the workload with --queries FILE)"
        )

    def workload(
        self, *, min_calls: int = 1, min_total_ms: float = 0.0, limit: int = 1000
    ) -> list[Query]:
        """Top statements of this database by total execution time, from pg_stat_statements.

        Excludes our own tagged statements, utility statements (only SELECT / WITH / INSERT /
        UPDATE / DELETE / MERGE / VALUES / TABLE remain) and catalog-only housekeeping.
        """
        schema, version = self._pg_stat_statements()
        pgss = sql.Identifier(schema, "pg_stat_statements")
        total = sql.Identifier("total_exec_time" if version >= (1, 8) else "total_time")
        try:
            hidden = self.one(sql.SQL(Q_WORKLOAD_HIDDEN).format(pgss=pgss))["hidden"]
        except TargetQueryError as exc:
            if exc.sqlstate == "55000":
                raise self._not_loaded() from None
            if exc.sqlstate == "42501":
                raise MissingPrerequisite(
                    f"user {self.user!r} may not read pg_stat_statements ({exc.message}): run "
                    f"GRANT pg_read_all_stats TO {quote_ident(self.user)}; and "
                    f"GRANT SELECT ON {schema}.pg_stat_statements TO {quote_ident(self.user)};"
                ) from None
            raise
        if hidden:
            raise MissingPrerequisite(
                f"user {self.user!r} cannot read the text of other users' statements in "
                f"pg_stat_statements ({hidden} hidden): run "
                f"GRANT pg_read_all_stats TO {quote_ident(self.user)};"
            )
        # Housekeeping is recognised here, after the SQL LIMIT: page until ``limit`` remain.
        query = sql.SQL(Q_WORKLOAD).format(pgss=pgss, total=total)
        queries: list[Query] = []
        read = 0
        while len(queries) < limit:
            page = self.rows(
                query,
                {
                    "tag": TAG,
                    "min_calls": int(min_calls),
                    "min_total_ms": float(min_total_ms),
                    "limit": int(limit),
                    "offset": read,
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

    def stat_statements_reset_time(self) -> datetime | None:
        """When pg_stat_statements was last reset (PostgreSQL 14+, extension 1.9+), else None."""
        found = self._extension("pg_stat_statements")
        if found is None or found[1] < (1, 9):
            return None
        info = sql.Identifier(found[0], "pg_stat_statements_info")
        try:
            row = self.one(sql.SQL(Q_WORKLOAD_RESET).format(info=info))
        except TargetQueryError as exc:
            if exc.sqlstate == "55000":
                return None
            raise
        reset = row["stats_reset"]
        return reset if isinstance(reset, datetime) else None


def _in_order(numbered: list[tuple[int, Column]]) -> tuple[Column, ...]:
    return tuple(column for _, column in sorted(numbered, key=lambda pair: pair[0]))


_RELKINDS: dict[str, RelKind] = {
    "r": RelKind.table,
    "p": RelKind.partitioned,
    "v": RelKind.view,
    "m": RelKind.matview,
    "f": RelKind.foreign,
}
