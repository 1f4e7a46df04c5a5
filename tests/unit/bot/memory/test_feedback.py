"""Reviewer feedback: classifier rules and precedence, themes, quotes, the memory adjustment."""

from __future__ import annotations

import pytest

from app.bot.memory.feedback import (
    MAX_DELTA,
    MIN_DELTA,
    SIMILARITY_FLOOR,
    Adjustment,
    Classification,
    Classified,
    MemoryHit,
    apply_memory,
    cite,
    classify,
    contribution,
    memory_adjustment,
    quote,
    themes,
)
from app.engine import markdown as md
from app.engine.proof.confidence import Confidence
from tests.markdown_check import assert_inert


def hit(
    similarity: float,
    classification: Classification = "reject",
    *,
    same: bool = True,
    table: str = "public.events",
    text: str = "write-heavy table",
    reason: str = "",
) -> MemoryHit:
    return MemoryHit(similarity, classification, same, table, "create_index", text, reason)


# ---------------------------------------------------------------- classify


def test_merge_and_close_decide_whatever_the_text() -> None:
    assert classify("pull_request", merged=True, text="no") == Classified("accept", "merged")
    assert classify("pull_request", merged=False, text="lgtm") == Classified(
        "reject", "closed without merging"
    )


@pytest.mark.parametrize("state", ["approved", "APPROVED"])
def test_approved_review_accepts(state: str) -> None:
    assert classify("review", review_state=state, text="the table is write-heavy") == Classified(
        "accept", "review approved"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Classified("reject", "changes requested")),
        ("No.", Classified("reject", "changes requested")),
        ("This table is write-heavy", Classified("concern", "changes requested: write load")),
        ("No, the index bloats the disk", Classified("reject", "changes requested: index size")),
        (
            "Locks during peak and too many inserts",
            Classified("concern", "changes requested: locking, write load"),
        ),
        ("It's not write-heavy, but why?", Classified("reject", "changes requested")),
    ],
)
def test_changes_requested(text: str, expected: Classified) -> None:
    assert classify("review", review_state="CHANGES_REQUESTED", text=text) == expected


@pytest.mark.parametrize(
    ("text", "classification", "reason"),
    [
        ("LGTM", "accept", "approved in a comment"),
        ("Looks good to me", "accept", "approved in a comment"),
        ("ship it", "accept", "approved in a comment"),
        ("+1", "accept", "approved in a comment"),
        ("👍", "accept", "approved in a comment"),
        ("No", "reject", "rejected in a comment"),
        ("Nope, we don't want this", "reject", "rejected in a comment"),
        ("Please don't merge this", "reject", "rejected in a comment"),
        ("Not needed, we drop that table next month", "reject", "rejected in a comment"),
        ("wontfix", "reject", "rejected in a comment"),
        ("won't fix", "reject", "rejected in a comment"),
        ("-1", "reject", "rejected in a comment"),
        ("There is no need for this index", "reject", "rejected in a comment"),
        ("Why this column order?", "question", "question in a comment"),
        ("what about a partial index", "question", "question in a comment"),
        ("Table is write-heavy", "concern", "concern in a comment: write load"),
        ("too many writes on this one", "concern", "concern in a comment: write load"),
        ("the insert rate is 5k/s", "concern", "concern in a comment: write load"),
        ("slow writes already", "concern", "concern in a comment: write load"),
        ("Lock contention worries me", "concern", "concern in a comment: locking"),
        ("the disk is nearly full", "concern", "concern in a comment: index size"),
        ("index bloat", "concern", "concern in a comment: index size"),
        ("redundant with the existing index", "concern", "concern in a comment: redundant index"),
        ("thanks", "question", "comment without a clear verdict"),
        ("", "question", "comment without a clear verdict"),
    ],
)
def test_keyword_rules(text: str, classification: Classification, reason: str) -> None:
    assert classify("issue_comment", text=text) == Classified(classification, reason)


@pytest.mark.parametrize(
    ("text", "classification"),
    [
        ("No, the table is write-heavy", "reject"),  # reject > concern
        ("LGTM but what about locking?", "concern"),  # concern > question > accept
        ("LGTM, but why btree?", "question"),  # question > accept
        ("lgtm, no concerns", "accept"),  # "no concerns" is not a "no"
        ("No problem with the size, lgtm", "accept"),
    ],
)
def test_precedence(text: str, classification: str) -> None:
    assert classify("issue_comment", text=text).classification == classification


@pytest.mark.parametrize(
    "text",
    [
        "not write-heavy",
        "The table isn't write heavy at all",
        "no locking issues expected",
        "locking is not a problem",
        "size is fine",
        "I don't think locking is a problem",
        "disk doesn't matter here",
    ],
)
def test_negated_themes_raise_no_concern(text: str) -> None:
    assert themes(text) == set()
    assert classify("review_comment", text=text).classification != "concern"


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("We can't afford the write load", {"write_load"}),
        ("I'm not sure about the write load", {"write_load"}),
        ("Not a duplicate, but the lock worries me", {"locking"}),
    ],
)
def test_negation_that_does_not_negate(text: str, found: set[str]) -> None:
    assert themes(text) == found


@pytest.mark.parametrize(
    "text", ["doesn't look good", "I can't approve this", "not lgtm", "I wouldn't reject this"]
)
def test_negated_verdicts_count_for_nothing(text: str) -> None:
    assert classify("issue_comment", text=text) == Classified(
        "question", "comment without a clear verdict"
    )


def test_code_quotes_and_comments_are_not_the_reviewers_words() -> None:
    quoted = "> Write overhead: +3 % on inserts, lock_timeout 5 s\n\nlgtm"
    code = "```sql\nSELECT * FROM t FOR UPDATE -- lock, disk\n```\n+1 `write-heavy`"
    html = "<!-- write-heavy -->\nship it"
    for text in (quoted, code, html):
        assert themes(text) == set()
        assert classify("issue_comment", text=text).classification == "accept"


def test_sources_word_the_reason() -> None:
    assert (
        classify("review_comment", text="bloat").reason == "concern in a review comment: index size"
    )
    assert classify("review", review_state="commented", text="?").reason == "question in a review"
    assert classify("something-new", text="lgtm").reason == "approved in a comment"
    assert classify("review", review_state="dismissed", text="lgtm").classification == "accept"


def test_reasons_are_short_and_never_echo_the_text() -> None:
    text = "No! " + "secret-ish words " * 50 + "write-heavy, locks, disk, redundant"
    for state in (None, "changes_requested"):
        reason = classify("issue_comment", review_state=state, text=text).reason
        assert len(reason) <= 80
        assert "secret" not in reason


# ---------------------------------------------------------------- quote


def test_quote_prefers_the_sentence_with_a_theme() -> None:
    assert quote("Thanks! The table is write-heavy. Sorry.") == "The table is write-heavy."
    assert quote("Thanks a lot. Merging.") == "Thanks a lot."
    assert quote("```\ncode\n```") == ""


def test_quote_is_short_single_line_and_harmless() -> None:
    text = "@alice <b>this</b> `table` is write-heavy " + "very " * 40
    said = quote(text)
    assert len(said) <= 80 and said.endswith("…")
    assert "\n" not in said and "`" not in said  # inline code is left out, as it is not prose
    assert_inert(md.text(said))  # shown inert wherever it is rendered
    assert "@\u200balice" in md.text(said)


# ---------------------------------------------------------------- memory adjustment


def test_empty_memory_changes_nothing() -> None:
    assert memory_adjustment([]) == Adjustment(0.0, ())
    assert cite(Adjustment()) == []


def test_floor() -> None:
    assert contribution(hit(SIMILARITY_FLOOR - 0.01)) == 0.0
    assert contribution(hit(SIMILARITY_FLOOR)) == 0.0  # the floor itself is zero closeness
    # Unrelated tables still score 0.60–0.70 with all-MiniLM-L6-v2: they count for nothing.
    assert memory_adjustment([hit(0.69), hit(0.65, "accept")]) == Adjustment(0.0, ())
    assert memory_adjustment([hit(0.71)]).delta < 0
    assert SIMILARITY_FLOOR == 0.7


def test_formula() -> None:
    assert contribution(hit(1.0)) == pytest.approx(-0.25)
    assert contribution(hit(0.8, "concern")) == pytest.approx(-0.25 * 0.6 * (0.1 / 0.3))
    assert contribution(hit(0.85, "concern")) == pytest.approx(-0.075)
    assert contribution(hit(1.0, "accept")) == pytest.approx(0.125)
    assert contribution(hit(1.0, "question")) == 0.0
    assert contribution(hit(1.5)) == 0.0  # not a similarity


def test_same_repository_counts_double() -> None:
    here, there = hit(0.9, same=True), hit(0.9, same=False)
    assert contribution(here) == pytest.approx(2 * contribution(there))
    assert memory_adjustment([here]).delta < memory_adjustment([there]).delta < 0


def test_rejections_lower_and_merges_raise() -> None:
    assert memory_adjustment([hit(0.9, "reject")]).delta == pytest.approx(-0.1667, abs=1e-4)
    assert memory_adjustment([hit(0.9, "concern")]).delta == pytest.approx(-0.1, abs=1e-4)
    assert memory_adjustment([hit(0.9, "accept")]).delta == pytest.approx(0.0833, abs=1e-4)
    assert memory_adjustment([hit(0.9, "question")]) == Adjustment(0.0, ())


def test_bounds_are_asymmetric() -> None:
    many_no = memory_adjustment([hit(1.0)] * 10)
    many_yes = memory_adjustment([hit(1.0, "accept")] * 10)
    assert many_no.delta == MIN_DELTA == -0.25
    assert many_yes.delta == MAX_DELTA == 0.10
    assert abs(many_no.delta) > many_yes.delta


def test_cited_strongest_first_and_at_most_three() -> None:
    hits = [hit(0.78, table="a"), hit(0.95, table="b"), hit(0.8, "accept", table="c")]
    hits += [hit(0.9, same=False, table="d"), hit(0.5, table="e")]
    adjustment = memory_adjustment(hits)
    assert [c.hit.table for c in adjustment.cited] == ["b", "d", "a"]
    assert sum(c.contribution for c in adjustment.cited) != adjustment.delta  # all hits count


def test_apply_memory_adds_a_part_that_keeps_the_sum() -> None:
    base = Confidence(0.86, {"measured_speedup": 0.5, "agreement": 0.36})
    lowered = apply_memory(base, memory_adjustment([hit(0.9)]))
    assert lowered.score == pytest.approx(0.6933)
    assert not lowered.eligible
    assert lowered.breakdown["reviewer_memory"] == pytest.approx(-0.1667, abs=1e-4)
    assert sum(lowered.breakdown.values()) == pytest.approx(lowered.score)
    top = apply_memory(Confidence(0.98, {"x": 0.98}), Adjustment(0.1))
    assert top.score == 1.0 and top.breakdown["reviewer_memory"] == pytest.approx(0.02)
    bottom = apply_memory(Confidence(0.1, {"x": 0.1}), Adjustment(-0.25))
    assert bottom.score == 0.0 and sum(bottom.breakdown.values()) == pytest.approx(0.0)


def test_cite_lines() -> None:
    hits = [
        hit(0.9, reason="closed without merging"),
        MemoryHit(
            0.8, "accept", False, "sales.orders", "drop_index", "", themes=frozenset({"size"})
        ),
        hit(0.75, "concern", table="public.t`x", text="@bob\nsays `no`"),
    ]
    lines = cite(memory_adjustment(hits))
    assert lines == [
        "Reviewer memory moved the confidence by −0.17 (bounded to −0.25 … +0.10):",
        "- a similar index on `events` in this repository was rejected (closed without merging):"
        ' "write-heavy table" (similarity 0.90)',
        "- a similar index on ``t`x`` in this repository drew a concern: "
        '"@\u200bbob says \\`no\\`" (similarity 0.75)',
        "- a similar index drop in another repository was accepted (index size) (similarity 0.80)",
    ]


def test_quotes_cannot_carry_links_or_images() -> None:
    said = quote("See [the runbook](https://evil.example/x) and ![logo](https://evil.example/i)")
    hit_ = MemoryHit(0.9, "reject", True, "public.events", "create_index", said)
    cited = "\n".join(cite(memory_adjustment([hit_])))
    assert_inert(cited)
    assert "\\[the runbook\\]" in cited
