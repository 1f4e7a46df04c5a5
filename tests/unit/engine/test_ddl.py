"""Index DDL text: quoting, 63-byte names, and one statement restated with other options."""

from __future__ import annotations

import pytest

from app.engine.ddl import (
    MAX_IDENTIFIER_BYTES,
    create_index_sql,
    index_name,
    index_tail,
    restate_create_index,
    truncate_identifier,
)
from app.engine.model import Candidate, IndexKey

HOSTILE = Candidate(
    'public.Tab "Q"',
    (IndexKey("id)); DROP TABLE public.x; --"), IndexKey('lower("Em ail")', expression=True)),
    include=("order",),
    where="\"user\" = 'a :b'",
)


def test_truncation_keeps_63_bytes_and_never_splits_a_character() -> None:
    assert truncate_identifier("x" * 63) == "x" * 63
    assert truncate_identifier("x" * 70) == "x" * 63
    assert truncate_identifier("a" + "é" * 35) == "a" + "é" * 31  # 63 bytes exactly
    assert truncate_identifier("é" * 35) == "é" * 31  # 62 bytes: the 32nd would straddle 63
    assert truncate_identifier("列" * 30) == "列" * 21


def test_index_names_stay_within_63_bytes_for_multibyte_tables() -> None:
    for table in ("public." + "ü" * 60, "public." + "列" * 40, "public.t"):
        name = index_name(Candidate(table, (IndexKey("é" * 40), IndexKey("x" * 70))))
        assert len(name.encode()) <= MAX_IDENTIFIER_BYTES
        name.encode().decode()  # whole characters only


def test_every_name_is_quoted_in_the_statement() -> None:
    assert create_index_sql(HOSTILE, "t_idx") == (
        'CREATE INDEX CONCURRENTLY t_idx ON public."Tab ""Q""" USING btree '
        '("id)); DROP TABLE public.x; --", (lower("Em ail"))) INCLUDE ("order") '
        "WHERE \"user\" = 'a :b'"
    )


def test_the_shipped_statement_is_the_measured_one_with_if_not_exists() -> None:
    measured = create_index_sql(HOSTILE, "t_idx")
    shipped = create_index_sql(HOSTILE, "t_idx", if_not_exists=True)
    assert shipped == measured.replace(" t_idx ON", " IF NOT EXISTS t_idx ON", 1)
    restated = restate_create_index(
        measured, name="t_idx", table=HOSTILE.table, concurrently=True, if_not_exists=True
    )
    assert restated == shipped
    transactional = restate_create_index(
        measured, name="t_idx", table=HOSTILE.table, concurrently=False, if_not_exists=False
    )
    assert transactional == create_index_sql(HOSTILE, "t_idx", concurrently=False)
    assert index_tail(measured, name="t_idx", table=HOSTILE.table) == index_tail(
        shipped, name="t_idx", table=HOSTILE.table
    )


def test_restated_on_a_partition_and_on_only() -> None:
    measured = create_index_sql(HOSTILE, "t_idx", concurrently=False)
    parent = restate_create_index(
        measured,
        name="t_idx",
        table=HOSTILE.table,
        concurrently=False,
        if_not_exists=True,
        only=True,
    )
    assert parent.startswith('CREATE INDEX IF NOT EXISTS t_idx ON ONLY public."Tab ""Q""" USING ')
    child = restate_create_index(
        measured,
        name="t_idx",
        table=HOSTILE.table,
        on=("p:1 idx", "my schema.p:1"),
        concurrently=True,
        if_not_exists=True,
    )
    assert child.startswith(
        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "p:1 idx" ON "my schema"."p:1" USING '
    )
    assert parent.partition(" USING ")[2] == child.partition(" USING ")[2]


@pytest.mark.parametrize(
    ("name", "table"),
    [
        ("other_idx", HOSTILE.table),  # the statement builds another index
        ("t_idx", "public.Tab"),  # on another table
        ('t_idx ON public."Tab ""Q""" USING btree (x); --', HOSTILE.table),
    ],
)
def test_a_statement_for_another_index_is_refused(name: str, table: str) -> None:
    measured = create_index_sql(HOSTILE, "t_idx")
    with pytest.raises(ValueError, match="re-run the audit"):
        restate_create_index(
            measured, name=name, table=table, concurrently=True, if_not_exists=True
        )


def test_a_statement_that_is_not_a_create_index_is_refused() -> None:
    with pytest.raises(ValueError, match="not the CREATE INDEX statement"):
        index_tail("DROP TABLE public.x", name="x", table="public.x")


def test_names_the_slug_would_merge_get_distinct_index_names() -> None:
    names = {
        index_name(Candidate("public.t", (IndexKey(column),)))
        for column in ("a b", "a-b", "a_b", "a;b", "ä b")
    }
    assert len(names) == 5
    # Plain and mixed-case names keep their readable name (PostgreSQL folds them the same).
    assert index_name(Candidate("public.AuditLog", (IndexKey("userId"),))) == (
        "auditlog_userid_idx"
    )


def test_a_name_taken_in_the_schema_gets_a_digest_so_if_not_exists_cannot_skip_the_build() -> None:
    # Someone's own index already carries the readable name, on another column: IF NOT EXISTS
    # would keep it and the revision would quietly build nothing.
    candidate = Candidate("public.posts", (IndexKey("user_id"),))
    assert index_name(candidate) == "posts_user_id_idx"
    other = index_name(candidate, taken={"posts_user_id_idx", "posts"})
    assert other != "posts_user_id_idx"
    assert other.startswith("posts_user_id_") and other.endswith("_idx")
    assert index_name(candidate, taken={"posts"}) == "posts_user_id_idx"


def test_expression_keys_whose_slugs_meet_get_distinct_names() -> None:
    plus = Candidate("public.t", (IndexKey("(a + b)", expression=True),))
    minus = Candidate("public.t", (IndexKey("(a - b)", expression=True),))
    assert index_name(plus) != index_name(minus)
