"""Parameters the planner cannot type get a cast from the column they meet (TPC-H shapes)."""

from __future__ import annotations

import pytest

from app.engine.advisor.param_types import canonical_type, param_casts
from app.engine.advisor.scans import analyze
from app.engine.catalog import Catalog
from app.engine.model import Analyzed, Query
from app.engine.sql import parse
from tests.fakes import column, snapshot, table

CATALOG = Catalog(
    snapshot(
        table(
            "lineitem",
            6e6,
            column("l_orderkey", "integer"),
            column("l_quantity", "numeric(15,2)"),
            column("l_discount", "numeric(15,2)"),
            column("l_extendedprice", "numeric(15,2)"),
            column("l_shipdate", "date"),
            column("l_shipmode", "character(10)"),
            column("l_tags", "text[]"),
        ),
        table(
            "orders",
            1.5e6,
            column("o_orderkey", "integer"),
            column("o_orderdate", "date"),
            column("o_orderpriority", "character(15)"),
            column("o_placed", "timestamp with time zone"),
        ),
    )
)


def casts(text: str) -> dict[int, str]:
    return param_casts(parse(text), CATALOG)


def test_sum_of_two_parameters_takes_the_compared_column_type() -> None:
    # TPC-H Q19 and Q6: "operator is not unique: unknown + unknown"
    assert casts("SELECT 1 FROM lineitem WHERE l_quantity <= $8 + $9") == {
        8: "numeric",
        9: "numeric",
    }
    assert casts("SELECT 1 FROM lineitem WHERE l_discount BETWEEN $4 - $5 AND $6 + $7") == {
        4: "numeric",
        5: "numeric",
        6: "numeric",
        7: "numeric",
    }


def test_date_minus_parameter_is_a_date_and_an_interval() -> None:
    assert casts("SELECT 1 FROM lineitem l WHERE l.l_shipdate <= $1 - $2") == {
        1: "date",
        2: "interval",
    }
    assert casts("SELECT 1 FROM orders WHERE ($1 + $2) > o_placed") == {
        1: "timestamptz",
        2: "interval",
    }


def test_case_of_parameters_inside_sum_is_numeric_and_compared_case_takes_the_column() -> None:
    # TPC-H Q12: "function sum(text) does not exist"
    q12 = (
        "SELECT sum(CASE WHEN o_orderpriority = $1 OR o_orderpriority = $2 THEN $3 ELSE $4 END)"
        " FROM orders"
    )
    assert casts(q12) == {3: "numeric", 4: "numeric"}
    compared = "SELECT 1 FROM orders WHERE o_orderpriority = CASE WHEN $1 THEN $2 ELSE $3 END"
    assert casts(compared) == {2: "text", 3: "text"}


def test_parameters_with_a_typed_neighbour_or_no_context_are_left_alone() -> None:
    assert casts("SELECT 1 FROM lineitem WHERE l_quantity <= $1 + l_discount") == {}
    assert casts("SELECT $1 + $2") == {}
    assert casts("SELECT sum(CASE WHEN $1 THEN l_quantity ELSE $2 END) FROM lineitem") == {}
    # arrays and ambiguous names are not guessed
    assert casts("SELECT 1 FROM lineitem WHERE l_tags = $1 || $2") == {}
    assert casts("SELECT 1 FROM lineitem, orders WHERE l_orderkey = $1 + $2") == {
        1: "integer",
        2: "integer",
    }


@pytest.mark.parametrize(
    ("catalog_type", "cast"),
    [
        ("numeric(15,2)", "numeric"),
        ("character varying(40)", "text"),
        ("timestamp without time zone", "timestamp"),
        ("double precision", "double precision"),
        ("integer[]", None),
        ("my_enum", None),
        ('"; DROP TABLE x; --', None),
    ],
)
def test_only_allow_listed_types_are_ever_written(catalog_type: str, cast: str | None) -> None:
    assert canonical_type(catalog_type) == cast


def test_analyze_writes_the_casts_and_extract_as_date_part() -> None:
    text = (
        "select extract($1 from l_shipdate) as y, sum(l_extendedprice * ($2 - l_discount)) "
        "from lineitem where l_shipdate between date $3 and date $4 and l_quantity < $5 + $6 "
        "group by y"
    )
    found = analyze(Query(text, calls=10, total_ms=100.0), CATALOG)
    assert isinstance(found, Analyzed)
    assert found.explain_sql == (
        "select date_part($1::text, l_shipdate) as y, sum(l_extendedprice * ($2 - l_discount)) "
        "from lineitem where l_shipdate between $3::date and $4::date "
        "and l_quantity < $5::numeric + $6::numeric group by y"
    )
    assert found.params == 6
