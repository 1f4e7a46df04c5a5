"""Golden advisor cases (tests/fixtures/advisor/*.sql): the pure audit must print what each expects.

Regenerate deliberately with ``DBARCH_GOLDEN_UPDATE=1 pytest tests/unit/engine/test_golden.py``
and review the diff (see tests/fixtures/advisor/README.md).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.golden import FixtureError, check, read_case, render, run, snapshot

FIXTURES = Path(__file__).parents[2] / "fixtures" / "advisor"
CASES = sorted(FIXTURES.glob("*.sql"))
UPDATE = os.environ.get("DBARCH_GOLDEN_UPDATE") == "1"


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_golden(path: Path) -> None:
    diff = check(path, update=UPDATE)
    if diff is not None:
        pytest.fail(
            "the advisor's output changed; if that is intended, rerun with "
            f"DBARCH_GOLDEN_UPDATE=1 and review the diff\n{diff}",
            pytrace=False,
        )


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 12


def test_a_changed_expectation_fails_with_a_diff_and_update_restores_it(tmp_path: Path) -> None:
    path = tmp_path / "case.sql"
    shutil.copy(FIXTURES / "01_equality.sql", path)
    original = path.read_text()
    path.write_text(original.replace("(email) [workload]", "(name) [workload]"))
    diff = check(path, update=False)
    assert diff is not None
    assert "-" + "-- create_index public.users (name) [workload]" in diff.splitlines()
    assert "+" + "-- create_index public.users (email) [workload]" in diff.splitlines()
    assert check(path, update=True) is None
    assert path.read_text() == original


def test_the_schema_section_becomes_a_snapshot() -> None:
    hostile = snapshot(read_case(FIXTURES / "16_hostile_identifiers.sql"))
    (table,) = hostile.tables
    assert table.qualified == "public.AuditLog" and table.rows == 700_000
    assert [c.name for c in table.columns] == ["id", "EventType", "order", "Created At"]
    event_type = table.column("EventType")
    assert event_type is not None and event_type.stats is not None
    assert event_type.stats.n_distinct == 300
    assert [(i.name, i.columns, i.primary) for i in hostile.indexes] == [
        ("AuditLog_pkey", ("id",), True)
    ]
    fks = snapshot(read_case(FIXTURES / "12_fk_without_index.sql")).foreign_keys
    assert [(f.name, f.table, f.columns, f.ref_table) for f in fks] == [
        ("books_author_fk", "public.books", ("author_id",), "public.authors"),
        ("reviews_book_id_fkey", "public.reviews", ("book_id",), "public.books"),
    ]
    unused = snapshot(read_case(FIXTURES / "11_unused_index.sql"))
    assert (
        unused.stats_reset is not None
        and unused.stats_reset.isoformat() == "2026-09-01T00:00:00+00:00"
    )
    assert {i.name: (i.scans, i.size_bytes) for i in unused.indexes}["invoices_note_idx"] == (
        0,
        40 * 1024**2,
    )


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        ("CREATE TABLE t (a int);\n-- table u: rows=5", "unknown table public.u"),
        ("CREATE TABLE t (a int);\n-- column t.b: distinct=5", "unknown column b"),
        ("CREATE TABLE t (a int);\n-- table t: rowz=5", "unknown table hint 'rowz'"),
        ("CREATE TABLE t (a int);\n-- index t_a: scans=1", "unknown index t_a"),
        ("CREATE VIEW v AS SELECT 1;", "unsupported schema statement"),
    ],
)
def test_a_malformed_schema_section_is_refused(tmp_path: Path, schema: str, problem: str) -> None:
    path = tmp_path / "bad.sql"
    path.write_text(f"-- schema:\n{schema}\n-- workload:\nSELECT 1;\n-- expect:\n")
    with pytest.raises(FixtureError, match=problem):
        run(read_case(path))


def test_a_file_without_its_sections_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.sql"
    path.write_text("-- schema:\nCREATE TABLE t (a int);\n")
    with pytest.raises(FixtureError, match="missing section"):
        read_case(path)


def test_the_same_case_renders_the_same_twice() -> None:
    case = read_case(CASES[-1])
    assert render(run(case)) == render(run(case))
