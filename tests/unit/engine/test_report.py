"""Coverage reasons in a report never lean on an index the same report drops."""

from __future__ import annotations

from app.engine.model import Query, Recommendation, Rejection, recommendation_id
from app.engine.proof.evidence import Evidence, StatementEvidence, Timing
from app.engine.report import Report, settle_coverage
from app.engine.verdict import assess
from tests.fakes import NOW, column, snapshot, table

COVERED = Rejection(
    "public.orders (status)",
    "covered by existing index orders_status_dup_idx",
    ("public.orders_status_dup_idx", "public.orders_status_idx"),
)
OTHER = Rejection("public.orders (id)", "the planner would not use it for any statement")


def drop(name: str, rule: str = "duplicate_index") -> Recommendation:
    return Recommendation(
        "drop_index",
        "public.orders",
        ("status",),
        name,
        f"DROP INDEX CONCURRENTLY IF EXISTS public.{name}",
        rule=rule,
    )


def test_nothing_dropped_keeps_the_reason() -> None:
    assert settle_coverage([COVERED, OTHER], []) == (COVERED, OTHER)
    # Dropping an index that is not the one named changes nothing either.
    assert settle_coverage([COVERED], [drop("orders_status_idx")]) == (COVERED,)


def test_the_twin_that_stays_is_named() -> None:
    (settled,) = settle_coverage([COVERED], [drop("orders_status_dup_idx")])
    assert settled.reason == (
        "covered by existing index orders_status_idx, which stays (orders_status_dup_idx "
        "covers it too, but this report drops it)"
    )
    assert settled.covered_by == COVERED.covered_by  # settling again starts from the facts
    assert settle_coverage([settled], []) == (COVERED,)


def test_no_cover_left_is_said_plainly() -> None:
    alone = Rejection(
        "public.orders (status)",
        "covered by existing index orders_status_old",
        ("public.orders_status_old",),
    )
    (settled,) = settle_coverage([alone], [drop("orders_status_old", "unused_index")])
    assert settled.reason == (
        "covered today only by existing index orders_status_old, which this report drops as "
        "unused; no index that stays covers it, and it was not weighed on its own: audit "
        "again once the drop is applied"
    )


def test_a_drop_that_proof_refutes_no_longer_excuses_the_rejection() -> None:
    snap = snapshot(
        table("orders", 1e5, column("id"), column("status", "text"), last_analyze=NOW),
    )
    dup = drop("orders_status_dup_idx")
    before = settle_coverage([COVERED], [dup])
    report = Report(snap, 1, (), (), (dup,), before, "fake", 0)
    read = Query("SELECT * FROM orders WHERE status = $1", calls=10)
    slower = StatementEvidence(
        read,
        False,
        before=(Timing("common", (1.0, 1.0, 1.0), 1, 0, 1.0),),
        after=(Timing("common", (9.0, 9.0, 9.0), 1, 0, 1.0),),
    )
    result = assess(report, {recommendation_id(dup): Evidence("sandbox", (slower,))}, now=NOW)
    assert result.recommendations == ()
    assert result.rejected[0].reason == "covered by existing index orders_status_dup_idx"
    assert result.rejected[1].candidate == "drop orders_status_dup_idx"
