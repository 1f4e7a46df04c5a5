"""`/ask` on a real PostgreSQL 15: the guard and the read-only runner together."""

from __future__ import annotations

import psycopg
import pytest

from app.adapters.errors import TargetQueryError
from app.adapters.target_pg import Target
from app.adapters.target_pg.ask import run_select
from app.engine.guard import UnsafeSql, allowed_from, check_select

SCHEMA = """
CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL, email text);
CREATE TABLE orders (
    id bigint PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),
    status text NOT NULL,
    total numeric(10, 2) NOT NULL,
    created_at timestamptz NOT NULL,
    data jsonb,
    tags text[]
);
INSERT INTO customers
    SELECT i, 'customer ' || i, CASE WHEN i % 2 = 0 THEN 'c' || i || '@example.com' END
    FROM generate_series(1, 20) AS i;
INSERT INTO orders
    SELECT i, 1 + i % 20, CASE WHEN i % 3 = 0 THEN 'paid' ELSE 'open' END, i * 1.5,
           timestamptz '2025-01-01 00:00:00+00' + i * interval '1 hour',
           jsonb_build_object('items', jsonb_build_array(i, i + 1)), ARRAY['a|b', 'c']
    FROM generate_series(1, 200) AS i;
ANALYZE;
"""


@pytest.fixture
def shop(fresh_db15: str) -> str:
    with psycopg.connect(fresh_db15, autocommit=True) as conn:
        conn.execute(SCHEMA)
    return fresh_db15


def count_orders(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM orders").fetchone()
    assert row is not None
    return int(row[0])


def test_an_answer_is_capped_and_says_it_was_truncated(shop: str) -> None:
    answer = run_select(
        shop,
        "SELECT id, status, total, created_at, data, tags, NULL::text AS nothing "
        "FROM orders ORDER BY id",
        row_cap=5,
    )
    assert answer.columns == ("id", "status", "total", "created_at", "data", "tags", "nothing")
    assert answer.truncated is True
    assert len(answer.rows) == 5
    # PostgreSQL's own text form, whatever the type; NULL spelled out.
    assert answer.rows[0] == (
        "1",
        "open",
        "1.50",
        "2025-01-01 01:00:00+00",
        '{"items": [1, 2]}',
        "{a|b,c}",
        "NULL",
    )
    assert answer.elapsed_ms > 0


def test_an_answer_within_the_cap_is_complete(shop: str) -> None:
    answer = run_select(shop, "SELECT status, count(*) AS n FROM orders GROUP BY 1 ORDER BY 1")
    assert answer.rows == (("open", "134"), ("paid", "66"))
    assert answer.truncated is False


def test_a_slow_query_stops_at_the_timeout(shop: str) -> None:
    slow = "SELECT count(*) FROM generate_series(1, 100000) AS a, generate_series(1, 100000) AS b"
    with pytest.raises(TargetQueryError) as caught:
        run_select(shop, slow, timeout_ms=300)
    assert caught.value.timed_out
    assert "took longer than 300 ms" in str(caught.value)


def test_a_write_that_bypasses_the_guard_changes_nothing(shop: str) -> None:
    before = count_orders(shop)
    # A plain DELETE cannot even be declared as a cursor.
    with pytest.raises(TargetQueryError):
        run_select(shop, "DELETE FROM orders")
    # A data-modifying CTE is refused by PostgreSQL too.
    with pytest.raises(TargetQueryError):
        run_select(shop, "WITH gone AS (DELETE FROM orders RETURNING id) SELECT count(*) FROM gone")
    # A volatile function is not even run (it could act beyond the transaction) ...
    with psycopg.connect(shop, autocommit=True) as conn:
        conn.execute("CREATE SEQUENCE seq")
        conn.execute(
            "CREATE FUNCTION ticket() RETURNS bigint STABLE LANGUAGE sql "
            "AS 'SELECT nextval(''seq'')'"
        )
    with pytest.raises(TargetQueryError, match="not run: it reaches functions"):
        run_select(shop, "SELECT nextval('seq')")
    # ... and one that writes behind a trusted owner's "stable" label fails: read-only.
    with pytest.raises(TargetQueryError) as caught:
        run_select(shop, "SELECT ticket()")
    assert caught.value.sqlstate == "25006"
    assert "read-only transaction" in str(caught.value)
    with pytest.raises(TargetQueryError, match="one SQL statement"):
        run_select(shop, "SELECT 1; DELETE FROM orders")
    assert count_orders(shop) == before


def test_error_messages_do_not_quote_values(shop: str) -> None:
    with pytest.raises(TargetQueryError) as caught:
        run_select(shop, "SELECT name::int FROM customers")
    assert "customer 1" not in str(caught.value)
    assert "invalid input syntax for type integer" in str(caught.value)


def test_guard_and_runner_on_a_real_snapshot(shop: str) -> None:
    with Target.open(shop) as target:
        allowed = allowed_from(target.snapshot())
    sql = check_select(
        "SELECT c.name, count(*) AS orders, sum(o.total) AS total "
        "FROM orders o JOIN customers c ON c.id = o.customer_id "
        "WHERE o.status = 'paid' AND c.name ILIKE '%customer%' "
        "GROUP BY c.name ORDER BY total DESC, c.name",
        allowed,
        row_cap=3,
    )
    answer = run_select(shop, sql, row_cap=3)
    assert answer.columns == ("name", "orders", "total")
    assert answer.truncated is True
    assert answer.rows[0] == ("customer 19", "4", "648.00")  # orders 18, 78, 138, 198
    with pytest.raises(UnsafeSql, match="`pg_read_file` is not an allowed function"):
        check_select("SELECT pg_read_file('/etc/passwd')", allowed)
    with pytest.raises(UnsafeSql, match="system catalog"):
        check_select("SELECT rolname, rolpassword FROM pg_authid", allowed)


#: Checked queries must also run: sqlglot's rendering of each allowed construct is valid here.
RUNNABLE = [
    "SELECT count(*) FILTER (WHERE status = 'paid'), avg(total), stddev(total), variance(total), "
    "percentile_cont(0.5) WITHIN GROUP (ORDER BY total), bool_and(total > 0), "
    "string_agg(status, ',' ORDER BY id), array_agg(id ORDER BY id) FROM orders",
    "SELECT date_trunc('day', created_at) AS day, extract(dow FROM created_at), "
    "date_part('hour', created_at), to_char(created_at, 'YYYY-MM'), age(created_at), "
    "created_at > now() - interval '7 days', make_interval(days => 1), to_timestamp(0) "
    "FROM orders LIMIT 3",
    "SELECT data ->> 'items', data -> 'items' -> 0, jsonb_array_length(data -> 'items'), "
    "jsonb_typeof(data), data @> '{\"items\": [1]}', data ? 'items', tags[1], cardinality(tags) "
    "FROM orders LIMIT 3",
    "SELECT position('c' IN name), strpos(name, 'c'), substring(name FROM 1 FOR 3), "
    "split_part(name, ' ', 2), initcap(name), regexp_replace(name, 'c', 'k'), "
    "left(name, 2), right(name, 2), concat(name, '!'), name || '?', coalesce(email, 'none'), "
    "CASE WHEN email IS NULL THEN 'no' ELSE 'yes' END, 5 % 3, round(id::numeric / 3, 2), "
    "avg(id) OVER (), greatest(1, id), nullif(id, 1) FROM customers ORDER BY id LIMIT 3",
    "SELECT id, row_number() OVER w, rank() OVER w, lag(total) OVER w, ntile(4) OVER w "
    "FROM orders WINDOW w AS (PARTITION BY status ORDER BY total DESC) ORDER BY id LIMIT 5",
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) "
    "SELECT * FROM n, LATERAL (SELECT count(*) FROM orders o WHERE o.id = n.i) AS x",
    "SELECT * FROM customers WHERE id IN (SELECT customer_id FROM orders WHERE total > 100) "
    "AND name ILIKE '%1%' AND EXISTS (SELECT 1 FROM orders) ORDER BY id",
    "SELECT x FROM generate_series(1, 3) AS g(x) UNION ALL SELECT u FROM unnest(ARRAY[7]) AS v(u)",
]


@pytest.mark.parametrize("question", RUNNABLE)
def test_checked_queries_run(shop: str, question: str) -> None:
    with Target.open(shop) as target:
        allowed = allowed_from(target.snapshot())
    answer = run_select(shop, check_select(question, allowed, row_cap=10), row_cap=10)
    assert answer.rows
