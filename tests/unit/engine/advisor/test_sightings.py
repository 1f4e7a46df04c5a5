"""Slow statements from activity samples and timeout logs: normalised, bounded, deduplicated."""

from __future__ import annotations

import csv
import io
import json

from app.engine.advisor.sightings import (
    OWN_TAG,
    Running,
    from_activity,
    merge,
    merge_samples,
    normalised,
    read_timeout_log,
    usable,
)
from app.engine.model import Query, QuerySource
from app.engine.sql import MAX_STATEMENT_CHARS

STDERR = """\
2026-11-01 10:00:00.001 UTC [71] app@shop LOG:  duration: 3.105 ms  statement: SELECT 1
2026-11-01 10:00:30.001 UTC [72] app@shop ERROR:  canceling statement due to statement timeout
2026-11-01 10:00:30.001 UTC [72] app@shop STATEMENT:  SELECT o.*
\tFROM orders AS o
\tWHERE o.customer_id = 42 AND o.note = 'it''s'
2026-11-01 10:00:31.000 UTC [73] app@shop ERROR:  canceling statement due to statement timeout
2026-11-01 10:00:31.000 UTC [73] app@shop CONTEXT:  while scanning
2026-11-01 10:00:31.000 UTC [73] app@shop STATEMENT:  SELECT o.* FROM orders AS o WHERE o.customer_id = $1 AND o.note = $2
2026-11-01 10:00:32.000 UTC [74] app@shop ERROR:  canceling statement due to lock timeout
2026-11-01 10:00:32.000 UTC [74] app@shop STATEMENT:  SELECT * FROM locked WHERE id = 1
2026-11-01 10:00:33.000 UTC [75] app@shop ERROR:  canceling statement due to statement timeout
2026-11-01 10:00:33.000 UTC [75] app@shop STATEMENT:  /* dbarchitect */
\tEXPLAIN ANALYZE SELECT * FROM orders
2026-11-01 10:00:34.000 UTC [76] app@shop ERROR:  canceling statement due to statement timeout
2026-11-01 10:00:34.000 UTC [76] app@shop STATEMENT:  VACUUM FULL orders
2026-11-01 10:00:35.000 UTC [77] app@shop ERROR:  canceling statement due to statement timeout
2026-11-01 10:00:35.000 UTC [77] app@shop STATEMENT:  SELECT * FROM orders WHERE customer_id = 7
"""  # noqa: E501


def test_stderr_timeouts_become_workload_statements_with_their_values() -> None:
    queries, samples = read_timeout_log(STDERR, timeout_ms=30_000)
    by_text = {q.text: q for q in queries}
    both = "SELECT o.* FROM orders AS o WHERE o.customer_id = $1 AND o.note = $2"
    assert set(by_text) == {both, "SELECT * FROM orders WHERE customer_id = $1"}
    # the literal and the placeholder forms are one statement, cancelled twice
    assert (by_text[both].calls, by_text[both].total_ms) == (2, 60_000.0)
    assert all(q.source is QuerySource.timeout_log for q in queries)
    assert queries[0].text == both  # heaviest first
    # literal values are kept apart, as captured samples, never in the text
    assert samples == {
        both: [("42", "it's")],
        "SELECT * FROM orders WHERE customer_id = $1": [("7",)],
    }
    assert all("42" not in q.text and "it" not in q.text.split("=")[-1] for q in queries)


def test_lock_timeouts_our_own_and_utility_statements_are_left_out() -> None:
    texts = " ".join(q.text for q in read_timeout_log(STDERR)[0])
    assert "locked" not in texts and "EXPLAIN" not in texts and "VACUUM" not in texts


def test_without_a_known_timeout_the_duration_is_unknown() -> None:
    queries, _ = read_timeout_log(STDERR)
    assert {q.total_ms for q in queries} == {0.0}


def test_jsonlog_timeouts() -> None:
    lines = [
        {"error_severity": "ERROR", "state_code": "57014",
         "message": "canceling statement due to statement timeout",
         "statement": "SELECT * FROM big WHERE a = 5"},
        {"error_severity": "LOG", "message": "statement: SELECT * FROM big WHERE a = 6"},
        "not json {",
    ]  # fmt: skip
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
    queries, samples = read_timeout_log(text, timeout_ms=5000)
    assert [(q.text, q.calls, q.total_ms) for q in queries] == [
        ("SELECT * FROM big WHERE a = $1", 1, 5000.0)
    ]
    assert samples == {"SELECT * FROM big WHERE a = $1": [("5",)]}


def _csvlog(*records: tuple[str, str, str, str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    for severity, message, detail, query in records:
        # PostgreSQL quotes the user and database names, never the time.
        out.write('2026-11-01 10:00:00.001 UTC,"app","shop",')
        row = ["71", "[local]", "s1", "1", "SELECT", "2026-11-01 09:00:00 UTC", "3/7", "0",
               severity, "57014", message, detail, "", "", "", "", query, "", "", "psql",
               "client backend", "", "0"]  # fmt: skip
        writer.writerow(row)
    return out.getvalue()


def test_csvlog_timeouts_with_multi_line_statements() -> None:
    text = _csvlog(
        ("LOG", "duration: 1.0 ms  statement: SELECT 1", "", ""),
        (
            "ERROR",
            "canceling statement due to statement timeout",
            "",
            'SELECT *\nFROM "Big" AS b,\n  other\nWHERE b.a = 5 AND other.x = \'a,"b\'',
        ),
    )
    queries, samples = read_timeout_log(text)
    assert [q.text for q in queries] == [
        'SELECT * FROM "Big" AS b, other WHERE b.a = $1 AND other.x = $2'
    ]
    assert list(samples.values()) == [[("5", 'a,"b')]]


def test_activity_counts_each_execution_once_with_its_longest_time() -> None:
    rows = [
        Running("SELECT * FROM t WHERE a = 5", 7, "10:00:00", 1200.0),
        Running("SELECT * FROM t WHERE a = 5", 7, "10:00:00", 3400.0),  # same execution, later
        Running("SELECT  *  FROM t WHERE a = 9", 8, "10:00:01", 1000.0),  # same statement
        Running("SELECT * FROM t WHERE a = 5", 7, "10:05:00", 1500.0),  # pid 7 again, later
        Running("SELECT * FROM u WHERE b = $1", 9, "10:00:00", 8000.0),
        Running("<insufficient privilege>", 10, "10:00:00", 9000.0),
        Running(f"{OWN_TAG}\nSELECT * FROM t", 11, "10:00:00", 9000.0),
        Running("SELECT pg_sleep(10)", 12, "10:00:00", 9000.0),
        Running("SELECT 1; DELETE FROM t", 13, "10:00:00", 9000.0),
    ]
    queries, samples = from_activity(rows)
    assert [(q.text, q.calls, q.total_ms) for q in queries] == [
        ("SELECT * FROM u WHERE b = $1", 1, 8000.0),
        ("SELECT * FROM t WHERE a = $1", 3, 5900.0),
    ]
    assert all(q.source is QuerySource.activity for q in queries)
    assert samples == {"SELECT * FROM t WHERE a = $1": [("5",), ("9",)]}


def test_over_long_text_is_dropped_not_cut() -> None:
    long = "SELECT * FROM t WHERE a IN (" + ", ".join(["1"] * MAX_STATEMENT_CHARS) + ")"
    assert usable(long) is None
    assert from_activity([Running(long, 1, "t", 5000.0)]) == ([], {})


def test_normalised_rows_carry_no_literal_values() -> None:
    rows = normalised(
        [
            Running("SELECT * FROM users WHERE email = 'ann@example.com'", 3, "t", 2000.0),
            Running("COPY users TO STDOUT", 4, "t", 2000.0),
        ]
    )
    assert rows == [Running("SELECT * FROM users WHERE email = $1", 3, "t", 2000.0)]


def test_merge_adds_only_what_the_workload_lacks_and_keeps_the_heavier_sighting() -> None:
    workload = [Query("SELECT * FROM t WHERE a = $1", calls=50, total_ms=10.0,
                      source=QuerySource.pg_stat_statements)]  # fmt: skip
    found = [
        Query("SELECT  * FROM t WHERE a = $1", calls=1, total_ms=9e5, source=QuerySource.activity),
        Query("SELECT * FROM u WHERE b = $1", calls=1, total_ms=2e3, source=QuerySource.activity),
        Query("SELECT * FROM u WHERE b = $1", calls=3, total_ms=90000.0,
              source=QuerySource.timeout_log),
    ]  # fmt: skip
    merged = merge(workload, found)
    assert merged[0] is workload[0]
    assert [(q.text, q.source) for q in merged[1:]] == [
        ("SELECT * FROM u WHERE b = $1", QuerySource.timeout_log)
    ]


def test_merge_samples_is_bounded() -> None:
    merged = merge_samples({"k": [("1",), ("2",)]}, {"k": [("2",), ("3",), ("4",)]})
    assert merged == {"k": [("1",), ("2",), ("3",)]}
