"""A composite against the chosen parts it could replace: the rule, top-N detection, reasons."""

from __future__ import annotations

from dataclasses import replace

from app.engine.advisor.composite import Comparison, delivers_order, parts_of
from app.engine.advisor.scans import analyze
from app.engine.catalog import Catalog
from app.engine.model import Analyzed, Candidate, IndexKey, Query, Scan
from tests.fakes import column, snapshot, table
from tests.unit.engine.advisor.test_selection import choose, chosen

ORDERS = table(
    "orders",
    4e5,
    column("id"),
    column("customer_id", distinct=1e5),
    column("created_at"),
    column("total", distinct=1000),
)
LATEST = "SELECT id, total FROM orders WHERE customer_id = $1 ORDER BY created_at DESC LIMIT $2"


def cand(*keys: str, include: tuple[str, ...] = ()) -> Candidate:
    return Candidate(
        "public.orders",
        tuple(IndexKey(k.removesuffix(" DESC"), k.endswith(" DESC")) for k in keys),
        include=include,
    )


def scan(sql: str) -> Scan:
    result = analyze(Query(sql), Catalog(snapshot(ORDERS)))
    assert isinstance(result, Analyzed)
    return result.scans[0]


COMPOSITE, CUSTOMER, CREATED = (
    cand("customer_id", "created_at"),
    cand("customer_id"),
    cand("created_at"),
)
TIE = Comparison(COMPOSITE, (CUSTOMER,), (CUSTOMER,), 100.0, 100.0, 0.0, 0.0, top_n=0)


def test_a_composite_delivers_the_order_of_an_equality_plus_sort_limit() -> None:
    latest = scan(LATEST)
    assert delivers_order(COMPOSITE, latest)
    assert delivers_order(cand("customer_id", "created_at DESC"), latest)
    assert not delivers_order(CUSTOMER, latest)
    assert not delivers_order(CREATED, latest)  # customer_id would be a filter, not a bound
    assert not delivers_order(cand("created_at", "customer_id"), latest)
    assert not delivers_order(COMPOSITE, scan(LATEST.replace(" LIMIT $2", "")))
    ranged = (
        "SELECT id FROM orders WHERE customer_id = $1 AND total > $2 ORDER BY created_at LIMIT 5"
    )
    assert not delivers_order(COMPOSITE, scan(ranged))


def test_parts_are_narrower_chosen_picks_made_of_the_composites_keys() -> None:
    other = Candidate("public.other", (IndexKey("customer_id"),))
    wide = cand("customer_id", "total")
    assert parts_of(COMPOSITE, [CUSTOMER, CREATED, other, wide, COMPOSITE]) == (CUSTOMER, CREATED)
    assert parts_of(CUSTOMER, [CREATED]) == ()


def test_the_composite_wins_only_on_equal_benefit_more_net_and_a_structural_gain() -> None:
    assert not TIE.wins  # a near tie: the narrower index stays
    assert "near tie" in TIE.why()
    assert replace(TIE, benefit=101.0, top_n=1).wins
    assert replace(TIE, parts=(CUSTOMER, CREATED), replaced=(CUSTOMER, CREATED), write_parts=1).wins
    assert replace(TIE, write_parts=5.0, write=4.0).wins
    assert not replace(TIE, benefit=99.0, write_parts=50.0, top_n=1).wins
    assert "saves less" in replace(TIE, benefit=99.0, write_parts=50.0, top_n=1).why()
    costly = replace(TIE, benefit=101.0, write=10.0, top_n=1)
    assert not costly.wins and "write cost outweighs" in costly.why()
    assert not replace(TIE, replaced=(), benefit=101.0, top_n=1).wins


def test_the_reasons_name_both_options_benefit_and_write_cost() -> None:
    won = replace(
        TIE, parts=(CUSTOMER, CREATED), benefit=130.0, write=7.0, write_parts=6.0, top_n=1
    )
    reason = won.reason_for_part()
    assert reason.startswith(f"replaced by the composite {COMPOSITE.label()}")
    assert f"({CREATED.label()} kept either way)" in reason
    assert f"{COMPOSITE.label()} saves 130 cost units for a write cost of 7" in reason
    assert f"{CUSTOMER.label()} saves 100 for a write cost of 6" in reason
    assert reason.endswith("a top-N index scan instead of a sort for 1 statement")
    assert won.note().startswith(f"chosen instead of {CUSTOMER.label()}:")
    assert TIE.reason_for_composite().startswith("compared with the chosen parts, ")


def test_selection_replaces_customer_id_by_the_composite_and_keeps_the_range_index() -> None:
    queries = [
        Query(LATEST, calls=5000),
        Query("SELECT count(*) FROM orders WHERE customer_id = $1", calls=2000),
        Query("SELECT count(*) FROM orders WHERE created_at >= $1 AND created_at < $2", calls=300),
    ]
    sel, _ = choose(queries, snapshot(ORDERS))
    assert chosen(sel) == [
        "public.orders (customer_id, created_at)",
        "public.orders (created_at)",
    ]
    reasons = {r.candidate: r.reason for r in sel.rejected}
    assert reasons["public.orders (customer_id)"].startswith("replaced by the composite")
    assert sel.chosen[0].notes and sel.chosen[0].notes[0].startswith("chosen instead of")


def test_selection_keeps_customer_id_when_the_composite_costs_hot_updates() -> None:
    queries = [
        Query(LATEST, calls=5000),
        Query("SELECT count(*) FROM orders WHERE customer_id = $1", calls=2000),
        Query("UPDATE orders SET created_at = $1 WHERE id = $2", calls=50_000_000, rows=50_000_000),
    ]
    sel, _ = choose(queries, snapshot(ORDERS))
    assert "public.orders (customer_id)" in chosen(sel)
    reasons = {r.candidate: r.reason for r in sel.rejected}
    lost = reasons["public.orders (customer_id, created_at)"]
    assert lost.startswith("compared with the chosen parts, ")
    assert lost.endswith("its write cost outweighs what it saves more"), lost


def test_a_composite_that_could_only_tie_is_not_planned_and_says_why() -> None:
    t = table("t", 2e5, column("a", distinct=1e5), column("b", distinct=10))
    queries = [
        Query("SELECT * FROM t WHERE a = $1"),
        Query("SELECT * FROM t WHERE a = $1 AND b = $2"),
    ]
    sel, _ = choose(queries, snapshot(t))
    assert chosen(sel) == ["public.t (a)"]
    reasons = {r.candidate: r.reason for r in sel.rejected}
    assert reasons["public.t (a, b)"].startswith(
        "compared with the chosen public.t (a): it could replace one index at most, its write "
        "cost is no lower (0 vs 0 cost units) and it turns no sort into a top-N index scan"
    )
