"""The reproduction check: synthesized values against what pg_stat_statements saw."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from app.engine.model import Query, QuerySource
from app.engine.proof.confidence import create_confidence
from app.engine.proof.evidence import Evidence, Failed, StatementEvidence, Timing, balance
from app.engine.proof.reproduce import (
    Observed,
    describe,
    observed,
    representative,
    reproduces,
    unreproduced_share,
)
from tests.fakes import NOW, column, table

PGSS = QuerySource.pg_stat_statements
# Q6 as the workload ran it: 200 ms and one row (a sum) per call.
Q6 = Query("SELECT sum(x) FROM t WHERE d >= $1 AND d < $2", 10, 2_000.0, 10, "1", PGSS)
SEEN = Observed(200.0, 1.0)


def t(label: str, ms: float, rows: float = 1.0) -> Timing:
    return Timing(label, (ms, ms, ms * 1.02), 0, 0, rows)


def test_only_pg_stat_statements_entries_with_calls_and_time_are_checked() -> None:
    assert observed(Q6) == SEEN
    assert observed(dataclasses.replace(Q6, source=QuerySource.file)) is None
    assert observed(dataclasses.replace(Q6, calls=0)) is None
    assert observed(dataclasses.replace(Q6, total_ms=0.0)) is None


@pytest.mark.parametrize(
    ("ms", "rows", "expected"),
    [
        (200.0, 1.0, True),
        (101.0, 1.0, True),  # within 2× either way
        (399.0, 2.0, True),
        (99.0, 1.0, False),  # more than twice as fast: not the workload's statement
        (0.01, 0.0, False),  # the empty range of the TPC-H story
        (200.0, 3.0, False),  # rows off by 3×
    ],
)
def test_a_set_reproduces_within_twice_on_time_and_on_rows(
    ms: float, rows: float, expected: bool
) -> None:
    assert reproduces(SEEN, t("x", ms, rows)) is expected


def test_many_rows_per_call_only_a_much_slower_run_is_a_mismatch() -> None:
    rows = Observed(40.0, 50_000.0)  # sending 50,000 rows is in pg_stat_statements' time
    assert reproduces(rows, t("x", 5.0, 50_000.0))
    assert reproduces(rows, t("x", 80.0, 60_000.0))
    assert not reproduces(rows, t("x", 81.0, 50_000.0))
    assert not reproduces(rows, t("x", 5.0, 140_000.0))


def test_floors_keep_tiny_differences_from_counting() -> None:
    fast = Observed(0.02, 0.0)
    assert reproduces(fast, t("x", 0.05, 1.0))  # 0.02 vs 0.05 ms and 0 vs 1 row: floors
    assert not reproduces(fast, t("x", 0.2, 1.0))
    assert not reproduces(SEEN, Failed("x", "timed out", timed_out_ms=60_000.0))


def test_representative_sets_and_the_notes_say_what_was_seen() -> None:
    runs = [t("common", 180.0), t("typical", 0.01, 0.0), t("rare", 0.01, 0.0)]
    assert representative(SEEN, runs) == ("common",)
    note = describe(SEEN, runs, 0, ())
    assert note.startswith(
        "not reproduced: pg_stat_statements saw 200.0 ms and 1.0 rows per call, and none of "
        "the 3 synthesized parameter sets came within 2×"
    )
    assert "typical 0.010 ms, 0 rows" in note
    kept = describe(SEEN, runs, 6, ("wide-1", "wide-2"))
    assert "6 more were drawn" in kept and "worst of those that did (wide-1, wide-2)" in kept


def q6(*, reproduced: bool | None, representative: tuple[str, ...] = ()) -> StatementEvidence:
    """Wide ranges 1.6× slower with the index, the empty one 2,000× faster (TPC-H's story)."""
    return StatementEvidence(
        Q6,
        False,
        before=(t("wide", 200.0), t("empty", 190.0)),
        after=(t("wide", 320.0), t("empty", 0.1)),
        reproduced=reproduced,
        representative=representative,
    )


def test_the_statement_is_judged_on_its_worst_representative_set() -> None:
    unchecked = Evidence("target", (q6(reproduced=None),))
    assert balance(unchecked).speedup > 0.1  # the mean over sets hides the regression
    judged = Evidence("target", (q6(reproduced=True, representative=("wide", "empty")),))
    assert judged.statements[0].ms() == (200.0, 320.0)
    assert balance(judged).speedup == pytest.approx(-0.6)


def test_unreproduced_statements_cost_confidence_by_their_share_of_time() -> None:
    other = dataclasses.replace(Q6, text="SELECT 1 FROM t WHERE d = $1", total_ms=2_000.0)
    fine = StatementEvidence(other, False, before=(t("a", 10.0),), after=(t("a", 1.0),))
    missed = StatementEvidence(
        Q6, False, before=(t("a", 10.0),), after=(t("a", 1.0),), reproduced=False
    )
    assert unreproduced_share(Evidence("target", (fine, missed))) == pytest.approx(0.5)
    assert unreproduced_share(Evidence("target", (fine, missed), skipped="lock")) == 0.0
    orders = table("t", 1e5, column("d"), last_analyze=NOW - timedelta(hours=1))

    def score(*statements: StatementEvidence) -> tuple[float, dict[str, float]]:
        conf = create_confidence(
            Evidence("target", statements),
            workload_share=1.0,
            table=orders,
            now=NOW,
            writes_table=False,
        )
        assert abs(sum(conf.breakdown.values()) - conf.score) < 1e-3
        return conf.score, conf.breakdown

    full, parts = score(fine, dataclasses.replace(missed, reproduced=True))
    assert "unreproduced" not in parts and full >= 0.9
    half, parts = score(fine, missed)
    assert parts["unreproduced"] == pytest.approx(-0.25) and half == pytest.approx(full - 0.25)
    none, parts = score(dataclasses.replace(fine, reproduced=False), missed)
    assert parts["unreproduced"] == pytest.approx(-0.5) and none < 0.8
