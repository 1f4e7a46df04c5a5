"""Measured evidence: timing statistics, pairing, regressions, the balance and the verdicts."""

from __future__ import annotations

import pytest

from app.engine.model import Query
from app.engine.proof.evidence import (
    Evidence,
    EvidenceConfig,
    Failed,
    Run,
    StatementEvidence,
    Timing,
    balance,
    create_verdict,
    drop_verdict,
    estimated_gain,
    plan_index_names,
    regressions,
    weighted_noise_margin,
)

Costs = tuple[float | None, float | None]
Runs = Timing | tuple[Run, ...]
Stmt = StatementEvidence


def t(*ms: float, label: str = "common") -> Timing:
    return Timing(label, ms, shared_hit=7, shared_read=3, rows=1.0)


def stmt(
    text: str,
    before: Runs,
    after: Runs,
    *,
    calls: int = 1,
    write: bool = False,
    costs: Costs = (None, None),
) -> StatementEvidence:
    return StatementEvidence(
        Query(text, calls=calls),
        write,
        cost_before=costs[0],
        cost_after=costs[1],
        before=before if isinstance(before, tuple) else (before,),
        after=after if isinstance(after, tuple) else (after,),
    )


def read(before: Runs, after: Runs, calls: int = 1, costs: Costs = (None, None)) -> Stmt:
    text = "SELECT * FROM orders WHERE customer_id = $1"
    return stmt(text, before, after, calls=calls, costs=costs)


def write(before: Runs, after: Runs, calls: int = 1, costs: Costs = (None, None)) -> Stmt:
    text = "INSERT INTO orders (id, customer_id) VALUES ($1, $2)"
    return stmt(text, before, after, calls=calls, write=True, costs=costs)


def ev(*statements: StatementEvidence, skipped: str | None = None) -> Evidence:
    return Evidence("sandbox", statements, skipped=skipped)


def test_config_defaults() -> None:
    assert EvidenceConfig() == EvidenceConfig(0.10, 0.05, 0.20)


def test_timing_statistics() -> None:
    timing = t(5.0, 1.0, 3.0, 2.0, 4.0)
    assert (timing.p50, timing.p95, timing.fastest) == (3.0, 5.0, 1.0)  # p95: slowest of < 20
    assert timing.spread == pytest.approx(4 / 3)
    assert timing.buffers == 10
    assert t(*range(1, 21)).p95 == 19  # 20 runs: the 19th, not the slowest
    assert t(0.0, 0.0).spread == 0.0


def test_pair_ratio_and_noise() -> None:
    (pair,) = read(t(10, 10, 12), t(5, 6, 5)).pairs()
    assert pair.ratio == 0.5
    assert pair.noise_ms == 2.0  # the wider of 12 − 10 and 6 − 5
    (zero,) = read(t(0, 0), t(1, 1)).pairs()
    assert zero.ratio == 1.0


def test_pairs_match_by_label_and_skip_failures() -> None:
    before = (t(10, label="common"), t(30, label="rare"), t(1, label="odd"), t(2, label="solo"))
    after = (t(3, label="rare"), t(1, label="common"), Failed("odd", "lock wait"))
    s = stmt("SELECT 1", before, after)
    assert [(p.label, p.before.p50, p.after.p50) for p in s.pairs()] == [
        ("common", 10, 1),
        ("rare", 30, 3),
    ]
    assert s.measured and s.ms() == (20.0, 2.0)
    assert s.failures() == [Failed("odd", "lock wait")]
    unmeasured = stmt("SELECT 1", t(1), (Failed("common", "timeout"),))
    assert not unmeasured.measured and unmeasured.ms() is None


def test_reads_and_writes() -> None:
    r, w = read(t(1), t(1)), write(t(1), t(1))
    evidence = ev(w, r)
    assert evidence.reads() == [r] and evidence.writes() == [w]


@pytest.mark.parametrize(
    ("before", "after", "slower"),
    [
        ((10, 10, 10), (12, 12, 12), True),
        ((10, 10, 10), (11, 11, 11), False),  # exactly 10 % slower is allowed
        ((10, 10, 14), (12, 12, 13), False),  # fastest after (12) within the p95 before (14)
        ((0.1, 0.1, 0.1), (0.14, 0.14, 0.14), False),  # 40 % slower, but 0.04 ms < floor
        ((0.1, 0.1, 0.1), (0.16, 0.16, 0.16), True),  # 0.06 ms: above the floor
    ],
)
def test_regression_boundaries(
    before: tuple[float, ...], after: tuple[float, ...], slower: bool
) -> None:
    assert bool(regressions(ev(read(t(*before), t(*after))))) is slower


def test_regression_text_has_numbers_and_no_literals() -> None:
    s = stmt("SELECT * FROM users WHERE email = 'bob@example.com'", t(10, 10, 10), t(12, 12, 13))
    (text,) = regressions(ev(s))
    assert "bob@example.com" not in text and "email = $1" in text
    assert "common values: 10.0 ms → 12.0 ms p50 (20% slower; p95 10.0 ms → 13.0 ms)" in text


def test_regressions_filter_reads_and_writes() -> None:
    evidence = ev(write(t(1, 1, 1), t(2, 2, 2)))
    assert len(regressions(evidence)) == 1
    assert len(regressions(evidence, writes=True)) == 1
    assert regressions(evidence, writes=False) == []


def test_balance_weights_by_calls() -> None:
    evidence = ev(
        read(t(10), t(2), calls=10),
        read(t(5), t(5), calls=0),  # counted once
        read(t(99), (Failed("common", "timeout"),), calls=50),  # not measured: ignored
        write(t(1.0), t(1.25), calls=100),
    )
    bal = balance(evidence)
    assert (bal.read_before, bal.read_after) == (105.0, 25.0)
    assert (bal.write_before, bal.write_after) == (100.0, 125.0)
    assert (bal.reads_measured, bal.writes_measured) == (2, 1)
    assert (bal.read_saved, bal.write_added) == (80.0, 25.0)
    assert bal.speedup == pytest.approx(80 / 105)
    assert balance(ev()).speedup == 0.0


def test_estimated_gain_uses_measured_reads_with_costs() -> None:
    evidence = ev(
        read(t(10), t(2), calls=2, costs=(100.0, 20.0)),
        read(t(10), t(10), costs=(50.0, 50.0)),
        read(t(10), (), costs=(1000.0, 1.0)),  # not measured
        read(t(10), t(2), costs=(None, 1.0)),  # no estimate
        write(t(1), t(1), costs=(1000.0, 1.0)),
    )
    assert estimated_gain(evidence) == pytest.approx(1 - 90 / 250)
    assert estimated_gain(ev(read(t(10), t(2)))) is None


def test_create_verdict_supports_a_clear_speedup() -> None:
    assert create_verdict(ev(read(t(10), t(2)), write(t(1), t(1)))) is None


def test_create_verdict_none_when_skipped() -> None:
    assert create_verdict(ev(read(t(10), t(50)), skipped="lock wait")) is None


def test_read_regression_is_reported_before_write_regression() -> None:
    verdict = create_verdict(ev(write(t(1), t(5)), read(t(10), t(20))))
    assert verdict is not None
    assert verdict.startswith("measured regression (more than the 10% allowed): 'SELECT")


def test_write_regression() -> None:
    verdict = create_verdict(ev(read(t(10), t(2)), write(t(1), t(2))))
    assert verdict is not None
    assert verdict.startswith("write overhead measured (more than the 10% allowed): 'INSERT")


def test_speedup_below_minimum() -> None:
    verdict = create_verdict(ev(read(t(10), t(9), costs=(100.0, 10.0))))
    assert verdict == (
        "measurement does not support it: the affected reads ran 10.0 ms → 9.000 ms per "
        "workload cycle (10% faster, below 20%); the planner estimated 90% less cost"
    )
    slower = create_verdict(ev(read(t(10, 10, 12), t(10.5, 10.5, 11))))  # slower, within noise
    assert slower is not None and slower.endswith("(5% slower)")
    assert create_verdict(ev(read(t(10), t(8)))) is None  # exactly 20 % passes


def test_write_time_added_at_least_read_time_saved() -> None:
    reads = read(t(10), t(5))  # saves 5 ms per cycle
    verdict = create_verdict(ev(reads, write(t(1.0), t(1.0625), calls=80)))  # adds 5 ms
    assert verdict == (
        "write overhead measured: the table's writes take 5.000 ms more per workload cycle "
        "(80.0 ms → 85.0 ms), more than the 5.000 ms the reads save"
    )
    assert create_verdict(ev(reads, write(t(1.0), t(1.0625), calls=79))) is None


def test_drop_verdict() -> None:
    needed = drop_verdict(ev(read(t(1), t(10))))
    assert needed is not None and needed.startswith("the workload still needs it: without it 'SEL")
    assert drop_verdict(ev(write(t(1), t(10)))) is None  # writes get faster without an index
    assert drop_verdict(ev(read(t(1), t(10)), skipped="budget")) is None
    assert drop_verdict(ev(read(t(1), t(1.05)))) is None


def test_weighted_noise_margin() -> None:
    evidence = ev(
        read(t(10, 10, 11), t(4, 4, 5), calls=3),  # moved 6 ms, noise 1 ms: 6
        read(t(10), t(10)),  # moved 0
        write(t(1), t(100), calls=1000),  # writes do not count
    )
    assert weighted_noise_margin(evidence) == pytest.approx((3 * 6 + 0) / 4)
    assert weighted_noise_margin(ev(read(t(10), t(9)))) == pytest.approx(10.0)  # 1 % of p50
    assert weighted_noise_margin(ev()) == 0.0


def test_plan_index_names() -> None:
    node = {
        "Node Type": "Nested Loop",
        "Plans": [
            {"Node Type": "Index Scan", "Index Name": "orders_customer_id_idx"},
            {"Node Type": "Bitmap Heap Scan", "Plans": [{"Index Name": "users_pkey"}]},
        ],
    }
    assert plan_index_names({"Plan": node}) == {"orders_customer_id_idx", "users_pkey"}
    assert plan_index_names(node) == {"orders_customer_id_idx", "users_pkey"}
    assert plan_index_names({"Plan": {"Node Type": "Seq Scan"}}) == frozenset()


def test_a_run_that_timed_out_before_and_finished_after_counts_as_a_lower_bound() -> None:
    stmt = StatementEvidence(
        Query("SELECT 1 FROM t WHERE a = $1", calls=2),
        False,
        before=(Failed("common", "timed out", timed_out_ms=60_000.0), Failed("rare", "lock")),
        after=(Timing("common", (70.0, 71.0, 72.0), 10, 0, 1.0), Timing("rare", (1.0,), 1, 0, 1)),
    )
    (pair,) = stmt.pairs()  # the lock failure stays unpaired
    assert (pair.label, pair.before.p50, pair.after.p50) == ("common", 60_000.0, 71.0)
    ev = Evidence("sandbox", (stmt,))
    assert balance(ev).speedup > 0.99 and create_verdict(ev) is None
