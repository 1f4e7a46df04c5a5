"""`/ask` on the target: one guard-checked SELECT, read-only, time-limited, row-capped."""

from __future__ import annotations

import time
from dataclasses import dataclass

import structlog

from app.adapters.errors import TargetQueryError
from app.adapters.target_pg.gate import Session, single_statement, untrusted
from app.adapters.target_pg.reach import outside_effects
from app.engine.sql import scrub_message

log = structlog.get_logger(__name__)

#: The query reads only, so it should never wait on a lock for long (DDL holding one).
LOCK_TIMEOUT_MS = 1_000


@dataclass(frozen=True, slots=True)
class Answer:
    """The rows an `/ask` query returned, ready to show."""

    columns: tuple[str, ...]
    #: Cells in PostgreSQL's text form ("NULL" for NULL), at most ``row_cap`` rows.
    rows: tuple[tuple[str, ...], ...]
    #: The query returned more than ``row_cap`` rows.
    truncated: bool
    elapsed_ms: float


def run_select(dsn: str, sql: str, *, row_cap: int = 50, timeout_ms: int = 5_000) -> Answer:
    """Run SQL that passed :func:`app.engine.guard.check_select` on the target (blocking).

    A fresh read-only session (``statement_timeout`` = ``timeout_ms``, short ``lock_timeout``)
    runs it inside ``BEGIN READ ONLY`` … ``ROLLBACK`` through a server-side cursor and fetches
    at most ``row_cap + 1`` rows. It is not run at all when it reaches a volatile or untrusted
    function (through a view, say: see :mod:`app.adapters.target_pg.reach`). Callers on an
    event loop use ``asyncio.to_thread``.

    Raises:
        TargetQueryError: the query failed; the message is safe to show (values it quoted
            are blanked), and a timeout says how long it was allowed.
        TargetUnavailable: the target cannot be reached.
        ValueError: ``row_cap`` or ``timeout_ms`` below 1.
    """
    if row_cap < 1:
        raise ValueError(f"row_cap must be at least 1, got {row_cap}")
    if timeout_ms < 1:
        raise ValueError(f"timeout_ms must be at least 1, got {timeout_ms}")
    try:
        statement = single_statement(sql)
    except ValueError as exc:
        raise TargetQueryError(f"the query was not run: {exc}") from None
    with Session.open(
        dsn,
        statement_timeout_ms=timeout_ms,
        lock_timeout_ms=min(LOCK_TIMEOUT_MS, timeout_ms),
        idle_in_transaction_timeout_ms=timeout_ms + 10_000,
    ) as session:
        refused = outside_effects(session, statement)
        if refused is not None:  # a view can hide what the guard cannot see in the text
            log.info("ask.refused_reach")
            raise TargetQueryError(f"the query was not run: {refused}")
        started = time.perf_counter()
        try:
            columns, rows = session.read_only_text(untrusted(statement), max_rows=row_cap + 1)
        except TargetQueryError as exc:
            log.info("ask.failed", sqlstate=exc.sqlstate, timed_out=exc.timed_out)
            raise _for_users(exc, timeout_ms) from None
        elapsed_ms = (time.perf_counter() - started) * 1000
    answer = Answer(
        columns=columns,
        rows=tuple(tuple("NULL" if v is None else v for v in row) for row in rows[:row_cap]),
        truncated=len(rows) > row_cap,
        elapsed_ms=elapsed_ms,
    )
    log.info(
        "ask.answered",
        columns=len(columns),
        rows=len(answer.rows),
        truncated=answer.truncated,
        ms=round(elapsed_ms, 1),
    )
    return answer


def _for_users(exc: TargetQueryError, timeout_ms: int) -> TargetQueryError:
    """The failure in words for an issue comment (no values from the data)."""
    if exc.timed_out:
        message = (
            f"the query took longer than {timeout_ms} ms and was stopped; "
            "narrow it down (a filter, a smaller time range, an aggregate) and ask again"
        )
    elif exc.lock_timeout:
        message = (
            "the query waited too long for a lock another session holds (a migration?); "
            "try again later"
        )
    else:
        message = f"the query failed on the database: {scrub_message(exc.message)}"
    return TargetQueryError(message, sqlstate=exc.sqlstate)
