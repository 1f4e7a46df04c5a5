"""The shop fixture seeds what it promises, deterministically, and fills pg_stat_statements."""

from __future__ import annotations

import psycopg

from app.demo.shop import UNPARSEABLE, row_counts, rows_at, run_workload, seed

SCALE = 0.05

STATEMENTS_OF_THIS_DB = """
SELECT query, sum(calls)::int
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
GROUP BY query
"""
POSTS_CHECKSUM = """
SELECT md5(string_agg(concat_ws(',', id, user_id, blog_id, status, created_at, score), ';'
                      ORDER BY id))
FROM posts
"""


def _one(conn: psycopg.Connection[tuple[object, ...]], query: str) -> object:
    row = conn.execute(query.encode()).fetchone()
    assert row is not None
    return row[0]


def _share(conn: psycopg.Connection[tuple[object, ...]], query: str) -> float:
    value = _one(conn, query)
    assert isinstance(value, float)
    return value


def test_seed_builds_the_planted_schema_and_data(fresh_db18: str) -> None:
    with psycopg.connect(fresh_db18, autocommit=True) as conn:
        seed(conn, scale=SCALE)

        assert row_counts(conn) == rows_at(SCALE)
        assert _one(conn, "SELECT count(*) FROM pg_indexes WHERE tablename = 'posts'") == 0
        orders = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'orders' ORDER BY 1"
        ).fetchall()
        assert [r[0] for r in orders] == [
            "orders_customer_id_dup_idx",
            "orders_customer_id_idx",
            "orders_customer_id_placed_at_idx",
            "orders_pkey",
            "orders_status_idx",
        ]
        fks = conn.execute(
            "SELECT conname FROM pg_constraint WHERE contype = 'f' ORDER BY 1"
        ).fetchall()
        assert [r[0] for r in fks] == ["blogs_owner_id_fkey", "comments_user_id_fkey"]
        assert (
            _one(conn, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass") == 4
        )
        assert _one(conn, "SELECT relkind FROM pg_class WHERE relname = 'active_users'") == "v"
        assert _one(conn, "SELECT sum(posts) FROM blog_stats") == rows_at(SCALE)["posts"]
        assert _one(conn, 'SELECT count(*) FROM "AuditLog" WHERE "EventType" IS NULL') == 0
        assert _one(conn, "SELECT reltuples > 0 FROM pg_class WHERE relname = 'posts'") is True
        assert (
            _one(
                conn,
                "SELECT stats_reset IS NOT NULL FROM pg_stat_database "
                "WHERE datname = current_database()",
            )
            is True
        )

        deleted = _share(conn, "SELECT avg((deleted_at IS NOT NULL)::int)::float FROM users")
        assert 0.03 < deleted < 0.07
        pending = _share(conn, "SELECT avg((status = 'pending')::int)::float FROM posts")
        assert 0.005 < pending < 0.02
        top_blog = _share(conn, "SELECT max(posts)::float / sum(posts) FROM blog_stats")
        assert top_blog > 0.2


def test_seed_is_deterministic(fresh_db18: str) -> None:
    with psycopg.connect(fresh_db18, autocommit=True) as conn:
        seed(conn, scale=SCALE)
        first = _one(conn, POSTS_CHECKSUM)
        seed(conn, scale=SCALE)

        assert _one(conn, POSTS_CHECKSUM) == first


def test_run_workload_fills_pg_stat_statements_and_keeps_the_data(fresh_db18: str) -> None:
    with psycopg.connect(fresh_db18, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("SELECT pg_stat_statements_reset()")
        seed(conn, scale=SCALE)

        executed = run_workload(conn, repeat=2)

        rows = conn.execute(STATEMENTS_OF_THIS_DB.encode()).fetchall()
        calls = {str(query): count for query, count in rows}
        assert executed == 74
        assert calls["SELECT * FROM posts WHERE id = $1"] == 10
        assert calls["UPDATE posts SET score = score + $1 WHERE id = $2"] == 4
        assert calls["DELETE FROM comments WHERE post_id = $1"] == 2
        assert calls["SELECT * FROM users WHERE lower(email) = $1"] == 4
        assert calls['SELECT * FROM "AuditLog" WHERE "EventType" = $1 AND "CreatedAt" > $2'] == 4
        # pg_stat_statements replaces the literal too; SELECT 1 and SELECT $1 both read "SELECT $1".
        assert calls["SELECT * FROM posts WHERE status = $2 ORDER BY created_at LIMIT $1"] == 4
        assert calls["SELECT $1"] == 4
        assert calls["SELECT relname FROM pg_class WHERE relname = $1"] == 2
        assert UNPARSEABLE not in calls
        seeding = [q for q in calls if q.startswith(("INSERT", "CREATE", "VACUUM", "SELECT set"))]
        assert seeding == []
        assert row_counts(conn) == rows_at(SCALE)  # the writes were rolled back
