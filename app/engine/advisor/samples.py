"""Captured parameter values from PostgreSQL log lines, keyed by the normalised statement."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Mapping, Sequence

from app.engine.sql import param_count, parameterize

#: At most this many distinct value sets are kept per statement.
MAX_PER_STATEMENT = 3

# stderr log: "<prefix>LOG:  duration: 1.2 ms  execute S_1: SELECT …" and, for the extended
# protocol, a following "<prefix>DETAIL:  parameters: $1 = '42', $2 = NULL".
_SEVERITY = re.compile(r"\b(LOG|DETAIL|STATEMENT|ERROR|WARNING|NOTICE|HINT|CONTEXT|FATAL):  ")
_STATEMENT = re.compile(
    r"^(?:duration: [\d.]+ ms\s+)?(?:(?:execute|bind) [^:]*|statement): (?P<sql>.*)$", re.DOTALL
)
_PARAMETER = re.compile(r"\$(\d+) = (NULL|'(?:[^']|'')*')")

Values = tuple[str | None, ...]


def key(text: str) -> str:
    """The form statements are matched in: literals as ``$n``, whitespace collapsed."""
    return " ".join(parameterize(text)[0].split())


# csvlog: a line opens with the log time, then user and database (quoted or empty).
_CSVLOG = re.compile(r'^\d{4}-\d\d-\d\d [\d:.]+ [^,]*,(?:"|,)')
# csvlog columns (PostgreSQL 13+; 12 lacks the last three, which are not read).
_CSV_SEVERITY, _CSV_MESSAGE, _CSV_DETAIL, _CSV_QUERY = 11, 13, 14, 19


def _csv_messages(text: str) -> Iterator[tuple[str, str]]:
    """(severity, message) pairs of csvlog records (quoted fields may span lines)."""
    for record in csv.reader(io.StringIO(text)):
        if len(record) <= _CSV_QUERY:
            continue
        yield record[_CSV_SEVERITY], record[_CSV_MESSAGE]
        if record[_CSV_DETAIL]:
            yield "DETAIL", record[_CSV_DETAIL]
        if record[_CSV_QUERY]:
            yield "STATEMENT", record[_CSV_QUERY]


def _json_messages(line: str) -> Iterator[tuple[str, str]]:
    """(severity, message) pairs of one jsonlog line (nothing for a broken one)."""
    try:
        entry = json.loads(line)
    except ValueError:
        return
    if isinstance(entry, dict):
        yield str(entry.get("error_severity", "")), str(entry.get("message", ""))
        if entry.get("detail"):
            yield "DETAIL", str(entry["detail"])
        if entry.get("statement"):
            yield "STATEMENT", str(entry["statement"])


def messages(text: str) -> Iterator[tuple[str, str]]:
    """(severity, message) pairs from stderr-format, jsonlog or csvlog lines.

    A message's DETAIL and its STATEMENT (the statement an error concerns) follow it.
    """
    first = next((line for line in text.splitlines() if line.strip()), "")
    if _CSVLOG.match(first):
        yield from _csv_messages(text)
        return
    severity, body = "", list[str]()
    for line in text.splitlines():
        if line.startswith("{"):
            yield from _json_messages(line)
            continue
        found = _SEVERITY.search(line)
        if found:
            if severity:
                yield severity, "\n".join(body)
            severity, body = found.group(1), [line[found.end() :]]
        elif severity and line.startswith(("\t", " ")):
            body.append(line.strip())
    if severity:
        yield severity, "\n".join(body)


def _parameters(detail: str) -> dict[int, str | None]:
    if not detail.startswith("parameters: "):
        return {}
    return {
        int(n): None if v == "NULL" else v[1:-1].replace("''", "'")
        for n, v in _PARAMETER.findall(detail)
    }


def read_log_samples(text: str) -> dict[str, list[Values]]:
    """Statement key → distinct captured values for its ``$1 … $n``, in order of appearance.

    Understands what ``log_min_duration_statement`` and ``log_statement`` write, in the
    stderr and jsonlog formats: statements with literal values (each literal becomes ``$n``
    and its value a sample) and extended-protocol executions followed by their
    ``parameters:`` detail line. csvlog records are read too.

    >>> log = '''2026-11-01 10:00:00 UTC [7] LOG:  duration: 3.1 ms  execute S_1: SELECT *
    ... \tFROM t WHERE id = $1
    ... 2026-11-01 10:00:00 UTC [7] DETAIL:  parameters: $1 = '42'
    ... 2026-11-01 10:00:01 UTC [7] LOG:  statement: SELECT * FROM t WHERE id = 7'''
    >>> read_log_samples(log)
    {'SELECT * FROM t WHERE id = $1': [('42',), ('7',)]}
    """
    found: dict[str, list[Values]] = {}
    found_messages = list(messages(text))
    for i, (severity, message) in enumerate(found_messages):
        match = _STATEMENT.match(message) if severity == "LOG" else None
        if match is None:
            continue
        sql = match.group("sql").strip().rstrip(";")
        normalised, literals = parameterize(sql)
        given = param_count(sql)
        bound: dict[int, str | None] = {}
        if given:
            following = found_messages[i + 1] if i + 1 < len(found_messages) else ("", "")
            bound = _parameters(following[1]) if following[0] == "DETAIL" else {}
            if len(bound) < given:
                continue  # placeholders without their values: nothing to learn
        values = tuple(bound.get(n) for n in range(1, given + 1)) + literals
        samples = found.setdefault(" ".join(normalised.split()), [])
        if values not in samples and len(samples) < MAX_PER_STATEMENT:
            samples.append(values)
    return found


def captured(samples: Mapping[str, Sequence[Values]], text: str, params: int) -> list[Values]:
    """The captured value sets for a workload statement with ``params`` placeholders."""
    return [v for v in samples.get(key(text), ()) if len(v) == params]
