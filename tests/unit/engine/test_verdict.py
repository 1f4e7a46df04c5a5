"""Proof before proposal: which statements to measure, and assess() on a hand-built report."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from app.engine.advisor.scans import analyze
from app.engine.catalog import Catalog
from app.engine.model import (
    Analyzed,
    Query,
    QueryEffect,
    QuerySource,
    Recommendation,
    Rejection,
    recommendation_id,
)
from app.engine.proof.evidence import Evidence, StatementEvidence, Timing
from app.engine.proof.measured import NOT_ASSESSED
from app.engine.proof.method import Cause, Measurement, Method
from app.engine.report import Report
from app.engine.verdict import Affected, ProofConfig, affected, assess, workload_share
from tests.fakes import NOW, column, snapshot, table

SNAP = snapshot(
    table(
        "orders",
        1e5,
        column("id"),
        column("customer_id", distinct=5000),
        column("status", "text", distinct=5),
        column("email", "text"),
        last_analyze=NOW - timedelta(hours=1),
    ),
    table("users", 10, column("id"), last_analyze=NOW - timedelta(hours=1)),
)
R2 = Query("SELECT id FROM orders WHERE status = $1 AND customer_id = $2", 10, 100.0)
R1 = Query("SELECT * FROM orders WHERE customer_id = $1", 100, 600.0)
R3 = Query("SELECT * FROM orders WHERE email = $1", 5, 50.0)
W1 = Query("INSERT INTO orders (id, customer_id) VALUES ($1, $2)", 1000, 200.0)
W2 = Query("UPDATE orders SET status = $1 WHERE customer_id = $2", 20, 40.0)
U = Query("SELECT * FROM users WHERE id = $1", 1, 10.0)
QUERIES = (R2, R1, R3, W1, W2, U)  # total 1000 ms


def analyzed(queries: tuple[Query, ...] = QUERIES) -> tuple[Analyzed, ...]:
    catalog = Catalog(SNAP)
    out = tuple(analyze(q, catalog) for q in queries)
    assert all(isinstance(a, Analyzed) for a in out)
    return out  # type: ignore[return-value]


def rec(
    action: str,
    columns: tuple[str, ...],
    *effects: QueryEffect,
    tbl: str = "orders",
    rule: str = "workload",
    extra: dict[str, float] | None = None,
) -> Recommendation:
    name = f"{tbl}_{'_'.join(columns)}_idx"
    return Recommendation(
        action, f"public.{tbl}", columns, name, "--", effects=effects, rule=rule, extra=extra or {}
    )


def timing(ms: float) -> Timing:
    return Timing("common", (ms, ms, ms * 1.05), 0, 0, 1.0)


def measured(
    query: Query, before: float, after: float, costs: tuple[float, float] | None = None
) -> StatementEvidence:
    cost_before, cost_after = costs or (None, None)
    return StatementEvidence(
        query,
        query.text.startswith("INSERT"),
        cost_before,
        cost_after,
        before=(timing(before),),
        after=(timing(after),),
    )


def texts(targets: list[Affected]) -> list[tuple[str, bool]]:
    return [(a.statement.query.text, a.write) for a in targets]


def test_effects_give_the_reads_then_writes_by_calls() -> None:
    r = rec("create_index", ("customer_id",), QueryEffect(R1, 900, 9), QueryEffect(W2, 30, 3))
    targets = affected(r, analyzed())
    assert texts(targets) == [(R1.text, False), (W1.text, True), (W2.text, True)]
    assert (targets[0].cost_before, targets[0].cost_after) == (900, 9)


def test_finding_reads_through_the_leading_column_heaviest_first() -> None:
    writes = [(W1.text, True), (W2.text, True)]
    create = rec("create_index", ("status", "customer_id"))  # only R2 filters on status
    assert texts(affected(create, analyzed())) == [(R2.text, False), *writes]
    drop = rec("drop_index", ("status", "customer_id"))  # a drop: any of its columns
    assert texts(affected(drop, analyzed())) == [(R1.text, False), (R2.text, False), *writes]
    assert texts(affected(rec("drop_index", ("email",)), analyzed())) == [(R3.text, False), *writes]


def test_caps() -> None:
    config = ProofConfig(max_reads=1, max_writes=1)
    targets = affected(rec("drop_index", ("status", "customer_id")), analyzed(), config)
    assert texts(targets) == [(R1.text, False), (W1.text, True)]


def test_workload_share_by_time_then_by_calls() -> None:
    r = rec("create_index", ("customer_id",), QueryEffect(R1, 9, 1), QueryEffect(R2, 9, 1))
    assert workload_share(affected(r, analyzed()), analyzed()) == pytest.approx(0.7)
    untimed = analyzed(tuple(dataclasses.replace(q, total_ms=0.0) for q in QUERIES))
    assert workload_share(affected(r, untimed), untimed) == pytest.approx(110 / 1136)
    assert workload_share([], []) == 0.0


GOOD = rec("create_index", ("customer_id",), QueryEffect(R1, 1000, 100))
BAD = rec("create_index", ("status",), QueryEffect(R2, 1000, 100))
UNUSED = rec("drop_index", ("email",), rule="unused_index", extra={"window_days": 45.0})
PRIOR = Rejection("public.users (id)", "already indexed")
REPORT = Report(SNAP, 6, analyzed(), (), (GOOD, BAD, UNUSED), (PRIOR,), "fake", 0)
GOOD_EV = Evidence("sandbox", (measured(R1, 10, 1, (1000, 100)), measured(W1, 1, 1)))


def test_assess_rejects_what_measurements_refute_and_scores_the_rest() -> None:
    bad_ev = Evidence("sandbox", (measured(R2, 10, 20),))
    ids = {r: recommendation_id(r) for r in (GOOD, BAD, UNUSED)}
    result = assess(REPORT, {ids[GOOD]: GOOD_EV, ids[BAD]: bad_ev}, now=NOW)
    assert result.recommendations == (GOOD, UNUSED)
    assert result.rejected[0] == PRIOR
    assert result.rejected[1].candidate == "public.orders (status)"
    assert result.rejected[1].reason.startswith(
        f"measured regression (more than the 10% allowed): '{R2.text}' with common values: "
        "10.0 ms → 20.0 ms p50"
    )
    assert set(result.assessments) == {ids[GOOD], ids[UNUSED]}
    good = result.assessments[ids[GOOD]]
    assert good.evidence is GOOD_EV
    assert good.confidence.score == pytest.approx(1.0) and good.confidence.eligible
    unused = result.assessments[ids[UNUSED]]  # unmeasured: finding 0.5 + freshness 0.2
    assert unused.evidence is None
    assert unused.confidence.score == pytest.approx(0.7) and not unused.confidence.eligible
    assert len(REPORT.recommendations) == 3 and not REPORT.assessments  # input unchanged


def test_assess_rejects_a_drop_the_workload_needs() -> None:
    needed = Evidence("sandbox", (measured(R3, 1, 40),))
    result = assess(REPORT, {recommendation_id(UNUSED): needed}, now=NOW)
    assert result.recommendations == (GOOD, BAD)
    (rejection,) = result.rejected[1:]
    assert rejection.candidate == "drop orders_email_idx"
    assert rejection.reason.startswith("the workload still needs it: without it")


def test_assess_passes_threshold_and_write_knowledge() -> None:
    user = rec("create_index", ("id",), QueryEffect(U, 50, 5), tbl="users")
    reads_only = Evidence("sandbox", (measured(R1, 10, 1),))
    report = dataclasses.replace(REPORT, recommendations=(GOOD, user))
    evidence = {
        recommendation_id(GOOD): reads_only,
        recommendation_id(user): Evidence("sandbox", (measured(U, 10, 1),)),
    }
    result = assess(report, evidence, now=NOW, config=ProofConfig(min_confidence=0.95))
    good, users = (result.assessments[recommendation_id(r)].confidence for r in (GOOD, user))
    assert good.threshold == users.threshold == 0.95
    assert good.breakdown["write_overhead"] == 0.0  # orders is written, but no write was measured
    assert users.breakdown["write_overhead"] == pytest.approx(0.15)  # users is never written


def test_skipped_evidence_is_kept_but_not_eligible() -> None:
    skipped = Evidence("target", (measured(R1, 10, 50),), skipped="lock wait beyond the budget")
    result = assess(REPORT, {recommendation_id(GOOD): skipped}, now=NOW)
    assert GOOD in result.recommendations
    conf = result.assessments[recommendation_id(GOOD)].confidence
    assert conf.breakdown["measured_speedup"] == 0.0 and not conf.eligible


def test_every_assessment_says_how_it_was_measured() -> None:
    why = Measurement(Method.estimate_only, Cause.mode, "the repository chose estimates only")
    ids = {r: recommendation_id(r) for r in (GOOD, BAD, UNUSED)}
    result = assess(REPORT, {ids[GOOD]: GOOD_EV}, now=NOW, unmeasured=why)
    good = result.assessments[ids[GOOD]].measured
    assert good == Measurement(Method.sandbox, None, None, 2, 2)
    for rid in (ids[BAD], ids[UNUSED]):  # no evidence: the caller's reason, as given
        assert result.assessments[rid].measured == why
    stopped = Evidence("target", skipped="lock wait: busy", cause=Cause.lock_wait)
    result = assess(REPORT, {ids[GOOD]: stopped}, now=NOW)
    assert result.assessments[ids[GOOD]].measured == Measurement(
        Method.estimate_only, Cause.lock_wait, "lock wait: busy", 0, 0
    )
    assert result.assessments[ids[BAD]].measured == NOT_ASSESSED  # nobody said why


def test_a_refuted_index_is_named_with_its_sort_direction() -> None:
    mixed = dataclasses.replace(BAD, columns=("status", "customer_id"), descending=(False, True))
    report = dataclasses.replace(REPORT, recommendations=(mixed,), rejected=())
    slower = Evidence("sandbox", (measured(R2, 10, 20),))
    result = assess(report, {recommendation_id(mixed): slower}, now=NOW)
    (rejection,) = result.rejected
    assert rejection.candidate == "public.orders (status, customer_id DESC)"


def test_a_recommendation_whose_measurements_do_not_reproduce_the_workload_says_so() -> None:
    seen = dataclasses.replace(R1, source=QuerySource.pg_stat_statements)
    unreproduced = dataclasses.replace(measured(R1, 10, 1, (1000, 100)), reproduced=False)
    ev = Evidence("sandbox", (dataclasses.replace(unreproduced, query=seen),))
    result = assess(REPORT, {recommendation_id(GOOD): ev}, now=NOW)
    (kept,) = [r for r in result.recommendations if r.columns == GOOD.columns]
    conf = result.assessments[recommendation_id(GOOD)].confidence
    assert conf.breakdown["unreproduced"] == pytest.approx(-0.5) and not conf.eligible
    assert kept.reasons[-1].startswith(
        "Confidence lowered by 50%: for 1 of the measured statements no synthesized parameter set"
    )
    assert "2×" in kept.reasons[-1]
