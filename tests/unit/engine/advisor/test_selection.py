"""Workload-wide selection on the toy planner: sharing, budgets, write overhead, reasons."""

from __future__ import annotations

from app.engine.advisor.candidates import generate
from app.engine.advisor.scans import analyze
from app.engine.advisor.selection import Selection, SelectionConfig, select
from app.engine.catalog import Catalog
from app.engine.model import Analyzed, Query, Snapshot
from tests.fakes import FakeOracle, column, snapshot, table

POSTS = table(
    "posts",
    2e5,
    column("id"),
    column("user_id", distinct=200),
    column("blog_id", distinct=500),
    column("created_at"),
    column("score", distinct=100),
)


def choose(
    queries: list[Query], snap: Snapshot | None = None, **config: object
) -> tuple[Selection, FakeOracle]:
    snap = snap or snapshot(POSTS)
    catalog = Catalog(snap)
    analyzed = [a for a in (analyze(q, catalog) for q in queries) if isinstance(a, Analyzed)]
    oracle = FakeOracle(snap)
    cfg = SelectionConfig(**config)  # type: ignore[arg-type]
    return select(analyzed, generate(analyzed, catalog), oracle, catalog, config=cfg), oracle


def chosen(sel: Selection) -> list[str]:
    return [c.candidate.label() for c in sel.chosen]


def test_single_equality_gets_a_single_column_index() -> None:
    sel, _ = choose([Query("SELECT * FROM posts WHERE id = $1", calls=10)])
    assert chosen(sel) == ["public.posts (id)"]
    ((before, after),) = sel.chosen[0].effects.values()
    assert after < before


def test_one_index_serves_several_statements() -> None:
    sel, _ = choose(
        [
            Query("SELECT * FROM posts WHERE user_id = $1", calls=100),
            Query("SELECT * FROM posts WHERE user_id = $1 AND blog_id = $2", calls=100),
        ]
    )
    assert chosen(sel) == ["public.posts (user_id, blog_id)"]
    assert any("served well enough" in r.reason for r in sel.rejected)


def test_per_table_budget_is_reported() -> None:
    sel, _ = choose(
        [Query("SELECT * FROM posts WHERE id = $1"), Query("SELECT * FROM posts WHERE score = $1")],
        max_new_per_table=1,
    )
    assert len(sel.chosen) == 1
    assert any(r.reason.startswith("budget") for r in sel.rejected)


def test_write_heavy_table_rejects_a_marginal_index() -> None:
    queries = [
        Query("SELECT * FROM posts WHERE score = $1", calls=1),
        Query("INSERT INTO posts (id, score) VALUES ($1, $2)", calls=10_000_000, rows=10_000_000),
    ]
    sel, _ = choose(queries)
    assert chosen(sel) == []
    assert any("write overhead" in r.reason for r in sel.rejected)


def test_improvement_threshold() -> None:
    tiny = table("tiny", 10, column("id"))
    sel, _ = choose(
        [Query("SELECT * FROM tiny WHERE id = $1")],
        snapshot(tiny),
        min_improvement=0.9,
        min_cost=0.0,
    )
    assert chosen(sel) == []
    assert any("below the 90% threshold" in r.reason for r in sel.rejected)


def test_already_cheap_statements_do_not_justify_an_index() -> None:
    tiny = table("tiny", 10, column("id"))
    sel, _ = choose([Query("SELECT * FROM tiny WHERE id = $1")], snapshot(tiny))
    assert chosen(sel) == []


def test_narrower_index_wins_a_near_tie() -> None:
    selective = table("t", 2e5, column("a", distinct=1e5), column("b", distinct=10))
    queries = [
        Query("SELECT * FROM t WHERE a = $1"),
        Query("SELECT * FROM t WHERE a = $1 AND b = $2"),
    ]
    sel, _ = choose(queries, snapshot(selective))
    assert chosen(sel) == ["public.t (a)"]


def test_cost_calls_are_cached() -> None:
    queries = [Query(f"SELECT * FROM posts WHERE user_id = $1 AND id > {i}") for i in range(3)]
    sel, oracle = choose(queries)
    first = oracle.calls
    assert sel.chosen and first > 0
    # Each (statement, index set) pair is planned once: asking again costs nothing.
    assert first <= 3 * (1 + 2 * len(sel.chosen) + 8) + 3 * 8
