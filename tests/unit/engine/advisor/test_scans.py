"""Scan extraction: what each statement asks of each base table, and why others are skipped."""

from __future__ import annotations

import pytest

from app.engine.advisor.scans import analyze
from app.engine.catalog import Catalog
from app.engine.model import Analyzed, Op, Query, RelKind, Scan, Skipped, StatementKind
from tests.fakes import column, snapshot, table

VIEW_SQL = (
    " SELECT users.id, users.email, users.deleted_at FROM users WHERE users.deleted_at IS NULL;"
)
CATALOG = Catalog(
    snapshot(
        table(
            "posts",
            1e5,
            column("id"),
            column("user_id"),
            column("blog_id"),
            column("created_at"),
            column("status", "text"),
            column("score"),
        ),
        table(
            "comments",
            1e5,
            column("id"),
            column("post_id"),
            column("user_id"),
            column("body", "text"),
        ),
        table("users", 1e5, column("id"), column("email", "text"), column("deleted_at")),
        table(
            "active_users",
            0,
            column("id"),
            column("email", "text"),
            column("deleted_at"),
            kind=RelKind.view,
            view_sql=VIEW_SQL,
        ),
        table("AuditLog", 1e4, column("EventType", "text"), column("CreatedAt")),
        table("events", 1e5, column("tenant_id"), column("created_at"), kind=RelKind.partitioned),
    )
)


def scans(sql: str) -> dict[str, Scan]:
    result = analyze(Query(sql), CATALOG)
    assert isinstance(result, Analyzed), getattr(result, "reason", result)
    return {s.table: s for s in result.scans}


def preds(scan: Scan) -> set[tuple[str, Op]]:
    return {(p.key, p.op) for p in scan.predicates}


def skipped(sql: str) -> str:
    result = analyze(Query(sql), CATALOG)
    assert isinstance(result, Skipped)
    return result.reason


def test_equality_in_and_range_with_aliases() -> None:
    s = scans(
        "SELECT * FROM posts p WHERE p.user_id = $1 AND blog_id IN ($2, $3) AND created_at > $4"
    )
    assert preds(s["public.posts"]) == {
        ("user_id", Op.eq),
        ("blog_id", Op.in_),
        ("created_at", Op.range),
    }


def test_order_by_direction_and_limit() -> None:
    s = scans("SELECT * FROM posts WHERE user_id = $1 ORDER BY created_at DESC LIMIT $2")[
        "public.posts"
    ]
    assert [(k.key, k.descending) for k in s.order_by] == [("created_at", True)]
    assert s.limit


def test_join_keys_on_both_sides() -> None:
    s = scans("SELECT c.body FROM comments c JOIN posts p ON p.id = c.post_id WHERE p.user_id = $1")
    assert s["public.comments"].join_keys == ("post_id",)
    assert s["public.posts"].join_keys == ("id",)
    assert preds(s["public.posts"]) == {("user_id", Op.eq)}


def test_update_and_delete_predicates_and_written_columns() -> None:
    result = analyze(Query("UPDATE posts SET score = score + $1 WHERE id = $2"), CATALOG)
    assert isinstance(result, Analyzed) and result.kind is StatementKind.update
    (scan,) = result.scans
    assert scan.write and scan.set_columns == ("score",) and preds(scan) == {("id", Op.eq)}
    assert preds(scans("DELETE FROM comments WHERE post_id = $1")["public.comments"]) == {
        ("post_id", Op.eq)
    }


def test_view_resolves_to_its_base_table_with_the_view_predicate() -> None:
    s = scans("SELECT * FROM active_users WHERE email = $1")["public.users"]
    assert preds(s) == {("email", Op.eq), ("deleted_at", Op.is_null)}


def test_partitioned_parent_is_the_scanned_table() -> None:
    s = scans("SELECT * FROM events WHERE tenant_id = $1 AND created_at >= $2")
    assert preds(s["public.events"]) == {("tenant_id", Op.eq), ("created_at", Op.range)}


def test_materialized_cte_is_a_fence_but_an_inlined_one_is_not() -> None:
    fenced = scans("WITH x AS MATERIALIZED (SELECT * FROM posts) SELECT * FROM x WHERE score = $1")
    assert fenced["public.posts"].predicates == ()
    inlined = scans("WITH x AS (SELECT * FROM posts) SELECT * FROM x WHERE score = $1")
    assert preds(inlined["public.posts"]) == {("score", Op.eq)}


def test_quoted_mixed_case_identifiers() -> None:
    s = scans('SELECT * FROM "AuditLog" WHERE "EventType" = $1 AND "CreatedAt" > $2')[
        "public.AuditLog"
    ]
    assert preds(s) == {("EventType", Op.eq), ("CreatedAt", Op.range)}


def test_expression_and_constant_predicates() -> None:
    s = scans("SELECT * FROM users WHERE lower(email) = $1")["public.users"]
    assert [(p.key, p.expression) for p in s.predicates] == [("lower(email)", True)]
    s = scans("SELECT * FROM posts WHERE status = 'pending' ORDER BY created_at LIMIT $1")[
        "public.posts"
    ]
    assert [(p.key, p.constant) for p in s.predicates] == [("status", "'pending'")]


def test_or_of_one_column_is_in() -> None:
    s = scans("SELECT * FROM posts WHERE user_id = $1 OR user_id = $2")["public.posts"]
    assert preds(s) == {("user_id", Op.in_)}


def test_normalised_typed_literal_is_repaired() -> None:
    s = scans("SELECT * FROM posts WHERE created_at > timestamptz $1")["public.posts"]
    assert preds(s) == {("created_at", Op.range)}


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT 1", "reads no table"),
        ("SELECT $1", "reads no table"),
        ("SELECT relname FROM pg_class WHERE relname = $1", "reads only system catalogs"),
        ("SELECT * FROM information_schema.tables", "reads only system catalogs"),
        ("SELECT * FROM WHERE", "could not parse"),
        ("SELECT * FROM missing WHERE a = 1", "not in the target's catalog"),
        ("BEGIN", "utility statement"),
        ("/* dbarchitect */ SELECT * FROM posts", "DB Architect itself"),
    ],
)
def test_skipped_statements_say_why(sql: str, reason: str) -> None:
    assert reason in skipped(sql)


def test_insert_of_generated_rows_is_a_write_without_reads() -> None:
    result = analyze(
        Query("INSERT INTO users (email) SELECT md5(g::text) FROM generate_series(1, 10) AS g"),
        CATALOG,
    )
    assert isinstance(result, Analyzed) and result.kind is StatementKind.insert
    assert [(s.table, s.write) for s in result.scans] == [("public.users", True)]


LONG_COLUMN = "a" + "é" * 35  # 71 bytes: PostgreSQL keeps "a" and 31 "é" (63 bytes)
LONG_TABLE = "T" + "ü" * 40  # 81 bytes
HOSTILE = Catalog(
    snapshot(
        table(LONG_TABLE.encode()[:63].decode(errors="ignore"), 1e5, column("a" + "é" * 31)),
        table("emails", 1e5, column("Em ail", "text"), column("order", "text"), column("e")),
        table("Ünï", 1e5, column("Äpfel"), column("id")),
        table("ünï", 1e5, column("äpfel"), column("id")),
    )
)


def test_names_longer_than_63_bytes_resolve_as_postgresql_truncates_them() -> None:
    result = analyze(Query(f'SELECT * FROM "{LONG_TABLE}" WHERE "{LONG_COLUMN}" = $1'), HOSTILE)
    assert isinstance(result, Analyzed), getattr(result, "reason", result)
    (scan,) = result.scans
    assert scan.table == "public.T" + "ü" * 31
    assert preds(scan) == {("a" + "é" * 31, Op.eq)}
    assert len(scan.predicates[0].key.encode()) == 63


def test_expression_keys_quote_the_names_that_need_it() -> None:
    sql = (
        'SELECT * FROM emails WHERE lower("Em ail") = $1 AND upper("order") = $2 AND lower(e) = $3'
    )
    result = analyze(Query(sql), HOSTILE)
    assert isinstance(result, Analyzed), getattr(result, "reason", result)
    assert [(p.key, p.expression) for p in result.scans[0].predicates] == [
        ('lower("Em ail")', True),
        ('upper("order")', True),
        ("lower(e)", True),
    ]


def test_a_schema_name_with_a_dot_is_refused_with_the_reason() -> None:
    reason = skipped('SELECT * FROM "my.schema".t WHERE a = 1')
    assert "schemas whose name contains a dot are not supported" in reason


def test_unquoted_names_fold_only_ascii_letters_as_postgresql_does() -> None:
    result = analyze(Query("SELECT * FROM Ünï WHERE Äpfel = $1 AND ID = $2"), HOSTILE)
    assert isinstance(result, Analyzed), getattr(result, "reason", result)
    (scan,) = result.scans
    assert scan.table == "public.Ünï"  # not public.ünï, which Python's lower() would pick
    assert preds(scan) == {("Äpfel", Op.eq), ("id", Op.eq)}
