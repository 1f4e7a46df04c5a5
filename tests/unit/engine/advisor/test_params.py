"""Parameter synthesis: each $n tied to its column, values from pg_stats, notes for the rest."""

from __future__ import annotations

from app.engine.advisor.params import Binding, ParamSet, bindings, parameter_sets, resample_sets
from app.engine.advisor.scans import analyze
from app.engine.catalog import Catalog
from app.engine.model import Analyzed, Column, ColumnStats, Index, Query, RelKind
from tests.fakes import snapshot, table

STATUS = ColumnStats(
    n_distinct=3,
    most_common_vals=("published", "draft", "pending"),
    most_common_freqs=(0.9, 0.09, 0.01),
)
CREATED = ColumnStats(
    n_distinct=-1, histogram_bounds=tuple(f"2025-01-{d:02d}" for d in range(1, 12))
)
USER = ColumnStats(n_distinct=-0.5, histogram_bounds=tuple(str(i * 100) for i in range(11)))
CATALOG = Catalog(
    snapshot(
        table(
            "posts",
            1e5,
            Column("user_id", "bigint", stats=USER),
            Column("status", "text", stats=STATUS),
            Column("created_at", "timestamptz", stats=CREATED),
            Column("body", "text"),
        )
    )
)


def stmt(sql: str) -> Analyzed:
    result = analyze(Query(sql), CATALOG)
    assert isinstance(result, Analyzed)
    return result


def test_each_placeholder_is_tied_to_its_column_or_clause() -> None:
    s = stmt(
        "SELECT * FROM posts p WHERE p.status = $1 AND $2 < created_at AND body = $3 "
        "ORDER BY created_at LIMIT $4 OFFSET $5"
    )
    assert bindings(s, CATALOG) == (
        Binding(1, "public.posts", "status", "eq"),
        Binding(2, "public.posts", "created_at", "lower"),
        Binding(3, "public.posts", "body", "eq"),
        Binding(4, role="limit"),
        Binding(5, role="offset"),
    )


def test_common_typical_and_rare_values_come_from_pg_stats() -> None:
    sets, notes = parameter_sets(
        stmt("SELECT * FROM posts WHERE status = $1 AND user_id = $2"), CATALOG
    )
    by_label = {s.label: s.values for s in sets}
    assert by_label["common"] == ("published", "500")  # no MCVs for user_id: its median
    assert by_label["rare"] == ("pending", "100")
    assert notes == []


def test_range_bounds_pick_wide_to_narrow() -> None:
    sets, _ = parameter_sets(stmt("SELECT * FROM posts WHERE created_at > $1"), CATALOG)
    values = [s.values[0] for s in sets]
    assert values == sorted(values)  # later labels keep fewer rows


def test_unbound_placeholders_fall_back_to_the_generic_plan_and_say_so() -> None:
    sets, notes = parameter_sets(
        stmt("SELECT * FROM posts WHERE user_id = $1 AND length(body) > $2"), CATALOG
    )
    assert notes == ["$2 is not compared with a column: planned with the generic plan"]
    assert all(s.values[1] is None for s in sets)


def test_writes_bind_set_where_and_values_items() -> None:
    update = stmt("UPDATE posts p SET status = $1 WHERE p.user_id = $2")
    assert bindings(update, CATALOG) == (
        Binding(1, "public.posts", "status", "eq"),
        Binding(2, "public.posts", "user_id", "eq"),
    )
    delete = stmt("DELETE FROM posts WHERE created_at < $1")
    assert bindings(delete, CATALOG) == (Binding(1, "public.posts", "created_at", "upper"),)
    insert = stmt("INSERT INTO posts (status, user_id) VALUES ($1, $2), ($3, $4)")
    assert [(b.column, b.role) for b in bindings(insert, CATALOG)] == [
        ("status", "insert"),
        ("user_id", "insert"),
        ("status", "insert"),
        ("user_id", "insert"),
    ]
    sets, notes = parameter_sets(insert, CATALOG)
    assert sets[0].values == ("published", "500", "published", "500") and not notes


def test_values_for_a_unique_column_are_not_invented() -> None:
    snap = snapshot(
        table("users", 1e4, Column("id", "bigint", stats=USER), Column("status", "text")),
        indexes=[Index("public", "users_pkey", "public.users", ("id",), unique=True)],
    )
    catalog = Catalog(snap)
    result = analyze(Query("INSERT INTO users (id, status) VALUES ($1, $2)"), catalog)
    assert isinstance(result, Analyzed)
    assert bindings(result, catalog)[0] == Binding(1, "public.users", "id", "unique")
    _, notes = parameter_sets(result, catalog)
    assert notes == [
        "$1 feeds the unique column id: a value from pg_stats would collide, so the statement "
        "is planned with the generic plan"
    ]


EMAIL = ColumnStats(n_distinct=-1, histogram_bounds=("Ann@X.com", "Bob@X.com", "Cy@X.com"))
VIEWS = Catalog(
    snapshot(
        table(
            "users",
            1e4,
            Column("id", "bigint"),
            Column("email", "text", stats=EMAIL),
            Column("deleted_at", "timestamptz"),
        ),
        table(
            "active_users",
            0,
            Column("id", "bigint"),
            Column("email", "text"),
            kind=RelKind.view,
            view_sql="SELECT users.id, users.email FROM users WHERE users.deleted_at IS NULL",
        ),
    )
)


def test_columns_are_traced_through_views_and_derived_tables() -> None:
    for text in (
        "SELECT * FROM active_users WHERE email = $1",
        "SELECT * FROM (SELECT id, email AS e FROM users) AS s WHERE s.e = $1",
    ):
        result = analyze(Query(text), VIEWS)
        assert isinstance(result, Analyzed)
        assert bindings(result, VIEWS) == (Binding(1, "public.users", "email", "eq"),), text


def test_lower_and_upper_of_a_column_get_transformed_values() -> None:
    result = analyze(Query("SELECT * FROM users WHERE lower(email) = $1"), VIEWS)
    assert isinstance(result, Analyzed)
    assert bindings(result, VIEWS) == (Binding(1, "public.users", "email", "eq", "lower"),)
    sets, notes = parameter_sets(result, VIEWS)
    assert sets[0].values == ("bob@x.com",) and not notes


def test_a_folded_placeholder_is_tied_to_the_column_it_is_compared_with() -> None:
    """``lower(email) = lower($1)`` (an expression index's statement) gets values to measure."""
    for text, transform in (
        ("SELECT id FROM users WHERE lower(email) = lower($1)", "lower"),
        ("SELECT id FROM users WHERE upper(email) = upper(trim($1::text))", "upper"),
        ("SELECT id FROM users WHERE lower($1) = lower(email)", "lower"),
    ):
        result = analyze(Query(text), VIEWS)
        assert isinstance(result, Analyzed)
        assert bindings(result, VIEWS) == (Binding(1, "public.users", "email", "eq", transform),), (
            text
        )
        sets, notes = parameter_sets(result, VIEWS)
        assert sets and not notes, text
    # A function that changes the value (length) still ties nothing.
    result = analyze(Query("SELECT id FROM users WHERE length(email) = length($1)"), VIEWS)
    assert isinstance(result, Analyzed)
    assert bindings(result, VIEWS) == (Binding(1),)


SHIP = ColumnStats(
    n_distinct=2526,
    histogram_bounds=tuple(f"{1992 + i // 12}-{i % 12 + 1:02d}-01" for i in range(85)),
)
DISCOUNT = ColumnStats(  # ordered by frequency, as pg_stats gives it
    n_distinct=11,
    most_common_vals=("0.05", "0.00", "0.10", "0.03", "0.07", "0.01", "0.09"),
    most_common_freqs=(0.2, 0.15, 0.15, 0.15, 0.15, 0.1, 0.1),
)
LINEITEM = Catalog(
    snapshot(
        table(
            "lineitem",
            6e6,
            Column("l_shipdate", "date", stats=SHIP),
            Column("l_discount", "numeric", stats=DISCOUNT),
            Column("l_quantity", "numeric", stats=USER),
            Column("l_extendedprice", "numeric"),
        )
    )
)
Q6 = (
    "SELECT sum(l_extendedprice * l_discount) FROM lineitem WHERE l_shipdate >= $1 "
    "AND l_discount BETWEEN $2 AND $3 AND l_quantity < $4 AND l_shipdate < $5"
)


def q6_sets() -> list[ParamSet]:
    result = analyze(Query(Q6), LINEITEM)
    assert isinstance(result, Analyzed)
    first, notes = parameter_sets(result, LINEITEM)
    assert not notes
    return [*first, *resample_sets(result, LINEITEM, tuple(first))]


def test_range_bounds_split_across_the_where_are_drawn_as_one_ordered_range() -> None:
    sets = q6_sets()
    assert [s.label for s in sets] == [
        "common",
        "typical",
        "rare",
        "narrow-1",
        "typical-1",
        "wide-1",
        "narrow-2",
        "typical-2",
        "wide-2",
    ]
    for s in sets:
        ship_low, disc_low, disc_high, _, ship_high = s.values
        assert ship_low is not None and ship_high is not None
        assert ship_low < ship_high, s  # ISO dates: never >= v AND < v, never inverted
        assert disc_low is not None and disc_high is not None
        assert float(disc_low) < float(disc_high), s


def test_range_widths_follow_the_histogram_narrow_typical_wide() -> None:
    months = list(SHIP.histogram_bounds)
    by_label = {s.label: s.values for s in q6_sets()}
    spans = {
        label: months.index(str(v[4])) - months.index(str(v[0])) for label, v in by_label.items()
    }
    # 84 buckets: 1 % is one bucket (the least a histogram can tell), 10 % about 8.4 of
    # them, 40 % about 33.6 (bounds fall on bucket edges).
    assert spans["rare"] == spans["narrow-1"] == spans["narrow-2"] == 1
    for label, width in (("typical", 0.1), ("typical-2", 0.1), ("common", 0.4), ("wide-1", 0.4)):
        assert abs(spans[label] - width * 84) <= 1, (label, spans)


def test_resampled_sets_never_repeat_the_first_ones() -> None:
    result = analyze(Query("SELECT * FROM posts WHERE status = $1"), CATALOG)
    assert isinstance(result, Analyzed)
    first, _ = parameter_sets(result, CATALOG)
    more = resample_sets(result, CATALOG, tuple(first))
    assert {s.values for s in first}.isdisjoint({s.values for s in more})
    assert [s.label for s in more] == ["other-0"] and more[0].values == ("draft",)


def test_a_lone_bound_on_most_common_values_uses_their_value_order() -> None:
    result = analyze(Query("SELECT * FROM lineitem WHERE l_discount > $1"), LINEITEM)
    assert isinstance(result, Analyzed)
    sets, _ = parameter_sets(result, LINEITEM)
    values = [float(str(s.values[0])) for s in sets]
    assert values == sorted(values) and values[0] < values[-1]  # wide to narrow, by value
