"""fk_without_index: foreign keys whose referencing columns lead no usable index."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.engine.advisor.rules import RuleConfig
from app.engine.advisor.rules.fk_without_index import RULE_ID, fk_without_index
from app.engine.model import ForeignKey, Index, Recommendation, RelKind, Snapshot, Table

NOW = datetime(2025, 6, 1, tzinfo=UTC)
USERS = Table("public", "users", rows=100_000, n_tup_del=40, n_tup_upd=7)
COMMENTS = Table("public", "comments", rows=300_000)
FK = ForeignKey("comments_user_id_fkey", "public.comments", ("user_id",), "public.users", ("id",))
PAIR_FK = ForeignKey("c_ab_fk", "public.comments", ("a", "b"), "public.parent", ("x", "y"))


def _index(name: str, *columns: str, table: str = "public.comments", **kw: Any) -> Index:
    return Index("public", name, table, columns, **kw)


def _run(
    *indexes: Index,
    fks: tuple[ForeignKey, ...] = (FK,),
    tables: tuple[Table, ...] = (USERS, COMMENTS),
    config: RuleConfig | None = None,
) -> list[Recommendation]:
    snapshot = Snapshot(
        "18.6", 180006, "shop", NOW, tables=tables, indexes=indexes, foreign_keys=fks
    )
    return list(fk_without_index(snapshot, now=NOW, config=config or RuleConfig()))


def test_fk_without_index_proposes_index_on_referencing_columns() -> None:
    [rec] = _run(_index("comments_pkey", "id", primary=True, unique=True, constraint="c_pkey"))

    assert rec.action == "create_index"
    assert rec.rule == RULE_ID
    assert rec.table == "public.comments"
    assert rec.columns == ("user_id",)
    assert rec.index_name == "comments_user_id_idx"
    assert rec.ddl == (
        "CREATE INDEX CONCURRENTLY comments_user_id_idx ON public.comments USING btree (user_id)"
    )
    assert rec.reasons[0].startswith("foreign key comments_user_id_fkey: public.comments (user_id)")
    assert "every DELETE on public.users" in rec.reasons[1]
    assert "(300,000 rows)" in rec.reasons[1]
    assert "sequential scan of public.comments" in rec.reasons[1]
    assert "40 deletes and 7 updates" in rec.reasons[2]
    assert rec.extra["rows"] == 300_000


def test_fk_without_index_accepts_a_single_column_index() -> None:
    assert _run(_index("comments_user_id_idx", "user_id")) == []


def test_fk_without_index_accepts_composite_with_fk_columns_leading_in_any_order() -> None:
    assert _run(_index("i", "b", "a", "c"), fks=(PAIR_FK,)) == []
    assert _run(_index("i", "a", "b"), fks=(PAIR_FK,)) == []


def test_fk_without_index_needs_fk_columns_to_lead() -> None:
    assert [r.columns for r in _run(_index("i", "a", "c", "b"), fks=(PAIR_FK,))] == [("a", "b")]
    assert [r.columns for r in _run(_index("i", "created_at", "user_id"))] == [("user_id",)]
    assert [r.columns for r in _run(_index("i", "a"), fks=(PAIR_FK,))] == [("a", "b")]


def test_fk_without_index_accepts_primary_key_that_leads_with_fk_columns() -> None:
    pk = _index("comments_pkey", "user_id", "id", primary=True, unique=True, constraint="pk")

    assert _run(pk) == []


def test_fk_without_index_ignores_partial_invalid_and_non_btree_indexes() -> None:
    assert len(_run(_index("i", "user_id", where="(user_id > 0)"))) == 1
    assert len(_run(_index("i", "user_id", valid=False))) == 1
    assert len(_run(_index("i", "user_id", using="brin"))) == 1
    assert _run(_index("i", "user_id", using="hash")) == []


def test_fk_without_index_ignores_small_tables() -> None:
    small = Table("public", "comments", rows=999)

    assert _run(tables=(USERS, small)) == []
    assert len(_run(tables=(USERS, small), config=RuleConfig(fk_min_rows=100))) == 1


def test_fk_without_index_skips_tables_missing_from_the_snapshot() -> None:
    assert _run(tables=(USERS,)) == []


def test_fk_without_index_one_recommendation_per_column_list() -> None:
    twin = ForeignKey(
        "comments_user_id_fkey1", "public.comments", ("user_id",), "public.u2", ("id",)
    )

    assert [r.index_name for r in _run(fks=(twin, FK))] == ["comments_user_id_idx"]


def test_fk_without_index_partitioned_parent_without_concurrently_and_summed_rows() -> None:
    events = Table("public", "events", kind=RelKind.partitioned, rows=0)
    parts = tuple(
        Table("public", f"events_p{i}", rows=600, partition_of="public.events") for i in (1, 2)
    )
    parent_fk = ForeignKey("events_tenant_fk", "public.events", ("tenant_id",), "public.t", ("id",))
    child_fks = tuple(
        ForeignKey(f"events_p{i}_fk", f"public.events_p{i}", ("tenant_id",), "public.t", ("id",))
        for i in (1, 2)
    )

    [rec] = _run(fks=(parent_fk, *child_fks), tables=(events, *parts))

    assert rec.table == "public.events"
    assert rec.ddl == "CREATE INDEX events_tenant_id_idx ON public.events USING btree (tenant_id)"
    assert rec.extra["rows"] == 1200
    assert "partitioned" in rec.reasons[-1]


def test_fk_without_index_quotes_mixed_case_names() -> None:
    log = Table("public", "AuditLog", rows=50_000)
    fk = ForeignKey("audit_user_fk", "public.AuditLog", ("UserId",), "public.users", ("id",))

    [rec] = _run(fks=(fk,), tables=(USERS, log))

    assert rec.ddl == (
        'CREATE INDEX CONCURRENTLY auditlog_userid_idx ON public."AuditLog" USING btree ("UserId")'
    )


def test_fk_without_index_orders_output_by_table_then_name() -> None:
    other = Table("public", "blogs", rows=5000)
    blog_fk = ForeignKey(
        "blogs_owner_id_fkey", "public.blogs", ("owner_id",), "public.users", ("id",)
    )

    recs = _run(fks=(FK, blog_fk), tables=(USERS, COMMENTS, other))

    assert [r.index_name for r in recs] == ["blogs_owner_id_idx", "comments_user_id_idx"]
