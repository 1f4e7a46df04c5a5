"""invalid_index: rebuild what a failed concurrent build left behind."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.engine.advisor.rules import RuleConfig
from app.engine.advisor.rules.invalid_index import RULE_ID, invalid_index
from app.engine.model import Index, Recommendation, RelKind, Snapshot, Table

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def _index(name: str, *columns: str, table: str = "public.posts", **kw: Any) -> Index:
    return Index("public", name, table, columns, **({"valid": False} | kw))


def _run(*indexes: Index, **kw: Any) -> list[Recommendation]:
    snapshot = Snapshot("18.6", 180006, "shop", NOW, indexes=indexes, **kw)
    return list(invalid_index(snapshot, now=NOW, config=RuleConfig()))


def test_invalid_index_proposes_reindex_concurrently() -> None:
    definition = "CREATE INDEX posts_user_id_idx ON public.posts USING btree (user_id)"
    [rec] = _run(_index("posts_user_id_idx", "user_id", size_bytes=5 << 20, definition=definition))

    assert rec.action == "reindex"
    assert rec.rule == RULE_ID
    assert rec.table == "public.posts"
    assert rec.columns == ("user_id",)
    assert rec.ddl == "REINDEX INDEX CONCURRENTLY public.posts_user_id_idx"
    assert rec.definition == definition
    assert "failed or was cancelled" in rec.reasons[0]
    assert "(5.0 MB)" in rec.reasons[1]
    assert "pg_stat_progress_create_index" in rec.reasons[2]
    assert "DROP INDEX CONCURRENTLY IF EXISTS public.posts_user_id_idx" in rec.reasons[3]


def test_invalid_index_ignores_valid_indexes() -> None:
    assert _run(_index("posts_user_id_idx", "user_id", valid=True)) == []


def test_invalid_index_warns_that_unique_rebuild_needs_clean_data() -> None:
    [rec] = _run(_index("posts_slug_key", "slug", unique=True))

    assert "duplicate values" in rec.reasons[-1]


def test_invalid_index_quotes_mixed_case_names() -> None:
    [rec] = _run(_index("AuditLog_EventType_idx", "EventType", table="public.AuditLog"))

    assert rec.ddl == 'REINDEX INDEX CONCURRENTLY public."AuditLog_EventType_idx"'


def test_invalid_index_drops_reindex_concurrently_leftovers() -> None:
    recs = _run(
        _index("posts_user_id_idx_ccnew", "user_id"),
        _index("posts_user_id_idx_ccold1", "user_id"),
    )

    assert [(r.action, r.index_name) for r in recs] == [
        ("drop_index", "posts_user_id_idx_ccnew"),
        ("drop_index", "posts_user_id_idx_ccold1"),
    ]
    assert "run the REINDEX again" in recs[0].reasons[0]
    assert "dropping it is all that is left" in recs[1].reasons[0]
    assert recs[0].ddl == "DROP INDEX CONCURRENTLY IF EXISTS public.posts_user_id_idx_ccnew"


def test_invalid_index_skips_partitioned_parents_waiting_for_attach() -> None:
    tables = (Table("public", "events", kind=RelKind.partitioned),)

    assert _run(_index("events_kind_idx", "kind", table="public.events"), tables=tables) == []


def test_invalid_index_orders_output_by_table_then_name() -> None:
    recs = _run(_index("b", "x"), _index("a", "x"), _index("c", "x", table="public.comments"))

    assert [r.index_name for r in recs] == ["c", "a", "b"]
