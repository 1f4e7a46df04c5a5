"""Evidence that a literal is constant across the workload, before it may be a partial WHERE."""

from __future__ import annotations

from app.engine.advisor.constants import MIN_CONSTANT_CALLS, Constant, describe, evidenced
from app.engine.advisor.scans import analyze
from app.engine.catalog import Catalog
from app.engine.model import Analyzed, Op, Predicate, Query
from tests.fakes import column, snapshot, table

CATALOG = Catalog(
    snapshot(
        table(
            "jobs",
            1e6,
            column("id"),
            column("user_id", distinct=2e4),
            column("status", "text", distinct=4),
            column("email", "text", distinct=-1),
            column("run_at"),
            column("deleted_at"),
        ),
        table("users", 1e5, column("id"), column("plan", "text", distinct=3)),
    )
)


def analysed(*workload: tuple[str, int]) -> list[Analyzed]:
    found = [analyze(Query(sql, calls=calls), CATALOG) for sql, calls in workload]
    assert all(isinstance(a, Analyzed) for a in found), found
    return [a for a in found if isinstance(a, Analyzed)]


def shown(*workload: tuple[str, int], min_calls: int = MIN_CONSTANT_CALLS) -> set[str]:
    """``pos: predicate`` for every predicate that may become a partial WHERE."""
    found = evidenced(analysed(*workload), min_calls=min_calls)
    return {f"{pos}: {c.sql()}" for (pos, _), consts in found.items() for c in consts}


POLL = "SELECT id FROM jobs WHERE status = 'pending' ORDER BY run_at LIMIT 10"


def test_one_sample_of_a_literal_is_no_evidence() -> None:
    assert shown(("SELECT * FROM jobs WHERE user_id = 42 ORDER BY run_at DESC LIMIT 1000", 1)) == (
        set()
    )


def test_the_same_literal_in_every_call_of_a_statement_is_evidence_from_the_threshold() -> None:
    assert MIN_CONSTANT_CALLS == 20
    assert shown((POLL, 19)) == set()
    assert shown((POLL, 20)) == {"0: status = 'pending'"}
    assert shown((POLL, 3), min_calls=3) == {"0: status = 'pending'"}


def test_repeats_in_a_file_are_calls_of_the_same_shape() -> None:
    # A workload file repeats statements; literals that differ only in LIMIT share a shape.
    base = "SELECT id FROM jobs WHERE status = 'pending' ORDER BY run_at LIMIT "
    assert shown((base + "10", 12), (base + "50", 8)) == {
        "0: status = 'pending'",
        "1: status = 'pending'",
    }


def test_two_values_in_one_shape_are_parameters_however_many_calls() -> None:
    assert (
        shown(
            ("SELECT * FROM jobs WHERE user_id = 42 ORDER BY run_at LIMIT 10", 500),
            ("SELECT * FROM jobs WHERE user_id = 7 ORDER BY run_at LIMIT 10", 1),
        )
        == set()
    )


def test_a_column_every_statement_asks_the_same_value_of_is_evidence() -> None:
    workload = [
        ("SELECT id FROM jobs WHERE status = 'pending' ORDER BY run_at LIMIT 10", 8),
        ("SELECT count(*) FROM jobs WHERE status = 'pending' AND run_at < now()", 8),
        ("UPDATE jobs SET run_at = now() WHERE status = 'pending' AND id = $1", 4),
    ]
    assert shown(*workload) == {f"{pos}: status = 'pending'" for pos in range(3)}
    found = evidenced(analysed(*workload))
    (const,) = found[(0, 0)]
    assert (const.scope, const.calls, const.statements) == ("column", 20, 3)
    assert const.evidence() == (
        "all 20 calls, in 3 statements, that filter on status use status = 'pending'"
    )


def test_another_use_of_the_column_breaks_column_evidence_but_not_statement_evidence() -> None:
    poll = "SELECT id FROM jobs WHERE status = 'pending' ORDER BY run_at LIMIT 10"
    count = "SELECT count(*) FROM jobs WHERE status = 'pending' AND run_at < now()"
    for other in (
        "SELECT * FROM jobs WHERE status = $1",
        "SELECT * FROM jobs WHERE status = 'failed'",
        "SELECT * FROM jobs WHERE status IN ('failed', 'done')",
        "SELECT * FROM jobs WHERE status > 'a'",
        "SELECT * FROM jobs WHERE status IS NULL",
    ):
        assert shown((poll, 15), (count, 15), (other, 1)) - {"2: status IS NULL"} == set(), other
        assert shown((poll, 25), (count, 15), (other, 1)) - {"2: status IS NULL"} == {
            "0: status = 'pending'"
        }, other


def test_statements_on_other_tables_or_columns_do_not_count() -> None:
    # 10 + 15 + 15 calls ask for 42, but of three different columns.
    assert (
        shown(
            ("SELECT * FROM jobs WHERE user_id = 42", 10),
            ("SELECT * FROM users WHERE id = 42", 15),
            ("SELECT * FROM jobs WHERE id = 42", 15),
        )
        == set()
    )


def test_is_null_needs_no_count_and_keeps_its_neighbours_honest() -> None:
    assert shown(("SELECT id FROM jobs WHERE user_id = 42 AND deleted_at IS NULL", 1)) == {
        "0: deleted_at IS NULL"
    }
    (const,) = evidenced(analysed(("SELECT id FROM jobs WHERE deleted_at IS NULL", 1)))[(0, 0)]
    assert const.scope == "structural" and const.evidence() == ""


def test_expression_literals_never_become_partial_predicates() -> None:
    assert shown(("SELECT id FROM jobs WHERE lower(email) = 'ann@example.com'", 1000)) == set()


def test_each_table_of_a_join_is_judged_on_its_own() -> None:
    sql = (
        "SELECT j.id FROM jobs j JOIN users u ON u.id = j.user_id "
        "WHERE u.plan = 'pro' AND j.status = 'pending'"
    )
    found = evidenced(analysed((sql, 30), ("SELECT * FROM jobs WHERE status = $1", 1)))
    assert sorted(c.sql() for consts in found.values() for c in consts) == [
        "plan = 'pro'",
        "status = 'pending'",
    ]
    assert len(found) == 2  # one scan of each table
    assert all(c.scope == "statement" for consts in found.values() for c in consts)


def test_describe_joins_what_needs_saying() -> None:
    status = Constant(Predicate("status", Op.eq, "'pending'"), "statement", 25, 1)
    gone = Constant(Predicate("deleted_at", Op.is_null, "NULL"), "structural")
    assert describe([gone, status]) == "all 25 calls of this statement use status = 'pending'"
    assert describe([gone]) == ""
    quoted = Constant(Predicate("Kind", Op.eq, "'a'"), "column", 1200, 4)
    assert quoted.sql() == "\"Kind\" = 'a'"
    assert quoted.evidence() == (
        'all 1,200 calls, in 4 statements, that filter on "Kind" use "Kind" = \'a\''
    )
