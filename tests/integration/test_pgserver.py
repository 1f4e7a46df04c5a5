"""The throwaway servers every other integration test stands on: PostgreSQL 18 and 15, Redis."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
import redis

from app.adapters.pgserver import EmbeddedPostgres, PgServer, PgServerError, database_name

STATEMENTS_OF_THIS_DB = """
SELECT query, calls
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND query LIKE 'SELECT count(*) FROM probe%'
"""


def _setting(dsn: str, name: str) -> str:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT current_setting(%s)", (name,)).fetchone()
    assert row is not None
    return str(row[0])


def test_pg18_is_postgresql_18(pg18: PgServer) -> None:
    assert pg18.version_num // 10000 == 18


def test_pg18_records_normalised_statements(fresh_db18: str) -> None:
    assert "pg_stat_statements" in _setting(fresh_db18, "shared_preload_libraries")
    assert _setting(fresh_db18, "pg_stat_statements.track") == "all"
    with psycopg.connect(fresh_db18, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        conn.execute("CREATE TABLE probe (id int)")
        for value in (1, 2, 3):
            conn.execute("SELECT count(*) FROM probe WHERE id = %s", (value,))
        rows = conn.execute(STATEMENTS_OF_THIS_DB).fetchall()
    assert rows == [("SELECT count(*) FROM probe WHERE id = $1", 3)]


def test_pg18_has_pgvector(fresh_db18: str) -> None:
    with psycopg.connect(fresh_db18, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION vector")
        row = conn.execute("SELECT '[1,2,3]'::vector <-> '[1,2,4]'::vector").fetchone()
    assert row == (1.0,)


def test_pg15_is_postgresql_15_with_pg_stat_statements(pg15: PgServer, fresh_db15: str) -> None:
    assert pg15.version_num // 10000 == 15
    assert "pg_stat_statements" in _setting(fresh_db15, "shared_preload_libraries")


def test_pg15_plans_with_a_hypothetical_index(fresh_db15: str) -> None:
    with psycopg.connect(fresh_db15, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION hypopg")
        conn.execute(
            "CREATE TABLE orders AS "
            "SELECT g AS id, g % 1000 AS customer_id FROM generate_series(1, 20000) g"
        )
        conn.execute("ANALYZE orders")
        hypothetical = conn.execute(
            "SELECT indexname FROM hypopg_create_index('CREATE INDEX ON orders (customer_id)')"
        ).fetchone()
        plan = conn.execute("EXPLAIN SELECT * FROM orders WHERE customer_id = 7").fetchall()
    assert hypothetical is not None
    assert "customer_id" in hypothetical[0]
    assert hypothetical[0] in "\n".join(line for (line,) in plan)


def test_redis_answers_ping_on_a_private_port(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url) as client:
        assert client.ping()
        assert client.connection_pool.connection_kwargs["port"] != 6379


def test_create_database_gives_isolated_empty_databases(pg18: PgServer) -> None:
    first = pg18.create_database("isolation_a")
    second = pg18.create_database("isolation_b")
    with psycopg.connect(first, autocommit=True) as conn:
        conn.execute("CREATE TABLE only_in_a (id int)")
    with psycopg.connect(second) as conn:
        assert conn.execute("SELECT to_regclass('only_in_a')").fetchone() == (None,)

    again = pg18.create_database("isolation_a")

    assert again == first
    with psycopg.connect(again) as conn:
        assert conn.execute("SELECT to_regclass('only_in_a')").fetchone() == (None,)


def test_fresh_database_is_named_after_the_test(fresh_db18: str) -> None:
    with psycopg.connect(fresh_db18) as conn:
        row = conn.execute("SELECT current_database()").fetchone()
    assert row == (database_name("test_fresh_database_is_named_after_the_test"),)


def test_a_data_directory_survives_a_restart(server_dir: Path) -> None:
    """``make run`` keeps the store's data directory between runs."""
    with (
        EmbeddedPostgres(server_dir) as server,
        psycopg.connect(server.dsn(), autocommit=True) as conn,
    ):
        conn.execute("CREATE TABLE kept (id int)")
        conn.execute("INSERT INTO kept VALUES (1)")

    with EmbeddedPostgres(server_dir) as server, psycopg.connect(server.dsn()) as conn:
        assert conn.execute("SELECT id FROM kept").fetchall() == [(1,)]


def test_a_failed_start_reports_the_server_log(server_dir: Path) -> None:
    server = EmbeddedPostgres(server_dir, fast=True, settings={"shared_buffers": "lots"})

    with pytest.raises(PgServerError, match=r"(?s)failed to start.*shared_buffers"):
        server.start()

    assert not server.running
