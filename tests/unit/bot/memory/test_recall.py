"""Reviewer memory inside the audit: descriptors, embedded feedback, remembering, ignores."""

from __future__ import annotations

import copy
import re
from dataclasses import replace

import pytest

from app.bot.memory.feedback import Adjustment, MemoryHit, cite, memory_adjustment
from app.bot.memory.recall import (
    MAX_DESCRIPTOR,
    MAX_PROSE,
    describe,
    feedback_text,
    remember,
    stored_ignores,
    write_share,
)
from app.bot.pulls.fixpr import fingerprint
from app.engine.model import (
    Analyzed,
    Query,
    Recommendation,
    Scan,
    StatementKind,
    Table,
    recommendation_id,
)
from app.engine.proof.confidence import Assessment, Confidence
from app.engine.report import Report
from tests.fakes import column, snapshot, table

MB = 1024**2
EVENTS = table("events", 1.2e6, column("user_id"), column("created_at"), size_bytes=180 * MB)
ORDERS = table("orders", 2e5, column("status", "text"))
SALES = Table("sales", "events", rows=0.0)
SNAP = snapshot(EVENTS, ORDERS, SALES)

ADD = Recommendation(
    "create_index",
    "public.events",
    ("user_id", "created_at"),
    "events_user_id_created_at_idx",
    "CREATE INDEX CONCURRENTLY events_user_id_created_at_idx ON public.events (user_id)",
    descending=(False, True),
)
DROP = Recommendation(
    "drop_index",
    "public.orders",
    ("status",),
    "orders_status_idx",
    "DROP INDEX CONCURRENTLY public.orders_status_idx",
    rule="unused_index",
)
REINDEX = Recommendation(
    "reindex",
    "sales.events",
    ("kind",),
    "events_kind_idx",
    "REINDEX INDEX CONCURRENTLY sales.events_kind_idx",
    rule="invalid_index",
)


def stmt(text: str, calls: int, kind: StatementKind, *scans: Scan) -> Analyzed:
    return Analyzed(Query(text, calls=calls), kind, scans, text)


def read(t: str, calls: int) -> Analyzed:
    return stmt(f"SELECT * FROM {t} WHERE id = $1", calls, StatementKind.select, Scan(t))


def write(t: str, calls: int) -> Analyzed:
    kind = StatementKind.insert
    return stmt(f"INSERT INTO {t} VALUES ($1)", calls, kind, Scan(t, write=True))


def report(*analyzed: Analyzed, recs: tuple[Recommendation, ...] = (ADD, DROP)) -> Report:
    return Report(SNAP, len(analyzed), analyzed, (), recs, (), "fake", 0)


WORKLOAD = report(
    write("public.events", 92),
    read("public.events", 8),
    read("public.orders", 97),
    # An UPDATE of orders that reads events: a write of orders, a read of events.
    stmt(
        "UPDATE orders SET status = $1 FROM events WHERE orders.id = events.id",
        3,
        StatementKind.update,
        Scan("public.orders", write=True),
        Scan("public.events"),
    ),
)


# ---------------------------------------------------------------------- describe


def test_describe_a_new_index_on_a_write_heavy_table() -> None:
    share = write_share(WORKLOAD, "public.events")
    assert share == pytest.approx(92 / 103)
    assert describe(WORKLOAD, ADD) == (
        "add index on events (user_id, created_at DESC); "
        "table events: write-heavy (89% of statement calls write), 1.2M rows, 180 MB"
    )


def test_describe_a_drop_on_a_read_mostly_table() -> None:
    assert describe(WORKLOAD, DROP) == (
        "drop unused index orders_status_idx on orders; "
        "table orders: read-mostly (3% of statement calls write), 200k rows"
    )


def test_describe_a_rebuild_without_known_traits() -> None:
    # Another schema stays qualified; no statement touches it and it has no statistics.
    assert describe(WORKLOAD, REINDEX) == "rebuild invalid index events_kind_idx on sales.events"


@pytest.mark.parametrize(
    ("writes", "reads", "label"),
    [
        (50, 50, "write-heavy (50%"),
        (10, 90, "mixed (10%"),
        (49, 51, "mixed (49%"),
        (9, 91, "read-mostly (9%"),
    ],
)
def test_load_labels_at_their_bounds(writes: int, reads: int, label: str) -> None:
    found = report(write("public.events", writes), read("public.events", reads))
    assert f"table events: {label} of statement calls write)" in describe(found, ADD)


def test_traits_absent_when_unknown() -> None:
    bare = Report(snapshot(), 0, (), (), (ADD,), (), "fake", 0)
    assert describe(bare, ADD) == "add index on events (user_id, created_at DESC)"
    only_stats = report(read("public.orders", 5))
    assert describe(only_stats, ADD).endswith("; table events: 1.2M rows, 180 MB")
    assert write_share(only_stats, "public.events") is None


def test_zero_calls_count_as_one() -> None:
    found = report(write("public.events", 0), read("public.events", 0))
    assert "write-heavy (50% of statement calls write)" in describe(found, ADD)


def test_kinds_of_new_index_and_no_literal_values() -> None:
    partial = Recommendation(
        "create_index",
        "public.orders",
        ("lower(email)", "(data ->> 'secret-key')"),
        "orders_expr_idx",
        "CREATE INDEX …",
        include=("total",),
        where="status = 'pending-4242'",
        using="btree",
    )
    text = describe(report(read("public.orders", 5)), partial)
    assert text.startswith(
        "add partial index on orders (lower(email), (data ->> $1)) include (total); table orders:"
    )
    assert "secret-key" not in text and "pending" not in text and "4242" not in text
    gin = Recommendation("create_index", "public.orders", ("tags",), "x", "…", using="gin")
    assert describe(report(), gin).startswith("add gin index on orders (tags)")


def test_duplicate_and_redundant_drops() -> None:
    exact = Recommendation(
        "drop_index", "public.orders", ("a",), "o_a", "…", rule="duplicate_index", extra={}
    )
    covered = Recommendation(
        "drop_index",
        "public.orders",
        ("a",),
        "o_b",
        "…",
        rule="duplicate_index",
        extra={"exact": 0.0},
    )
    assert describe(report(), exact).startswith("drop duplicate index o_a on orders")
    assert describe(report(), covered).startswith("drop redundant index o_b on orders")


def test_descriptor_is_one_short_deterministic_line() -> None:
    wide = Recommendation(
        "create_index",
        "public.events",
        tuple(f"a_rather_long_column_name_number_{n}" for n in range(12)),
        "events_wide_idx",
        "…",
        include=tuple(f"included_{n}" for n in range(8)),
    )
    text = describe(WORKLOAD, wide)
    assert len(text) <= MAX_DESCRIPTOR and "\n" not in text
    assert "…" in text
    assert text.endswith(
        "table events: write-heavy (89% of statement calls write), 1.2M rows, 180 MB"
    )
    assert describe(WORKLOAD, wide) == text


@pytest.mark.parametrize(
    ("rows", "size", "shown"),
    [
        (950, 512, "950 rows, 512 B"),
        (12_345, 32 * 1024, "12k rows, 32 kB"),
        (999_960, 5 * MB + 1, "1M rows, 5 MB"),
        (3.4e9, 3 * 1024**3 + 200 * MB, "3.4B rows, 3.2 GB"),
    ],
)
def test_compact_figures(rows: float, size: int, shown: str) -> None:
    snap = snapshot(table("events", rows, size_bytes=size))
    text = describe(Report(snap, 0, (), (), (ADD,), (), "fake", 0), ADD)
    assert text.endswith(f"; table events: {shown}")


# ---------------------------------------------------------------------- feedback_text


def test_feedback_text_keeps_only_the_reviewers_words() -> None:
    body = (
        "> Reviewer memory moved the confidence by −0.17\n"
        "<!-- db-architect:meta -->\n"
        "No thanks:\n\n"
        "```sql\nCREATE INDEX secret_idx ON events (user_id);\n```\n"
        "events   is\twrite-heavy, we insert 5k rows/s.\n"
        "<!--\nhidden\n-->\n"
    )
    text = feedback_text("add index on events (user_id)", "reject", body)
    assert text == (
        "add index on events (user_id)\n"
        "reviewer (reject): No thanks: events is write-heavy, we insert 5k rows/s."
    )


def test_feedback_text_is_cut_and_needs_a_known_classification() -> None:
    text = feedback_text("d", "concern", "word " * 500)
    prose = text.split("\n", 1)[1].removeprefix("reviewer (concern): ")
    assert len(prose) == MAX_PROSE and prose.endswith("…")
    assert feedback_text("d", "accept", "") == "d\nreviewer (accept):"
    with pytest.raises(
        ValueError, match=re.escape("one of accept, concern, question, reject, not 'approve'")
    ):
        feedback_text("d", "approve", "lgtm")


# ---------------------------------------------------------------------- remember

BASE = Confidence(0.86, {"measured_speedup": 0.5, "agreement": 0.36})
DROP_CONF = Confidence(0.9, {"finding": 0.5, "measured_safety": 0.3, "stats_freshness": 0.1})
REJECTED = MemoryHit(
    0.9, "reject", True, "public.events", "create_index", "write-heavy table", "changes requested"
)


def assessed() -> Report:
    assessments = {
        recommendation_id(ADD): Assessment(BASE),
        recommendation_id(DROP): Assessment(DROP_CONF),
    }
    return Report(SNAP, 0, (), (), (ADD, DROP, REINDEX), (), "fake", 0, assessments=assessments)


def test_remember_lowers_the_score_and_cites() -> None:
    before = assessed()
    kept = copy.deepcopy(before.assessments)
    adjustment = memory_adjustment([REJECTED])
    after = remember(before, {recommendation_id(ADD): adjustment})
    moved = after.assessments[recommendation_id(ADD)]
    assert moved.confidence.score == pytest.approx(0.6933)
    assert not moved.confidence.eligible
    assert moved.confidence.breakdown["reviewer_memory"] == pytest.approx(-0.1667, abs=1e-4)
    assert sum(moved.confidence.breakdown.values()) == pytest.approx(moved.confidence.score)
    assert moved.memory == tuple(cite(adjustment))
    assert moved.memory[0].startswith("Reviewer memory moved the confidence by −0.17")
    assert "`events` in this repository was rejected (changes requested)" in moved.memory[1]
    # Untouched: the other assessment, the input report, its recommendations.
    assert after.assessments[recommendation_id(DROP)] is before.assessments[recommendation_id(DROP)]
    assert before.assessments == kept
    assert after is not before and after.recommendations == before.recommendations


def test_remember_leaves_alone_what_cites_nothing_or_was_not_assessed() -> None:
    before = assessed()
    after = remember(
        before,
        {
            recommendation_id(DROP): Adjustment(),  # nothing cited
            recommendation_id(REINDEX): memory_adjustment([REJECTED]),  # not assessed
            "create_index:00000000": memory_adjustment([REJECTED]),  # not in the report
        },
    )
    assert after.assessments == before.assessments
    assert recommendation_id(REINDEX) not in after.assessments


def test_remember_twice_does_not_count_twice() -> None:
    adjustments = {recommendation_id(ADD): memory_adjustment([REJECTED])}
    once = remember(assessed(), adjustments)
    twice = remember(once, adjustments)
    assert twice.assessments == once.assessments


def test_merges_raise_within_the_bound() -> None:
    merged = [MemoryHit(1.0, "accept", True, "public.orders", "drop_index", "", "merged")] * 3
    after = remember(assessed(), {recommendation_id(DROP): memory_adjustment(merged)})
    conf = after.assessments[recommendation_id(DROP)].confidence
    assert conf.score == pytest.approx(1.0)  # 0.9 + 0.10, the upper bound
    assert conf.breakdown["reviewer_memory"] == pytest.approx(0.1)


def test_merges_never_lift_a_recommendation_to_the_bar() -> None:
    merged = [MemoryHit(1.0, "accept", True, "public.events", "create_index", "", "merged")] * 3
    fresh = assessed()
    unmeasured = replace(
        fresh.assessments[recommendation_id(ADD)],
        confidence=Confidence(0.7, {"finding": 0.5, "stats_freshness": 0.2}),
    )
    report = replace(fresh, assessments={**fresh.assessments, recommendation_id(ADD): unmeasured})
    kept = remember(report, {recommendation_id(ADD): memory_adjustment(merged)})
    held = kept.assessments[recommendation_id(ADD)]
    assert held.confidence.score == pytest.approx(0.7) and not held.confidence.eligible
    assert held.confidence.breakdown["reviewer_memory"] == 0.0
    assert held.memory[0].startswith("Reviewer memory moved the confidence by +0.00")
    assert "never lifts a recommendation to the bar" in held.memory[-1]


# ---------------------------------------------------------------------- stored_ignores


def test_stored_ignores_by_fingerprint() -> None:
    found = stored_ignores([ADD, DROP], [("fingerprint", fingerprint(ADD))])
    assert found == {
        recommendation_id(ADD): "ignored with `@db-architect ignore` on its pull request"
    }
    whole_id = stored_ignores([ADD], [("fingerprint", recommendation_id(ADD).upper())])
    assert list(whole_id) == [recommendation_id(ADD)]


@pytest.mark.parametrize("value", ["events", "public.events", "Events"])
def test_stored_ignores_by_table(value: str) -> None:
    found = stored_ignores([ADD, DROP, REINDEX], [("table", value)])
    assert found == {
        recommendation_id(ADD): f"table `events` ignored with `@db-architect ignore table {value}`"
    }


def test_stored_ignores_other_schema_and_slug() -> None:
    found = stored_ignores([ADD, REINDEX], [("table", "sales.events")], slug="dba-bot")
    assert found == {
        recommendation_id(REINDEX): "table `sales.events` ignored with "
        "`@dba-bot ignore table sales.events`"
    }


def test_a_fingerprint_ignore_wins_and_nothing_else_matches() -> None:
    ignores = [("table", "events"), ("fingerprint", fingerprint(ADD)), ("fingerprint", "deadbeef")]
    found = stored_ignores([ADD, DROP], ignores)
    assert found == {
        recommendation_id(ADD): "ignored with `@db-architect ignore` on its pull request"
    }
    assert stored_ignores([ADD], []) == {}


def test_unknown_ignore_kind_is_refused() -> None:
    with pytest.raises(ValueError, match=re.escape("unknown ignore kind 'rule'")):
        stored_ignores([ADD], [("rule", "workload")])
