"""Exact-duplicate drops: the HypoPG version decides the method, the plans decide the twin."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from app.engine.advisor.rules.config import RuleConfig
from app.engine.advisor.rules.duplicate_index import duplicate_index
from app.engine.model import Index, Query, recommendation_id
from app.engine.proof.evidence import Evidence, PlanCheck, StatementEvidence, Timing, drop_verdict
from app.engine.proof.twin import (
    DROPPED,
    HIDDEN,
    PLANS_ONLY,
    can_hide,
    drop_method,
    plan_checks,
    twin_verdict,
    version_tuple,
)
from app.engine.report import Report
from app.engine.verdict import assess, twin_of
from tests.fakes import NOW, column, snapshot, table

Q = Query("SELECT id FROM sessions WHERE user_id = $1", calls=50)
DUP, KEEP = "sessions_user_id_again", "sessions_user_idx"


def check(before: set[str], after: set[str], cost: tuple[float, float] = (8.0, 8.0)) -> PlanCheck:
    return PlanCheck(Q, "common", frozenset(before), frozenset(after), *cost)


def plans(*checks: PlanCheck, skipped: str | None = None) -> Evidence:
    read = StatementEvidence(Q, False, notes=("planned only",))
    return Evidence("target", (read,), skipped=skipped, drop_method=PLANS_ONLY, plans=checks)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1.3.1", False), ("1.4.0", True), ("1.4", True), ("1.10.0", True), ("2.0.0dev", True)],
)
def test_hypopg_versions_that_can_hide(text: str, expected: bool) -> None:
    assert can_hide(text) is expected
    assert version_tuple(text) is not None


def test_unknown_versions_never_hide() -> None:
    assert not can_hide(None) and not can_hide("") and not can_hide("beta")


def test_the_method_per_place_and_version() -> None:
    assert drop_method(on_sandbox=True, hypopg_version="1.4.0", exact=True) == DROPPED
    assert drop_method(on_sandbox=False, hypopg_version="1.4.0", exact=False) == HIDDEN
    assert drop_method(on_sandbox=False, hypopg_version="1.3.1", exact=True) == PLANS_ONLY
    assert drop_method(on_sandbox=False, hypopg_version="1.3.1", exact=False) is None


def test_the_twin_serves_when_every_plan_that_used_either_uses_it() -> None:
    ev = plans(check({DUP}, {KEEP}), check({KEEP}, {KEEP}), check(set(), set(), (90.0, 90.0)))
    assert twin_verdict(ev, DUP, KEEP, tolerance=0.1) == (None, 1)


@pytest.mark.parametrize(
    ("evidence", "why"),
    [
        (plans(check({DUP}, set(), (8.0, 900.0))), "does not use"),
        (plans(check({DUP}, {DUP})), "still in the plan"),
        (plans(check({DUP}, {KEEP}, (8.0, 12.0))), "estimated cost rises"),
        (plans(), "could not be planned"),
        (plans(check({DUP}, {KEEP}), skipped="lock wait"), "lock wait"),
    ],
)
def test_the_twin_does_not_serve(evidence: Evidence, why: str) -> None:
    reason, _ = twin_verdict(evidence, DUP, KEEP, tolerance=0.1)
    assert reason is not None and why in reason


def _plan(index: str, cost: float) -> dict[str, Any]:
    return {"Plan": {"Node Type": "Index Scan", "Index Name": index, "Total Cost": cost}}


def test_timed_runs_give_their_plans_too() -> None:
    before = Timing("common", (1.0, 1.0, 1.0), 3, 0, 1.0, _plan(DUP, 8.0))
    after = Timing("common", (1.0, 1.0, 1.1), 3, 0, 1.0, _plan(KEEP, 8.0))
    ev = Evidence("sandbox", (StatementEvidence(Q, False, before=(before,), after=(after,)),))
    assert plan_checks(ev) == [check({DUP}, {KEEP})]
    assert twin_verdict(ev, DUP, KEEP, tolerance=0.1) == (None, 1)


def test_a_plan_whose_cost_rises_rejects_the_drop() -> None:
    assert drop_verdict(plans(check({DUP}, {KEEP}))) is None
    why = drop_verdict(plans(check({DUP}, set(), (8.0, 2_000.0))))
    assert why is not None and "still needs it" in why and "2,000.0" in why


def _duplicates() -> Report:
    snap = snapshot(
        table("sessions", 1e5, column("id"), column("user_id"), last_analyze=NOW),
        indexes=(
            Index("public", "sessions_pkey", "public.sessions", ("id",), primary=True,
                  unique=True, constraint="sessions_pkey"),
            Index("public", "sessions_id_copy", "public.sessions", ("id",), unique=True),
            Index("public", KEEP, "public.sessions", ("user_id",), scans=12),
            Index("public", DUP, "public.sessions", ("user_id",), scans=30),
        ),
    )  # fmt: skip
    recs = tuple(duplicate_index(snap, now=NOW, config=RuleConfig()))
    return Report(snap, 1, (), (), recs, (), "fake", 0)


def test_the_twin_is_the_index_that_stays_and_a_constraint_index_is_never_dropped() -> None:
    report = _duplicates()
    twins = {r.index_name: twin_of(report.snapshot, r) for r in report.recommendations}
    assert {k: v.name if v else None for k, v in twins.items()} == {
        "sessions_id_copy": "sessions_pkey",
        DUP: KEEP,
    }


def test_assess_lets_a_proven_duplicate_reach_the_bar_and_holds_the_rest() -> None:
    report = _duplicates()
    rec = next(r for r in report.recommendations if r.index_name == DUP)
    rid = recommendation_id(rec)
    proven = assess(report, {rid: plans(check({DUP}, {KEEP}))}, now=NOW)
    kept = next(r for r in proven.recommendations if r.index_name == DUP)
    conf = proven.assessments[rid].confidence
    assert conf.eligible and conf.breakdown["measured_safety"] == 0.3
    assert any("for the planning only" in r and "12 scans" in r for r in kept.reasons)
    unproven = assess(report, {rid: plans(check({DUP}, {"other_idx"}))}, now=NOW)
    conf = unproven.assessments[rid].confidence
    assert not conf.eligible and conf.breakdown["measured_safety"] == 0
    # Without any evidence the finding alone stays below the bar, as before.
    assert not assess(report, {}, now=NOW).assessments[rid].confidence.eligible


def test_a_covered_index_is_not_proven_by_plans() -> None:
    """Only an exact duplicate is safe by construction; a covered index needs timings."""
    report = _duplicates()
    rec = dataclasses.replace(
        next(r for r in report.recommendations if r.index_name == DUP),
        extra={"exact": 0.0},
        twin=None,
    )
    report = dataclasses.replace(report, recommendations=(rec,))
    rid = recommendation_id(rec)
    judged = assess(report, {rid: plans(check({DUP}, {KEEP}))}, now=NOW)
    assert judged.assessments[rid].confidence.breakdown["measured_safety"] == 0
