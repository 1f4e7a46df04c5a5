"""Statement text is parsed within bounds: size and nesting, never a RecursionError."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from app.engine.advisor.params import parameter_sets
from app.engine.advisor.scans import analyze
from app.engine.catalog import Catalog
from app.engine.model import Analyzed, Column, Query, RelKind, Skipped, Snapshot, Table
from app.engine.sql import MAX_NESTING, MAX_STATEMENT_CHARS, SqlError, nesting, parse

CATALOG = Catalog(
    Snapshot(
        "18.0",
        180000,
        "db",
        datetime(2026, 1, 1, tzinfo=UTC),
        tables=(
            Table(
                "public",
                "t",
                RelKind.table,
                columns=(Column("id", "integer", False), Column("v", "integer", False)),
            ),
        ),
    )
)


def nested(depth: int) -> str:
    return "SELECT " + "(" * depth + "id" + ")" * depth + " FROM t WHERE v = $1"


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 60, 1_000, 30_000])
def test_deep_nesting_is_skipped_with_its_depth_not_a_recursion_error(depth: int) -> None:
    result = analyze(Query(nested(depth)), CATALOG)
    assert isinstance(result, Skipped)
    assert result.reason == (
        f"nests parentheses {depth} deep; statements nested over {MAX_NESTING} deep are not "
        "analysed"
    )


def test_nesting_up_to_the_bound_is_analysed_with_its_parameters() -> None:
    result = analyze(Query(nested(MAX_NESTING)), CATALOG)
    assert isinstance(result, Analyzed), result
    sets, _ = parameter_sets(result, CATALOG)
    assert isinstance(sets, list)


def test_parentheses_in_strings_names_and_comments_do_not_count() -> None:
    text = "SELECT '((((' AS \"((((\" /* (((( */ -- ((((\nFROM t WHERE (v = 1)"
    assert nesting(text) == 1


def test_a_megabyte_of_sql_is_refused_before_parsing() -> None:
    huge = "SELECT id FROM t WHERE " + " OR ".join(f"id = ${i}" for i in range(1, 90_000))
    started = time.perf_counter()
    with pytest.raises(SqlError, match=f"over {MAX_STATEMENT_CHARS:,} characters"):
        parse(huge)
    assert time.perf_counter() - started < 0.5
    result = analyze(Query(huge), CATALOG)
    assert isinstance(result, Skipped) and "not analysed" in result.reason
