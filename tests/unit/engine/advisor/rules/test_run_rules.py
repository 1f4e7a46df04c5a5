"""run_rules: every rule in a fixed order, one recommendation per index and action."""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.engine.advisor.rules import RULE_IDS, RULES, RuleConfig, run_rules
from app.engine.model import ForeignKey, Index, Snapshot, Table

NOW = datetime(2025, 6, 1, tzinfo=UTC)
MIB = 1 << 20


def _shop() -> Snapshot:
    def idx(name: str, *cols: str, **kw: Any) -> Index:
        return Index("public", name, "public.orders", cols, size_bytes=2 * MIB, **kw)

    return Snapshot(
        "18.6",
        180006,
        "shop",
        NOW,
        tables=(
            Table("public", "users", rows=100_000),
            Table("public", "orders", rows=100_000),
            Table("public", "comments", rows=300_000),
        ),
        indexes=(
            idx("orders_pkey", "id", primary=True, unique=True, constraint="orders_pkey", scans=9),
            idx("orders_status_idx", "status"),
            idx("orders_customer_id_idx", "customer_id", scans=4),
            idx("orders_customer_id_dup_idx", "customer_id"),
            idx("orders_customer_id_placed_at_idx", "customer_id", "placed_at", scans=2),
            idx("orders_total_idx", "total", valid=False),
        ),
        foreign_keys=(
            ForeignKey(
                "comments_user_id_fkey", "public.comments", ("user_id",), "public.users", ("id",)
            ),
        ),
        stats_reset=NOW - timedelta(days=30),
    )


def test_run_rules_runs_every_rule_in_order_and_merges_reasons() -> None:
    recs = run_rules(_shop(), now=NOW, config=RuleConfig())

    assert [(r.rule, r.action, r.index_name) for r in recs] == [
        ("invalid_index", "reindex", "orders_total_idx"),
        ("duplicate_index", "drop_index", "orders_customer_id_dup_idx"),
        ("duplicate_index", "drop_index", "orders_customer_id_idx"),
        ("unused_index", "drop_index", "orders_status_idx"),
        ("fk_without_index", "create_index", "comments_user_id_idx"),
    ]
    dup = recs[1]
    assert dup.reasons[0].startswith("orders_customer_id_dup_idx is an exact duplicate")
    assert any("0 scans since 2025-05-02 (30 days)" in r for r in dup.reasons)
    assert dup.extra["window_days"] == 30


def test_run_rules_is_deterministic() -> None:
    first = run_rules(_shop(), now=NOW, config=RuleConfig())

    assert run_rules(_shop(), now=NOW, config=RuleConfig()) == first


def test_run_rules_skips_rules_by_id() -> None:
    recs = run_rules(_shop(), now=NOW, config=RuleConfig(skip=frozenset({"duplicate_index"})))

    assert {r.rule for r in recs} == {"invalid_index", "unused_index", "fk_without_index"}
    assert [r.index_name for r in recs if r.rule == "unused_index"] == [
        "orders_customer_id_dup_idx",
        "orders_status_idx",
    ]


def test_run_rules_rejects_unknown_rule_ids() -> None:
    with pytest.raises(ValueError, match="unknown rule ids to skip: nope"):
        run_rules(_shop(), now=NOW, config=RuleConfig(skip=frozenset({"nope"})))


def test_rule_ids_match_module_and_function_names() -> None:
    modules = {rule.__module__.rpartition(".")[2] for rule in RULES}
    ids = {sys.modules[rule.__module__].RULE_ID for rule in RULES}
    expected = {"duplicate_index", "fk_without_index", "invalid_index", "unused_index"}

    assert modules == ids == RULE_IDS == expected


def test_index_taking_over_a_used_duplicate_is_not_dropped_as_unused() -> None:
    """Dropping both would leave the used duplicate's queries with no index at all."""
    from datetime import UTC, datetime, timedelta

    from app.engine.advisor.rules import RuleConfig, run_rules
    from app.engine.model import Index, Snapshot, Table

    now = datetime(2026, 11, 1, tzinfo=UTC)
    narrow = Index(
        "public",
        "o_c",
        "public.o",
        ("c",),
        scans=500,
        size_bytes=10 << 20,
        definition="CREATE INDEX o_c ON public.o USING btree (c)",
    )
    wide = Index(
        "public",
        "o_c_p",
        "public.o",
        ("c", "p"),
        scans=0,
        size_bytes=10 << 20,
        definition="CREATE INDEX o_c_p ON public.o USING btree (c, p)",
    )
    snap = Snapshot(
        "18.6",
        180006,
        "app",
        now,
        tables=(Table("public", "o", rows=1e6),),
        indexes=(narrow, wide),
        stats_reset=now - timedelta(days=60),
    )
    drops = {r.index_name for r in run_rules(snap, now=now, config=RuleConfig())}
    assert drops == {"o_c"}


def test_an_index_that_takes_over_from_a_dropped_one_is_never_dropped_as_unused() -> None:
    shop = _shop()
    idle = tuple(replace(i, scans=0) if i.name != "orders_pkey" else i for i in shop.indexes)
    recs = run_rules(replace(shop, indexes=idle), now=NOW, config=RuleConfig())
    dropped = {r.index_name for r in recs if r.action == "drop_index"}
    # Both copies of (customer_id) go, as duplicate and as covered; the wider index that
    # serves their scans afterwards stays, even with 0 scans of its own so far.
    assert {"orders_customer_id_dup_idx", "orders_customer_id_idx"} <= dropped
    assert "orders_customer_id_placed_at_idx" not in dropped
    assert "orders_status_idx" in dropped
