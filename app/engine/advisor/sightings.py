"""Slow statements pg_stat_statements never records: seen running, or cancelled by a timeout.

A statement cancelled by ``statement_timeout`` never reaches pg_stat_statements, and those are
the statements a team most needs fixed. They are found two ways and enter the workload like
any other statement, marked with where they came from:

- running in ``pg_stat_activity`` for longer than a threshold (sampled during the audit and,
  in the App, every minute between audits): each execution (backend pid + start time) counts
  once, with the longest time it was seen running as a lower bound of its duration;
- ``canceling statement due to statement timeout`` errors in a supplied log, with the
  STATEMENT line that follows them; the duration is at least the timeout, when it is known.

The text is untrusted: it is cut to nothing when it is too long (a cut statement would be
another statement), normalised to ``$n`` placeholders so no literal value is kept in the
workload or the report, and our own tagged statements and housekeeping are left out. The
literal values are returned separately, as captured samples the proof may run them with.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from app.engine.advisor.samples import MAX_PER_STATEMENT, Values, key, messages
from app.engine.advisor.workload import is_housekeeping, split_statements
from app.engine.model import Query, QuerySource
from app.engine.sql import MAX_STATEMENT_CHARS, param_count, parameterize

#: Our own statements carry this comment (``app.adapters.target_pg.TAG``).
OWN_TAG = "/* dbarchitect */"
TIMEOUT_MESSAGE = "canceling statement due to statement timeout"
#: Statements whose first keyword can use an index (comments and parentheses skipped).
_INDEXABLE = re.compile(
    r"^(\s|/\*.*?\*/|--[^\n]*\n|\()*(select|with|insert|update|delete|merge|values|table)\b",
    re.IGNORECASE | re.DOTALL,
)

Samples = dict[str, list[Values]]


@dataclass(frozen=True, slots=True)
class Running:
    """One row of pg_stat_activity: a statement seen running."""

    text: str
    pid: int
    #: ``query_start``, as text: with ``pid`` it names one execution.
    started: str
    running_ms: float


def usable(text: str) -> str | None:
    """The statement as it will be audited, or None when it is not workload.

    None for empty, over-long (``MAX_STATEMENT_CHARS``), our own tagged, catalog-only,
    several-at-once or non-indexable statements (utility commands, ``<insufficient
    privilege>``).

    >>> usable("  SELECT * FROM t WHERE a = 1; ")
    'SELECT * FROM t WHERE a = 1'
    >>> usable("VACUUM t") is None
    True
    """
    text = text.strip().rstrip(";").strip()
    if not text or len(text) > MAX_STATEMENT_CHARS or OWN_TAG in text:
        return None
    if not _INDEXABLE.match(text) or is_housekeeping(text):
        return None
    return text if len(split_statements(text)) == 1 else None


def _normalised(text: str) -> tuple[str, Values]:
    """``$n`` text (whitespace collapsed) and the values of the literals it replaced."""
    normal, literals = parameterize(text)
    return " ".join(normal.split()), literals


def normalised(rows: Iterable[Running]) -> list[Running]:
    """The workload rows, their texts normalised (no literal values): what may be stored.

    >>> normalised([Running("SELECT * FROM t WHERE mail = 'a@b.c'", 7, "t0", 1500.0),
    ...             Running("SHOW work_mem", 8, "t1", 1500.0)])[0].text
    'SELECT * FROM t WHERE mail = $1'
    """
    out = []
    for row in rows:
        text = usable(row.text)
        if text is not None:
            out.append(Running(_normalised(text)[0], row.pid, row.started, row.running_ms))
    return out


def _add_sample(samples: Samples, text: str, values: Values, given: int) -> None:
    """Keep literal values only for statements without placeholders of their own."""
    if not values or given:
        return
    found = samples.setdefault(key(text), [])
    if values not in found and len(found) < MAX_PER_STATEMENT:
        found.append(values)


def from_activity(rows: Iterable[Running]) -> tuple[list[Query], Samples]:
    """Workload statements from activity samples, heaviest first, and their literal values.

    Each execution counts once (``calls``), with the longest time it was seen running;
    ``total_ms`` sums those lower bounds.

    >>> rows = [Running("SELECT * FROM t WHERE a = 5", 7, "t0", 1200.0),
    ...         Running("SELECT * FROM t WHERE a = 5", 7, "t0", 3400.0),
    ...         Running("SELECT * FROM t WHERE a = 6", 8, "t1", 1000.0)]
    >>> [(q.text, q.calls, q.total_ms, q.source.value) for q in from_activity(rows)[0]]
    [('SELECT * FROM t WHERE a = $1', 2, 4400.0, 'activity')]
    """
    longest: dict[tuple[int, str, str], float] = {}
    samples: Samples = {}
    for row in rows:
        text = usable(row.text)
        if text is None:
            continue
        normal, values = _normalised(text)
        _add_sample(samples, normal, values, param_count(text))
        execution = (row.pid, row.started, normal)
        longest[execution] = max(longest.get(execution, 0.0), float(row.running_ms))
    return _queries(
        ((normal, ms) for (_, _, normal), ms in longest.items()), QuerySource.activity
    ), samples


def _queries(seen: Iterable[tuple[str, float]], source: QuerySource) -> list[Query]:
    """One Query per text: executions as calls, summed lower bounds, heaviest first."""
    calls: dict[str, int] = {}
    total: dict[str, float] = {}
    for text, ms in seen:
        calls[text] = calls.get(text, 0) + 1
        total[text] = total.get(text, 0.0) + ms
    queries = [Query(text=t, calls=c, total_ms=total[t], source=source) for t, c in calls.items()]
    return sorted(queries, key=lambda q: (-q.total_ms, -q.calls, q.text))


def read_timeout_log(text: str, *, timeout_ms: float = 0.0) -> tuple[list[Query], Samples]:
    """Statements cancelled by ``statement_timeout`` in a log, and their literal values.

    Reads the stderr, jsonlog and csvlog formats: the ERROR ``canceling statement due to
    statement timeout`` and the STATEMENT that follows it. Each cancellation counts as one
    call lasting at least ``timeout_ms`` (0 when the timeout is not known).

    >>> log = '''2026-11-01 10:00:00 UTC [7] ERROR:  canceling statement due to statement timeout
    ... 2026-11-01 10:00:00 UTC [7] STATEMENT:  SELECT * FROM t
    ... \\tWHERE a = 5'''
    >>> [(q.text, q.calls, q.source.value) for q in read_timeout_log(log)[0]]
    [('SELECT * FROM t WHERE a = $1', 1, 'timeout log')]
    """
    found = list(messages(text))
    seen: list[tuple[str, float]] = []
    samples: Samples = {}
    for i, (severity, message) in enumerate(found):
        if severity != "ERROR" or message.strip() != TIMEOUT_MESSAGE:
            continue
        following = found[i + 1 : i + 3]  # a DETAIL may come first
        statement = next((m for s, m in following if s == "STATEMENT"), None)
        usable_text = usable(statement) if statement is not None else None
        if usable_text is None:
            continue
        normal, values = _normalised(usable_text)
        _add_sample(samples, normal, values, param_count(usable_text))
        seen.append((normal, float(timeout_ms)))
    return _queries(seen, QuerySource.timeout_log), samples


def merge(workload: Sequence[Query], found: Iterable[Query]) -> list[Query]:
    """The workload plus the statements it lacks (matched in normalised form).

    A statement found twice (in activity and in the log) is kept once, with the larger
    weight; one the workload already has stays as the workload has it.
    """
    have = {key(q.text) for q in workload}
    extra: dict[str, Query] = {}
    for query in found:
        k = key(query.text)
        if k in have:
            continue
        before = extra.get(k)
        if before is None or (query.total_ms, query.calls) > (before.total_ms, before.calls):
            extra[k] = query
    return [*workload, *extra.values()]


def merge_samples(*many: Mapping[str, Sequence[Values]]) -> Samples:
    """Captured value sets from several sources, at most ``MAX_PER_STATEMENT`` per statement."""
    out: Samples = {}
    for samples in many:
        for k, sets in samples.items():
            have = out.setdefault(k, [])
            for values in sets:
                if values not in have and len(have) < MAX_PER_STATEMENT:
                    have.append(values)
    return out


def sources(queries: Iterable[Query]) -> dict[str, int]:
    """How many statements came from each source, e.g. ``{"pg_stat_statements": 40}``."""
    out: dict[str, int] = {}
    for query in queries:
        out[query.source.value] = out.get(query.source.value, 0) + 1
    return out
