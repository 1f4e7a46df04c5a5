"""The audit's disk budget: how it is written, resolved on a database, respected and reported."""

from __future__ import annotations

import dataclasses

import pytest

from app.engine.advisor.audit import AuditConfig, audit
from app.engine.advisor.budget import FLOOR_BYTES, BudgetError, check_budget, disk_budget
from app.engine.model import Query
from app.engine.render import to_json, to_text
from tests.fakes import NOW, FakeOracle, column, snapshot, table

GB = 2**30


def database(total_bytes: int) -> object:
    posts = table(
        "posts",
        2e6,
        column("id"),
        column("user_id", distinct=20_000),
        column("blog_id", distinct=500),
        total_bytes=total_bytes,
    )
    return snapshot(posts)


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("lots", "write a share"),
        ("500", "add a unit"),
        ("0%", "above 0%"),
        ("2000%", "at most 1000%"),
        ("0MB", "above 0"),
        ("5 parsecs", "write a share"),
    ],
)
def test_a_bad_budget_says_what_is_accepted(spec: str, problem: str) -> None:
    with pytest.raises(BudgetError, match=problem):
        check_budget(spec)


def test_a_share_of_the_database_with_a_floor_and_sizes_as_written() -> None:
    big = disk_budget("25%", database(8 * GB))  # type: ignore[arg-type]
    assert big.bytes == 2 * GB and big.rule == "25% of the database's 8.0 GB"
    small = disk_budget("25%", database(100 * 2**20))  # type: ignore[arg-type]
    assert small.bytes == FLOOR_BYTES and "raised to the 256 MB floor" in small.rule
    assert disk_budget("1.5GB", database(0)).bytes == int(1.5 * GB)  # type: ignore[arg-type]
    assert disk_budget("off", database(0)).bytes is None  # type: ignore[arg-type]


def test_selection_stops_at_the_budget_and_the_report_says_so() -> None:
    snap = database(8 * GB)
    queries = [
        Query("SELECT * FROM posts WHERE user_id = $1", calls=500),
        Query("SELECT * FROM posts WHERE blog_id = $1", calls=400),
    ]
    unlimited = audit(snap, queries, FakeOracle(snap), now=NOW)  # type: ignore[arg-type]
    assert len(unlimited.recommendations) == 2
    assert unlimited.disk_budget is not None and unlimited.disk_budget.bytes == 2 * GB
    one = min(r.size_bytes for r in unlimited.recommendations)
    tight = f"{(one + 1024) / 2**20:.3f}MB"
    config = AuditConfig(disk_budget=tight)
    limited = audit(snap, queries, FakeOracle(snap), now=NOW, config=config)  # type: ignore[arg-type]
    assert len(limited.recommendations) == 1
    refused = [r.reason for r in limited.rejected if r.reason.startswith("budget:")]
    assert refused and "would go over the audit's disk budget" in refused[0]
    document = to_json(limited)["disk_budget"]
    assert document["proposed_bytes"] == limited.proposed_bytes <= document["bytes"]
    assert "disk budget: " in to_text(limited) and "set to" in to_text(limited)
    # an explicit byte budget in the selection config wins over the rule
    explicit = dataclasses.replace(
        config, selection=dataclasses.replace(config.selection, storage_budget_bytes=GB)
    )
    report = audit(snap, queries, FakeOracle(snap), now=NOW, config=explicit)  # type: ignore[arg-type]
    assert report.disk_budget is not None and report.disk_budget.bytes == GB
