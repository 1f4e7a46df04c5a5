"""duplicate_index: exact duplicates and prefix-covered B-trees, and what must never be dropped."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.engine.advisor.rules import RuleConfig
from app.engine.advisor.rules.duplicate_index import RULE_ID, duplicate_index
from app.engine.model import ForeignKey, Index, Recommendation, RelKind, Snapshot, Table

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def _index(name: str, *columns: str, table: str = "public.orders", **kw: Any) -> Index:
    return Index("public", name, table, columns, **kw)


def _run(*indexes: Index, **kw: Any) -> list[Recommendation]:
    snapshot = Snapshot("18.6", 180006, "shop", NOW, indexes=indexes, **kw)
    return list(duplicate_index(snapshot, now=NOW, config=RuleConfig()))


def _dropped(*indexes: Index, **kw: Any) -> list[str]:
    return [r.index_name for r in _run(*indexes, **kw)]


def test_duplicate_index_drops_exact_duplicate_and_keeps_shorter_name() -> None:
    [rec] = _run(
        _index("orders_customer_id_dup_idx", "customer_id", size_bytes=2 << 20, scans=7),
        _index("orders_customer_id_idx", "customer_id"),
    )

    assert rec.action == "drop_index"
    assert rec.rule == RULE_ID
    assert rec.index_name == "orders_customer_id_dup_idx"
    assert rec.ddl == "DROP INDEX CONCURRENTLY IF EXISTS public.orders_customer_id_dup_idx"
    assert "exact duplicate of orders_customer_id_idx" in rec.reasons[0]
    assert "its name is shorter" in rec.reasons[1]
    assert "(7 scans so far)" in rec.reasons[1]
    assert "frees 2.0 MB" in rec.reasons[2]


def test_duplicate_index_keeps_the_constraint_backed_copy() -> None:
    recs = _run(
        _index("a", "id"),
        _index("orders_pkey", "id", primary=True, unique=True, constraint="orders_pkey"),
    )

    assert [r.index_name for r in recs] == ["a"]
    assert "because it backs a constraint" in recs[0].reasons[1]


def test_duplicate_index_keeps_the_unique_copy() -> None:
    recs = _run(_index("a", "email"), _index("orders_email_uidx", "email", unique=True))

    assert [r.index_name for r in recs] == ["a"]
    assert "because it is unique" in recs[0].reasons[1]


def test_duplicate_index_never_drops_constraint_backed_duplicates() -> None:
    assert (
        _dropped(
            _index("orders_a_key", "a", unique=True, constraint="orders_a_key"),
            _index("orders_a_key1", "a", unique=True, constraint="orders_a_key1"),
        )
        == []
    )


def test_duplicate_index_keeps_unique_index_a_foreign_key_may_depend_on() -> None:
    fk = ForeignKey("lines_order_fk", "public.lines", ("order_ref",), "public.orders", ("ref",))
    recs = _run(
        _index("orders_ref_idx", "ref", unique=True),
        _index("orders_ref_idx1", "ref", unique=True),
        foreign_keys=(fk,),
    )

    assert recs == []


def test_duplicate_index_exact_needs_same_directions_predicate_include_and_method() -> None:
    assert _dropped(_index("a", "x"), _index("b", "x", descending=(True,))) == []
    assert _dropped(_index("a", "x"), _index("b", "x", where="(y > 0)")) == []
    assert _dropped(_index("a", "x"), _index("b", "x", include=("y",))) == []
    assert _dropped(_index("a", "x", using="hash"), _index("b", "x")) == []
    assert _dropped(_index("a", "x"), _index("b", "x", table="public.other")) == []


def test_duplicate_index_exact_compares_operator_classes_from_definitions() -> None:
    plain = _index(
        "orders_email_idx",
        "email",
        definition=("CREATE INDEX orders_email_idx ON public.orders USING btree (email)"),
    )
    pattern = _index(
        "orders_email_pattern_idx",
        "email",
        definition=(
            "CREATE INDEX orders_email_pattern_idx ON public.orders "
            "USING btree (email text_pattern_ops)"
        ),
    )
    same = _index(
        "orders_email_idx2",
        "email",
        definition=("CREATE INDEX orders_email_idx2 ON public.orders USING btree (email)"),
    )

    assert _dropped(plain, pattern) == []
    assert _dropped(plain, pattern, same) == ["orders_email_idx2"]


def test_duplicate_index_include_order_does_not_matter_for_exact_duplicates() -> None:
    assert _dropped(
        _index("a", "x", include=("p", "q")), _index("bb", "x", include=("q", "p"))
    ) == ["bb"]


def test_duplicate_index_hash_indexes_are_exact_duplicate_checked() -> None:
    assert _dropped(_index("a", "x", using="hash"), _index("bb", "x", using="hash")) == ["bb"]
    assert _dropped(_index("a", "x", using="hash"), _index("b", "x", "y")) == []


def test_duplicate_index_drops_prefix_covered_btree_naming_the_cover() -> None:
    [rec] = _run(
        _index("orders_customer_id_idx", "customer_id", scans=3),
        _index("orders_customer_id_placed_at_idx", "customer_id", "placed_at"),
    )

    assert rec.index_name == "orders_customer_id_idx"
    assert rec.reasons[0] == (
        "orders_customer_id_idx (customer_id) is covered by orders_customer_id_placed_at_idx "
        "(customer_id, placed_at): its keys lead orders_customer_id_placed_at_idx's in the same "
        "order and direction"
    )
    assert "the 3 scans of orders_customer_id_idx" in rec.reasons[1]


def test_duplicate_index_needs_a_leading_prefix_not_any_subset() -> None:
    assert _dropped(_index("a", "y"), _index("b", "x", "y")) == []
    assert _dropped(_index("a", "y", "x"), _index("b", "x", "y", "z")) == []


def test_duplicate_index_never_treats_a_unique_index_as_covered() -> None:
    assert _dropped(_index("a", "x", unique=True), _index("b", "x", "y")) == []
    assert _dropped(_index("a", "x", unique=True), _index("b", "x", "y", unique=True)) == []


def test_duplicate_index_non_unique_index_can_be_covered_by_a_unique_one() -> None:
    assert _dropped(_index("a", "x"), _index("b", "x", "y", unique=True)) == ["a"]


def test_duplicate_index_partial_predicates_must_match() -> None:
    pending = "(status = 'pending'::text)"
    assert _dropped(_index("a", "x", where=pending), _index("b", "x", "y")) == []
    assert _dropped(_index("a", "x"), _index("b", "x", "y", where=pending)) == []
    assert _dropped(_index("a", "x", where=pending), _index("b", "x", "y", where=pending)) == ["a"]


def test_duplicate_index_prefix_directions_must_match() -> None:
    assert _dropped(_index("a", "x", descending=(True,)), _index("b", "x", "y")) == []
    covered = _index("a", "x", descending=(True,))
    assert _dropped(covered, _index("b", "x", "y", descending=(True, False))) == ["a"]


def test_duplicate_index_covered_include_columns_must_be_in_the_cover() -> None:
    narrow = _index("a", "x", include=("c",))
    assert _dropped(narrow, _index("b", "x", "y")) == []
    assert _dropped(narrow, _index("b", "x", "y", include=("c",))) == ["a"]
    assert _dropped(narrow, _index("b", "x", "c")) == ["a"]


def test_duplicate_index_only_btree_covers_and_is_covered() -> None:
    assert _dropped(_index("a", "x", using="gist"), _index("b", "x", "y", using="gist")) == []
    assert _dropped(_index("a", "x"), _index("b", "x", "y", using="gin")) == []


def test_duplicate_index_ignores_invalid_indexes_on_both_sides() -> None:
    assert _dropped(_index("a", "x"), _index("b", "x", "y", valid=False)) == []
    assert _dropped(_index("a", "x", valid=False), _index("b", "x", "y")) == []
    assert _dropped(_index("a", "x"), _index("b", "x", valid=False)) == []


def test_duplicate_index_names_the_widest_cover_in_a_chain() -> None:
    recs = _run(_index("a", "x"), _index("b", "x", "y"), _index("c", "x", "y", "z"))

    assert [r.index_name for r in recs] == ["a", "b"]
    assert all("is covered by c (x, y, z)" in r.reasons[0] for r in recs)


def test_duplicate_index_shop_orders_case() -> None:
    """The seeded orders table: one exact duplicate and one prefix-covered index."""
    recs = _run(
        _index("orders_pkey", "id", primary=True, unique=True, constraint="orders_pkey"),
        _index("orders_status_idx", "status"),
        _index("orders_customer_id_idx", "customer_id"),
        _index("orders_customer_id_placed_at_idx", "customer_id", "placed_at"),
        _index("orders_customer_id_dup_idx", "customer_id"),
    )

    assert [(r.index_name, r.reasons[0].split(":")[0]) for r in recs] == [
        (
            "orders_customer_id_dup_idx",
            "orders_customer_id_dup_idx is an exact duplicate of orders_customer_id_idx",
        ),
        (
            "orders_customer_id_idx",
            "orders_customer_id_idx (customer_id) is covered by "
            "orders_customer_id_placed_at_idx (customer_id, placed_at)",
        ),
    ]


def test_duplicate_index_leaves_partition_indexes_to_the_parent() -> None:
    tables = (
        Table("public", "events", kind=RelKind.partitioned),
        Table("public", "events_p1", partition_of="public.events"),
    )
    parent = [
        _index("events_a_idx", "a", table="public.events"),
        _index("events_a_idx1", "a", table="public.events"),
    ]
    child = [
        _index("events_p1_a_idx", "a", table="public.events_p1"),
        _index("events_p1_a_idx1", "a", table="public.events_p1"),
    ]

    recs = _run(*parent, *child, tables=tables)

    assert [r.index_name for r in recs] == ["events_a_idx1"]
    assert recs[0].ddl == "DROP INDEX IF EXISTS public.events_a_idx1"
    assert "every partition" in recs[0].reasons[-1]


def test_duplicate_index_drops_local_partition_index_covered_by_attached_one() -> None:
    tables = (
        Table("public", "events", kind=RelKind.partitioned),
        Table("public", "events_p1", partition_of="public.events"),
    )
    recs = _run(
        _index("events_a_b_idx", "a", "b", table="public.events"),
        _index("events_p1_a_b_idx", "a", "b", table="public.events_p1"),
        _index("events_p1_a_idx", "a", table="public.events_p1"),
        tables=tables,
    )

    assert [r.index_name for r in recs] == ["events_p1_a_idx"]
    assert recs[0].ddl.startswith("DROP INDEX CONCURRENTLY")


def test_duplicate_index_keeps_nulls_not_distinct_unique_index() -> None:
    def unique(name: str, tail: str = "") -> Index:
        text = f"CREATE UNIQUE INDEX {name} ON public.orders USING btree (x){tail}"
        return _index(name, "x", unique=True, definition=text)

    recs = _run(unique("a"), unique("strict_x_idx", " NULLS NOT DISTINCT"))

    assert [r.index_name for r in recs] == ["a"]
    assert "because it enforces NULLS NOT DISTINCT" in recs[0].reasons[1]


def test_duplicate_index_breaks_name_length_ties_alphabetically() -> None:
    recs = _run(_index("xb", "x"), _index("xa", "x"))

    assert [r.index_name for r in recs] == ["xb"]
    assert "because its name sorts first" in recs[0].reasons[1]


def test_duplicate_index_keeps_the_copy_a_foreign_key_pins() -> None:
    fk = ForeignKey("lines_order_fk", "public.lines", ("order_ref",), "public.orders", ("ref",))

    recs = _run(
        _index("a", "ref"), _index("orders_ref_uidx", "ref", unique=True), foreign_keys=(fk,)
    )

    assert [r.index_name for r in recs] == ["a"]
    assert "cannot be dropped on its own" in recs[0].reasons[1]


def test_duplicate_index_reads_quoted_keys_from_definitions() -> None:
    def with_def(name: str, keys: str) -> Index:
        text = f'CREATE INDEX {name} ON public."AuditLog" USING btree ({keys})'
        return _index(name, *keys.split(", "), table="public.AuditLog", definition=text)

    recs = _run(
        with_def("audit_a", '"Event,Type", "CreatedAt"'),
        with_def("audit_b", '"Event,Type", "CreatedAt" DESC'),
        with_def("audit_c", '"Event,Type"'),
    )

    assert [r.index_name for r in recs] == ["audit_c"]
    assert 'is covered by audit_a ("Event,Type", "CreatedAt")' in recs[0].reasons[0]


def test_duplicate_index_falls_back_to_model_keys_for_unreadable_definitions() -> None:
    odd = _index("a", "x", definition="something else")

    assert _dropped(odd, _index("b", "x", "y")) == ["a"]


def test_duplicate_index_reports_partition_sums_for_partitioned_indexes() -> None:
    tables = (
        Table("public", "events", kind=RelKind.partitioned),
        Table("public", "events_p1", partition_of="public.events"),
    )
    recs = _run(
        _index("events_a_idx", "a", table="public.events"),
        _index("events_a_b_idx", "a", "b", table="public.events"),
        _index("events_p1_a_idx", "a", table="public.events_p1", scans=4, size_bytes=3 << 20),
        _index("events_p1_a_b_idx", "a", "b", table="public.events_p1"),
        tables=tables,
    )

    assert [r.index_name for r in recs] == ["events_a_idx"]
    assert recs[0].size_bytes == 3 << 20
    assert "the 4 scans of events_a_idx" in recs[0].reasons[1]
    assert "frees 3.0 MB" in recs[0].reasons[2]
