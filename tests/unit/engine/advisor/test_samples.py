"""Captured values from PostgreSQL logs: stderr and jsonlog, extended protocol and literals."""

from __future__ import annotations

import json

from app.engine.advisor.samples import MAX_PER_STATEMENT, captured, key, read_log_samples

STDERR = """\
2026-11-01 10:00:00.001 UTC [71] app@shop LOG:  duration: 3.105 ms  execute S_1: SELECT id
\tFROM orders
\tWHERE customer_id = $1 AND status = $2
2026-11-01 10:00:00.001 UTC [71] app@shop DETAIL:  parameters: $1 = '42', $2 = 'it''s'
2026-11-01 10:00:00.500 UTC [72] app@shop LOG:  duration: 1.0 ms  execute <unnamed>: SELECT id FROM orders WHERE customer_id = $1 AND status = $2
2026-11-01 10:00:00.500 UTC [72] app@shop DETAIL:  parameters: $1 = '7', $2 = NULL
2026-11-01 10:00:01.000 UTC [73] app@shop LOG:  statement: SELECT * FROM users WHERE email = 'a@b.c' LIMIT 5;
2026-11-01 10:00:02.000 UTC [74] app@shop LOG:  duration: 9.0 ms  execute S_2: SELECT * FROM t WHERE a = $1
2026-11-01 10:00:03.000 UTC [75] app@shop LOG:  checkpoint starting: time
"""  # noqa: E501


def test_stderr_log_lines_give_values_per_statement() -> None:
    samples = read_log_samples(STDERR)
    assert samples == {
        "SELECT id FROM orders WHERE customer_id = $1 AND status = $2": [
            ("42", "it's"),
            ("7", None),
        ],
        "SELECT * FROM users WHERE email = $1 LIMIT $2": [("a@b.c", "5")],
    }  # the execution without its parameters line teaches nothing and is left out


def test_jsonlog_lines_are_read_too() -> None:
    lines = [
        {"error_severity": "LOG", "message": "execute S_1: SELECT id FROM t WHERE a = $1",
         "detail": "parameters: $1 = '3'"},
        {"error_severity": "LOG", "message": "statement: SELECT id FROM t WHERE a = 4"},
    ]  # fmt: skip
    text = "\n".join(json.dumps(line) for line in lines)
    assert read_log_samples(text) == {"SELECT id FROM t WHERE a = $1": [("3",), ("4",)]}


def test_distinct_values_are_capped_per_statement() -> None:
    text = "\n".join(f"x LOG:  statement: SELECT * FROM t WHERE a = {n}" for n in range(9))
    (values,) = read_log_samples(text).values()
    assert values == [("0",), ("1",), ("2",)] and len(values) == MAX_PER_STATEMENT


def test_workload_statements_match_their_samples_by_shape() -> None:
    samples = read_log_samples(STDERR)
    text = "SELECT id FROM orders  WHERE customer_id = $1\n AND status = $2"
    assert key(text) == "SELECT id FROM orders WHERE customer_id = $1 AND status = $2"
    assert captured(samples, text, 2) == [("42", "it's"), ("7", None)]
    assert captured(samples, text, 3) == []  # a different statement after all


def test_csvlog_records_are_read_too() -> None:
    header = (
        '2026-11-01 10:00:00.001 UTC,"app","shop",71,"[local]",s1,1,"SELECT",'
        "2026-11-01 09:00:00 UTC,3/7,0,"
    )
    tail = ',,,,,,,,,"psql","client backend",,0\n'
    text = (
        header + 'LOG,00000,"duration: 2.0 ms  execute S_1: SELECT id\nFROM t WHERE a = $1",'
        '"parameters: $1 = \'3\'"' + tail
        + header + 'LOG,00000,"statement: SELECT id FROM t WHERE a = 4",' + tail
    )  # fmt: skip
    assert read_log_samples(text) == {"SELECT id FROM t WHERE a = $1": [("3",), ("4",)]}
