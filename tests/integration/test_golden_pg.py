"""Golden cases with a ``-- seed:`` section, rerun on PostgreSQL 15 + HypoPG: the toy planner
must not lie about which indexes the workload gets (see tests/fixtures/advisor/README.md)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from app.flows.audit_target import WorkloadSpec, audit_target
from tests.golden import header, read_case, workload_text

FIXTURES = Path(__file__).parents[1] / "fixtures" / "advisor"
SEEDED = [p for p in sorted(FIXTURES.glob("*.sql")) if read_case(p).seed]
#: Cases where the real planner disagrees with the toy today; strict, so agreement is noticed.
DISAGREE = {
    "05_is_null_partial": (
        "HypoPG costs (deleted_at, org_id) a little below (org_id) WHERE deleted_at IS NULL and "
        "(org_id, deleted_at), so the advisor proposes an index led by a 95 % NULL column"
    ),
    "17_shared_index": (
        "with 5 rows per thread PostgreSQL 15 plans a sort of 5 rows with either index at the "
        "same cost, so (thread_id, sent_at) saves nothing over (thread_id) on its estimates and "
        "the narrower index stays; the toy planner prices the ordered scan lower"
    ),
}


def _param(path: Path) -> object:
    reason = DISAGREE.get(path.stem)
    marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
    return pytest.param(path, id=path.stem, marks=marks)


def _expected_creates(expect: str) -> list[str]:
    """The ``create_index … [workload]`` lines of an expect section, without the comment mark."""
    lines = [line.removeprefix("-- ") for line in expect.splitlines()]
    return [
        line for line in lines if line.startswith("create_index ") and line.endswith("[workload]")
    ]


def test_a_subset_is_seeded_and_each_expects_an_index() -> None:
    assert len(SEEDED) >= 5
    assert all(_expected_creates(read_case(p).expect) for p in SEEDED)
    assert set(DISAGREE) <= {p.stem for p in SEEDED}


@pytest.mark.parametrize("path", [_param(p) for p in SEEDED])
def test_real_planner_picks_the_same_indexes(path: Path, fresh_db15: str) -> None:
    case = read_case(path)
    with psycopg.connect(fresh_db15, autocommit=True) as conn:
        conn.execute(b"CREATE EXTENSION hypopg")
        conn.execute(case.schema.encode())
        conn.execute(case.seed.encode())
        conn.execute(b"VACUUM ANALYZE")
    report = audit_target(fresh_db15, WorkloadSpec(queries_text=workload_text(case)))
    assert report.whatif == "hypopg"
    actual = [header(r) for r in report.recommendations if r.rule == "workload"]
    assert actual == _expected_creates(case.expect), (
        f"{path.name}: PostgreSQL 15 + HypoPG chose other indexes than the toy planner; "
        "the golden case documents what the toy planner says"
    )
