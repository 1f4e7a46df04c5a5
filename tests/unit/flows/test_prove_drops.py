"""Drops on the target: HypoPG 1.4+ hides the index (no lock), older HypoPG drops it, rolled back.

The target is a fake session that answers like PostgreSQL with HypoPG: it records every
statement, and its plans use the duplicate until it is hidden, then its twin.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

import pytest
from psycopg import sql

from app.adapters.errors import TargetQueryError
from app.adapters.target_pg import Target
from app.adapters.validate import Budget
from app.engine.advisor.audit import audit
from app.engine.model import Index, Query, recommendation_id
from app.engine.proof.twin import DROPPED, HIDDEN, PLANS_ONLY, can_hide, drop_method
from app.engine.report import Report
from app.engine.verdict import assess
from app.flows.audit_target import ON_TARGET, ValidationSpec, prove
from tests.fakes import NOW, FakeOracle, column, snapshot, table

KEEP = Index("public", "sessions_user_idx", "public.sessions", ("user_id",), scans=40)
DUP = Index("public", "sessions_user_id_again", "public.sessions", ("user_id",), scans=9)
SNAP = dataclasses.replace(
    snapshot(
        table("sessions", 1e6, column("id"), column("user_id", distinct=5000), last_analyze=NOW),
        indexes=(KEEP, DUP),
    ),
    hypopg=True,
)
WORKLOAD = "SELECT id FROM sessions WHERE user_id = 42"


def _plan(index: str, ms: float) -> list[dict[str, Any]]:
    node = {"Node Type": "Index Scan", "Index Name": index, "Total Cost": 80.0, "Actual Rows": 5}
    return [{"QUERY PLAN": [{"Plan": node, "Execution Time": ms}]}]


class FakeTarget:
    """Just enough of :class:`Target` for validation, with HypoPG at ``version``."""

    def __init__(self, version: str, *, fail_after_hide: bool = False) -> None:
        self.version = version
        self.fail_after_hide = fail_after_hide
        self.sent: list[str] = []
        self.hidden = False
        self.in_transaction = False

    def _text(self, query: object) -> str:
        text = query if isinstance(query, str) else cast(sql.Composable, query).as_string(None)
        self.sent.append(text)
        return text

    def rows(self, query: object, params: object = None) -> list[dict[str, Any]]:
        text = self._text(query)
        if "pg_extension" in text:
            return [{"schema": "public", "version": self.version}]
        if "hypopg_hide_index" in text:
            self.hidden = True
            return [{"hidden": True}]
        if "hypopg_unhide_all_indexes" in text:
            self.hidden = False
            return [{"unhidden": None}]
        if text.startswith("EXPLAIN"):
            return self._explain()
        return []

    def _explain(self) -> list[dict[str, Any]]:
        """The plan: the duplicate while it is there, its twin once hidden (or dropped)."""
        if self.hidden and self.fail_after_hide:
            raise TargetQueryError("canceling statement", sqlstate="XX000")
        return _plan(KEEP.name if self.hidden else DUP.name, 0.05)

    def one(self, query: object, params: object = None) -> dict[str, Any]:
        return self.rows(query, params)[0]

    def script(self, statements: Sequence[object]) -> list[dict[str, Any]]:
        texts = [self._text(s) for s in statements]
        if any(t.startswith("DROP INDEX") for t in texts):
            self.hidden = True  # until the rollback
        if any(t.startswith("EXPLAIN") for t in texts):
            return self._explain()
        return []

    @contextmanager
    def read_write_transaction(self, *, read_only: bool = False, **_: int) -> Iterator[None]:
        self.sent.append("BEGIN READ ONLY" if read_only else "BEGIN READ WRITE")
        self.in_transaction = True
        try:
            yield
        finally:
            self.in_transaction = False
            self.sent.append("ROLLBACK")
            if not can_hide(self.version):
                self.hidden = False  # the rolled-back drop


def _report() -> Report:
    return audit(SNAP, [Query(WORKLOAD, calls=100)], FakeOracle(SNAP), now=NOW)


def _prove(target: FakeTarget, report: Report) -> dict[str, Any]:
    spec = ValidationSpec(on_target=True, budget=Budget(runs=3, warmup=0))
    return dict(prove(report, cast(Target, target), ON_TARGET, spec))


@pytest.mark.parametrize(
    ("version", "exact", "method"),
    [
        ("1.4.0", True, HIDDEN),
        ("1.4.1", False, HIDDEN),  # hiding measures any drop, not only duplicates
        ("2.0", True, HIDDEN),
        ("1.10.2", True, HIDDEN),
        ("1.3.1", True, PLANS_ONLY),  # Debian bookworm
        ("1.3.1", False, None),
        (None, True, PLANS_ONLY),
        ("garbage", False, None),
    ],
)
def test_the_drop_method_follows_the_hypopg_version(
    version: str | None, exact: bool, method: str | None
) -> None:
    assert drop_method(on_sandbox=False, hypopg_version=version, exact=exact) == method
    assert can_hide(version) is (method == HIDDEN)
    assert drop_method(on_sandbox=True, hypopg_version=version, exact=exact) == DROPPED


def test_hypopg_1_4_hides_the_duplicate_plans_without_it_and_unhides() -> None:
    report = _report()
    (rec,) = [r for r in report.recommendations if r.action == "drop_index"]
    assert rec.index_name == DUP.name
    target = FakeTarget("1.4.0")
    evidence = _prove(target, report)
    ev = evidence[recommendation_id(rec)]
    assert ev.skipped is None and ev.drop_method == HIDDEN
    assert not any("DROP INDEX" in s for s in target.sent)  # no lock taken
    assert "BEGIN READ ONLY" in target.sent and "BEGIN READ WRITE" not in target.sent
    hide = next(i for i, s in enumerate(target.sent) if "hypopg_hide_index" in s)
    unhide = next(i for i, s in enumerate(target.sent) if "hypopg_unhide_all_indexes" in s)
    assert "'public.sessions_user_id_again'" in target.sent[hide]
    assert hide < target.sent.index("ROLLBACK") < unhide and not target.hidden
    # HypoPG hides from plain EXPLAIN only: nothing is run under EXPLAIN ANALYZE.
    assert not any(s.startswith("EXPLAIN (ANALYZE") for s in target.sent)
    assert [(c.before, c.after) for c in ev.plans] == [
        (frozenset({DUP.name}), frozenset({KEEP.name}))
    ]
    judged = assess(report, evidence, now=NOW)
    (kept,) = [r for r in judged.recommendations if r.action == "drop_index"]
    assessment = judged.assessments[recommendation_id(kept)]
    assert assessment.confidence.eligible, assessment.confidence
    assert any("hidden index" in r and KEEP.name in r for r in kept.reasons), kept.reasons


def test_the_index_is_unhidden_even_when_planning_fails() -> None:
    report = _report()
    target = FakeTarget("1.4.0", fail_after_hide=True)
    evidence = _prove(target, report)
    (ev,) = evidence.values()
    assert ev.drop_method == HIDDEN and ev.skipped and not ev.plans
    assert any("hypopg_unhide_all_indexes" in s for s in target.sent) and not target.hidden
    judged = assess(report, evidence, now=NOW)
    (kept,) = [r for r in judged.recommendations if r.action == "drop_index"]
    assert not judged.assessments[recommendation_id(kept)].confidence.eligible


class NeverHides(FakeTarget):
    """HypoPG says it hid the index, yet the planner still uses it."""

    def rows(self, query: object, params: object = None) -> list[dict[str, Any]]:
        found = super().rows(query, params)
        self.hidden = False
        return found


def test_plans_that_still_use_the_hidden_index_prove_nothing() -> None:
    report = _report()
    evidence = _prove(NeverHides("1.4.0"), report)
    judged = assess(report, evidence, now=NOW)
    (kept,) = [r for r in judged.recommendations if r.action == "drop_index"]
    assessment = judged.assessments[recommendation_id(kept)]
    assert assessment.evidence is not None and assessment.evidence.skipped
    assert "still used it" in assessment.evidence.skipped
    assert not assessment.confidence.eligible


def test_hypopg_1_3_takes_the_plans_only_fallback() -> None:
    report = _report()
    target = FakeTarget("1.3.1")
    evidence = _prove(target, report)
    (ev,) = evidence.values()
    assert ev.drop_method == PLANS_ONLY
    assert not any("hypopg_hide_index" in s for s in target.sent)
    drop = next(s for s in target.sent if "DROP INDEX" in s)
    assert "CONCURRENTLY" not in drop and "sessions_user_id_again" in drop
    assert not any(s.startswith("EXPLAIN (ANALYZE") for s in target.sent)  # never executed
    assert target.sent.index("ROLLBACK") > target.sent.index(drop)
    assert [c.after for c in ev.plans] == [frozenset({KEEP.name})]
    judged = assess(report, evidence, now=NOW)
    (kept,) = [r for r in judged.recommendations if r.action == "drop_index"]
    assert judged.assessments[recommendation_id(kept)].confidence.eligible
    assert any("for the planning only" in r for r in kept.reasons), kept.reasons
