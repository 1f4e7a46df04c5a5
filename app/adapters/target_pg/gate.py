"""The one gate for SQL against a target: session settings, tagged statements, our errors."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, LiteralString, Self

import psycopg
import structlog
from psycopg import postgres, sql
from psycopg.rows import dict_row, tuple_row
from psycopg.types.json import set_json_loads
from psycopg.types.string import TextLoader

from app.adapters.errors import TargetError, TargetQueryError, TargetUnavailable
from app.adapters.target_pg.dsn import Where, connect_error, parse_dsn
from app.engine.advisor.workload import split_statements

log = structlog.get_logger(__name__)

#: Every statement we send starts (and ends) with this comment. PostgreSQL 18's
#: pg_stat_statements drops leading comments from the stored text, hence the trailing copy.
TAG = "/* dbarchitect */"
APPLICATION_NAME = "dbarchitect"

Row = dict[str, Any]


def _lenient_json(data: str | bytes) -> Any:
    """JSON from the server, invalid UTF-8 read as U+FFFD instead of failing the whole audit.

    JSON nested deeper than Python's recursion limit (the plan of a join of some 500 tables
    is 1,000 levels deep) fails this one statement as a driver error, not the whole audit.
    """
    if not isinstance(data, str):
        data = bytes(data).decode("utf-8", errors="replace")
    try:
        return json.loads(data)
    except RecursionError:
        raise psycopg.DataError(
            f"the server's JSON ({len(data):,} characters) nests too deeply to read"
        ) from None


Params = Sequence[Any] | Mapping[str, Any]

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

# Keep our own statements out of the target's pg_stat_statements: they are not workload and
# would evict real entries. Only superusers may change it; asking otherwise would leave an
# error in the server log, so the query asks only then.
Q_UNTRACKED: LiteralString = """
SELECT pg_catalog.set_config('pg_stat_statements.track', 'none', false)
WHERE (SELECT r.rolsuper FROM pg_catalog.pg_roles AS r WHERE r.rolname = current_user)
"""

Q_BEGIN_READ_WRITE: LiteralString = "BEGIN READ WRITE"
Q_BEGIN_READ_ONLY: LiteralString = "BEGIN READ ONLY"
#: Memory for one asked query's sorts and hashes (more spills to disk, within the timeout).
Q_ASK_MEMORY: LiteralString = "SELECT pg_catalog.set_config('work_mem', '32MB', true)"
#: The server-side cursor :meth:`Session.read_only_text` fetches through.
TEXT_CURSOR = "dbarchitect_text"
Q_ROLLBACK: LiteralString = "ROLLBACK"
Q_LOCAL_TIMEOUTS: LiteralString = """
SELECT
    pg_catalog.set_config('lock_timeout', %(lock_timeout)s, true),
    pg_catalog.set_config('statement_timeout', %(statement_timeout)s, true)
"""


def untrusted(text: str) -> sql.SQL:
    """Wrap statement text that did not come from this package (workload SQL, index DDL).

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


class Session:
    """A read-only, time-limited session on the target. Not thread-safe: one caller at a time."""

    def __init__(self, conn: psycopg.Connection[Row], *, where: Where) -> None:
        self._conn = conn
        self._where = where
        self.server_version_num = 0
        self.database = where.database
        self.user = where.user

    @classmethod
    def open(
        cls,
        dsn: str,
        *,
        statement_timeout_ms: int = 30_000,
        lock_timeout_ms: int = 5_000,
        idle_in_transaction_timeout_ms: int = 60_000,
        connect_timeout_s: int = 10,
    ) -> Self:
        """Open a read-only, time-limited session (``application_name=dbarchitect``).

        Raises :class:`TargetUnavailable` with a message naming what to check (never the DSN),
        :class:`~app.adapters.errors.BadDsn` when the DSN itself is malformed.
        """
        params, where = parse_dsn(dsn)
        extra: dict[str, Any] = {"application_name": APPLICATION_NAME}
        if "connect_timeout" not in params:
            extra["connect_timeout"] = connect_timeout_s
        try:
            conn: psycopg.Connection[Row] = psycopg.connect(
                dsn, autocommit=True, prepare_threshold=None, row_factory=dict_row, **extra
            )
        except psycopg.Error as exc:
            error = connect_error(exc, where, [str(params.get("password") or ""), dsn])
            # Info, not warning: the caller reports the error itself.
            log.info("target.connect_failed", reason=str(error))
            raise error from None
        # HypoPG cuts a hypothetical index's name at byte 63, possibly inside a multibyte
        # character, so EXPLAIN's JSON can hold invalid UTF-8: read it with replacement.
        set_json_loads(_lenient_json, conn)
        session = cls(conn, where=where)
        try:
            row = session.one(
                Q_SESSION_SETUP,
                {
                    "statement_timeout": f"{int(statement_timeout_ms)}ms",
                    "lock_timeout": f"{int(lock_timeout_ms)}ms",
                    "idle_timeout": f"{int(idle_in_transaction_timeout_ms)}ms",
                },
            )
        except TargetError:
            session.close()
            raise
        try:
            session.rows(Q_UNTRACKED)
        except TargetError as exc:  # not permitted for this role: our statements are tagged
            log.debug("target.tracking_kept", reason=str(exc))
        session.server_version_num = int(row["server_version_num"])
        session.database = str(row["database"])
        session.user = str(row["username"])
        log.info(
            "target.connected",
            server_version_num=session.server_version_num,
            statement_timeout_ms=statement_timeout_ms,
            lock_timeout_ms=lock_timeout_ms,
        )
        return session

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the session (idempotent)."""
        self._conn.close()

    def __enter__(self) -> Self:
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
        self, *, lock_timeout_ms: int, statement_timeout_ms: int, read_only: bool = False
    ) -> Iterator[None]:
        """``BEGIN READ WRITE`` … ``ROLLBACK``: the only writable path, and it never commits.

        Used by the rolled-back-build what-if and validation. Timeouts are ``SET LOCAL``.
        ``read_only``: the same bounded, rolled-back transaction, but ``BEGIN READ ONLY``.
        """
        if self.in_transaction:
            raise TargetQueryError("a transaction is already open on the target session")
        self.rows(Q_BEGIN_READ_ONLY if read_only else Q_BEGIN_READ_WRITE)
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

    def read_only_text(
        self, query: sql.Composable, *, max_rows: int
    ) -> tuple[tuple[str, ...], list[tuple[str | None, ...]]]:
        """Column names and the first ``max_rows`` rows of one query, every value as text.

        Runs in ``BEGIN READ ONLY`` … ``ROLLBACK`` through a server-side cursor: PostgreSQL
        declares one only for a single SELECT or VALUES (no data-modifying WITH), psycopg sends
        it over the extended protocol (no second statement), and only ``max_rows`` rows are
        fetched. Values keep PostgreSQL's text form; NULL is None. Untrusted text must have
        passed :func:`single_statement`.
        """
        if self.in_transaction:
            raise TargetQueryError("a transaction is already open on the target session")
        self.rows(Q_BEGIN_READ_ONLY)
        self.rows(Q_ASK_MEMORY)
        cursor = self._conn.cursor(TEXT_CURSOR, row_factory=tuple_row)
        try:
            for info in postgres.types:  # every type psycopg would turn into a Python value
                cursor.adapters.register_loader(info.oid, TextLoader)
                if info.array_oid:
                    cursor.adapters.register_loader(info.array_oid, TextLoader)
            cursor.execute(_tagged(query))
            fetched = cursor.fetchmany(max_rows)
            names = tuple(column.name for column in cursor.description or ())
        except psycopg.Error as exc:
            error = self._error(exc)
            log.debug("target.statement_failed", sqlstate=exc.sqlstate)
            raise error from None
        finally:
            self.rollback()
            cursor.close()
        return names, [tuple(None if v is None else str(v) for v in row) for row in fetched]

    def rollback(self) -> None:
        """Roll back whatever transaction is open (no-op when idle or disconnected)."""
        if self._conn.closed or self._conn.broken or not self.in_transaction:
            return
        try:
            self._conn.execute(_tagged(sql.SQL(Q_ROLLBACK)))
        except psycopg.Error:
            log.warning("target.rollback_failed")
