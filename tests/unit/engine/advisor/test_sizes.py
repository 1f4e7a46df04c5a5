"""B-tree size estimates: entries, deduplication, partial indexes (figures from PostgreSQL 15)."""

from __future__ import annotations

import pytest

from app.engine.advisor.sizes import estimate_size
from app.engine.model import Candidate, Column, ColumnStats, IndexKey, Table

MB = 2**20


def col(name: str, type_: str, distinct: float, width: int) -> Column:
    return Column(name, type_, stats=ColumnStats(n_distinct=distinct, avg_width=width))


#: One million rows, as tests/integration/test_sizes.py builds them.
P = Table(
    "public",
    "p",
    rows=1e6,
    columns=(
        col("d", "date", 2500, 4),
        col("k", "integer", 100, 4),
        col("u", "integer", -1, 4),
        col("n", "numeric", 100, 4),
        col("t", "text", -1, 33),
        col("s", "text", 10, 5),
    ),
)


def size(*keys: str, include: tuple[str, ...] = (), dedup: bool = True) -> float:
    c = Candidate("public.p", tuple(IndexKey(k) for k in keys), include=include)
    return estimate_size(c, P, dedup=dedup) / MB


@pytest.mark.parametrize(
    ("keys", "include", "built_mb"),
    [
        (("d",), (), 6.57),  # deduplicated: 400 rows per date share one entry
        (("k",), (), 6.66),
        (("s",), (), 6.64),
        (("u",), (), 21.45),  # unique values: nothing to deduplicate
        (("n",), (), 21.48),  # numeric is never deduplicated
        (("t",), (), 56.33),
        (("d",), ("u",), 21.48),  # nor is an INCLUDE index
        (("d", "u"), (), 21.45),
    ],
)
def test_estimates_are_within_ten_percent_of_built_indexes(
    keys: tuple[str, ...], include: tuple[str, ...], built_mb: float
) -> None:
    assert size(*keys, include=include) == pytest.approx(built_mb, rel=0.10)


def test_before_postgresql_13_nothing_is_deduplicated() -> None:
    assert size("d", dedup=False) > 3 * size("d")


def test_unknown_statistics_and_expressions_estimate_without_deduplication() -> None:
    bare = Table("public", "b", rows=1e6, columns=(Column("d", "date"),))
    plain = Candidate("public.b", (IndexKey("d"),))
    assert estimate_size(plain, bare) == pytest.approx(22.2e6, rel=0.05)
    lower = Candidate("public.p", (IndexKey("lower(t)", expression=True),))
    assert estimate_size(lower, P) == pytest.approx(22.2e6, rel=0.05)


def test_a_partial_index_counts_the_rows_its_predicate_keeps() -> None:
    whole = Candidate("public.p", (IndexKey("k"),))
    part = Candidate("public.p", (IndexKey("k"),), where="u IS NULL")
    assert estimate_size(part, P) < estimate_size(whole, P) / 5
