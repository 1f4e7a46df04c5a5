"""Splitting workload files on ``;`` and recognising catalog housekeeping (pure, no I/O)."""

from __future__ import annotations

import pytest

from app.engine.advisor.workload import is_housekeeping, read_queries, split_statements
from app.engine.model import Query, QuerySource


def test_each_statement_is_one_call_from_a_file() -> None:
    text = "SELECT * FROM users WHERE id = $1;\nUPDATE users SET name = $2 WHERE id = $1;\n"
    assert read_queries(text) == [
        Query("SELECT * FROM users WHERE id = $1", calls=1, source=QuerySource.file),
        Query("UPDATE users SET name = $2 WHERE id = $1", calls=1, source=QuerySource.file),
    ]


def test_repeated_statements_add_up_in_first_seen_order() -> None:
    queries = read_queries("select 2; select 1; select 2;\n\nselect 2")
    assert [(q.text, q.calls) for q in queries] == [("select 2", 3), ("select 1", 1)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        (" ;; \n ; ", []),
        ("-- only a comment;\n/* and; another */", []),
        ("select 1", ["select 1"]),
        ("select 1;", ["select 1"]),
        ("select ';' as semi; select 2", ["select ';' as semi", "select 2"]),
        ("select 'it''s; fine'; select 3", ["select 'it''s; fine'", "select 3"]),
        ("select E'a\\'; b'; select 4", ["select E'a\\'; b'", "select 4"]),
        # Without the E prefix a backslash is an ordinary character.
        ("select 'a\\'; select 5", ["select 'a\\'", "select 5"]),
        ('select 1 as "x;y"; select 6', ['select 1 as "x;y"', "select 6"]),
        ('select 1 as "a""; b"; select 7', ['select 1 as "a""; b"', "select 7"]),
        (
            "select 1 -- trailing; comment\n; select 8",
            ["select 1 -- trailing; comment", "select 8"],
        ),
        (
            "select /* a; /* nested; */ b; */ 1; select 9",
            ["select /* a; /* nested; */ b; */ 1", "select 9"],
        ),
        ("select $$a;b$$; select 10", ["select $$a;b$$", "select 10"]),
        ("select $fn$ x; $$ y; $fn$; select 11", ["select $fn$ x; $$ y; $fn$", "select 11"]),
        # $1 is a parameter, not the start of a dollar quote.
        (
            "select * from t where a = $1 and b = $2; select 12",
            ["select * from t where a = $1 and b = $2", "select 12"],
        ),
        ("select $1;select $2", ["select $1", "select $2"]),
        # A $ inside an identifier starts nothing.
        ("select a$b$ from t; select 13", ["select a$b$ from t", "select 13"]),
        # An unterminated quote swallows the rest rather than splitting inside it.
        ("select 'open; select 14", ["select 'open; select 14"]),
        (
            "CREATE FUNCTION f() RETURNS int AS $b$ SELECT 1; SELECT 2 $b$ LANGUAGE sql; select 15",
            [
                "CREATE FUNCTION f() RETURNS int AS $b$ SELECT 1; SELECT 2 $b$ LANGUAGE sql",
                "select 15",
            ],
        ),
    ],
)
def test_split_statements(text: str, expected: list[str]) -> None:
    assert split_statements(text) == expected


def test_comments_before_a_statement_stay_with_it() -> None:
    assert split_statements("-- the slow one\nSELECT 1;") == ["-- the slow one\nSELECT 1"]


@pytest.mark.parametrize(
    ("text", "housekeeping"),
    [
        ("SELECT * FROM pg_stat_activity WHERE state = $1", True),
        (
            "SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON true",
            True,
        ),
        ("SELECT table_name FROM information_schema.tables WHERE table_schema = $1", True),
        ('SELECT * FROM "pg_catalog"."pg_locks"', True),
        ("SELECT * FROM pg_class, users", False),
        ("SELECT * FROM users JOIN pg_roles r ON r.rolname = users.name", False),
        ("SELECT * FROM users WHERE id = $1", False),
        ("SELECT * FROM public.pg_like_name WHERE id = $1", False),
        ("UPDATE accounts SET n = n + 1 WHERE id IN (SELECT oid FROM pg_class)", False),
        ("SELECT 1", False),  # no relation: left to the engine
        ("SELECT * FROM generate_series(1, 10)", False),
        ("SELECT * FROM (SELECT * FROM pg_class) AS sub", True),
        ("SELECT 'FROM users' FROM pg_settings", True),  # literals are not relations
        ("SELECT x FROM pg_class AS c, users u WHERE c.oid = u.id", False),
    ],
)
def test_is_housekeeping(text: str, housekeeping: bool) -> None:
    assert is_housekeeping(text) is housekeeping


@pytest.mark.parametrize(
    ("text", "housekeeping"),
    [
        ("SELECT pg_stat_statements_reset()", True),
        ("select pg_catalog.set_config($1, $2, $3)", True),
        ("SELECT version()", True),
        ("SELECT current_setting($1), pg_backend_pid()", True),
        ("SELECT 1", False),
        ("SELECT $1", False),
        ("SELECT now()", False),
        ("SELECT lower($1), pg_sleep($2)", False),
        ("SELECT (pg_backend_pid())", True),
    ],
)
def test_relationless_server_calls_are_housekeeping(text: str, housekeeping: bool) -> None:
    assert is_housekeeping(text) is housekeeping
