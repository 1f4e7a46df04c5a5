"""Long-running statements in pg_stat_activity, and the target's configured statement_timeout."""

from __future__ import annotations

from typing import LiteralString

import structlog

from app.adapters.target_pg.gate import APPLICATION_NAME, TAG, Session
from app.engine.advisor.sightings import Running
from app.engine.sql import MAX_STATEMENT_CHARS

log = structlog.get_logger(__name__)

#: At most this many statements are read per sample.
MAX_ROWS = 50

# Other client backends of this database running one statement for at least min_ms: not
# ours (our application name, our tag, our own pid), not idle, not autovacuum, walsenders or
# other background workers. The text is read up to max_chars (a longer one is not analysed),
# and a text filling track_activity_query_size was cut by the server: it is flagged, since a
# cut statement is another statement.
Q_ACTIVITY: LiteralString = """
SELECT
    a.pid,
    a.query_start::text AS started,
    (extract(epoch FROM pg_catalog.clock_timestamp() - a.query_start) * 1000)::float8
        AS running_ms,
    pg_catalog.left(a.query, %(max_chars)s) AS query,
    pg_catalog.octet_length(a.query) >= t.bytes - 1 AS cut
FROM pg_catalog.pg_stat_activity AS a
CROSS JOIN (
    SELECT s.setting::int AS bytes
    FROM pg_catalog.pg_settings AS s
    WHERE s.name = 'track_activity_query_size'
) AS t
WHERE a.state = 'active'
    AND a.backend_type = 'client backend'
    AND a.datname = pg_catalog.current_database()
    AND a.pid <> pg_catalog.pg_backend_pid()
    AND a.application_name IS DISTINCT FROM %(application_name)s
    AND pg_catalog.strpos(a.query, %(tag)s) = 0
    AND a.query_start <= pg_catalog.clock_timestamp() - pg_catalog.make_interval(
        secs => %(min_ms)s / 1000.0
    )
ORDER BY
    a.query_start,
    a.pid
LIMIT %(limit)s
"""

# The value a new session of this role in this database starts with (postgresql.conf, ALTER
# DATABASE / ROLE ... SET): ours is set by the gate, so `setting` would be our own.
Q_STATEMENT_TIMEOUT: LiteralString = """
SELECT
    s.reset_val::float8 AS timeout_ms
FROM pg_catalog.pg_settings AS s
WHERE s.name = 'statement_timeout'
"""


def read_activity(session: Session, *, min_ms: float, limit: int = MAX_ROWS) -> list[Running]:
    """Statements of other sessions of this database running for at least ``min_ms``.

    Texts the server cut at ``track_activity_query_size`` are left out (and counted in the
    log): raise that setting to see long statements. Without ``pg_read_all_stats`` other
    roles' texts read ``<insufficient privilege>`` and are left out by the engine.
    """
    rows = session.rows(
        Q_ACTIVITY,
        {
            "max_chars": MAX_STATEMENT_CHARS + 1,
            "application_name": APPLICATION_NAME,
            "tag": TAG,
            "min_ms": float(min_ms),
            "limit": int(limit),
        },
    )
    found = [
        Running(str(r["query"]), int(r["pid"]), str(r["started"]), float(r["running_ms"]))
        for r in rows
        if r["query"] and not r["cut"]
    ]
    cut = sum(1 for r in rows if r["cut"])
    log.info("target.activity", running=len(found), cut=cut)
    return found


def statement_timeout_ms(session: Session) -> float:
    """The target's configured ``statement_timeout`` in ms as our role sees it (0: none)."""
    return float(session.one(Q_STATEMENT_TIMEOUT)["timeout_ms"])
