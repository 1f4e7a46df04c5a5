"""The PR plan: ordering, the bar, ignores, existing PRs, and both rate limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.bot.pulls.fixpr import branch_name, fingerprint
from app.bot.pulls.plan import Candidate, Decision, ExistingPull, plan_prs
from app.bot.repo_config import Ignore
from app.engine.model import Recommendation, recommendation_id

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def rec(table: str, column: str, action: str = "create_index") -> Recommendation:
    return Recommendation(action, f"public.{table}", (column,), f"{table}_{column}_idx", "DDL")


def cand(r: Recommendation, confidence: float = 0.9, *, eligible: bool | None = None) -> Candidate:
    return Candidate(
        rec_id=recommendation_id(r),
        fingerprint=fingerprint(r),
        branch=branch_name(r),
        table=r.table,
        confidence=confidence,
        eligible=confidence >= 0.8 if eligible is None else eligible,
    )


def pull(
    number: int,
    c: Candidate | None = None,
    *,
    state: str = "open",
    merged: bool = False,
    age: timedelta = timedelta(days=2),
    meta: bool = True,
) -> ExistingPull:
    branch = c.branch if c else f"db-architect/add-index/other-{number:08x}"
    return ExistingPull(
        number=number,
        branch=branch,
        state=state,
        merged=merged,
        created_at=NOW - age,
        fingerprint=(c.fingerprint if c else f"{number:08x}") if meta else None,
    )


def plan(
    candidates: list[Candidate],
    existing: list[ExistingPull] | None = None,
    *,
    concurrent: int = 5,
    hourly: int = 2,
    **kw: object,
) -> list[Decision]:
    return plan_prs(
        candidates,
        existing or [],
        now=NOW,
        concurrent_limit=concurrent,
        hourly_limit=hourly,
        **kw,  # type: ignore[arg-type]
    )


A, B, C = rec("orders", "customer_id"), rec("orders", "status"), rec("events", "kind")


def verdicts(decisions: list[Decision]) -> list[tuple[str, str]]:
    return [(d.candidate.rec_id, d.verdict) for d in decisions]


def test_best_first_ties_by_id() -> None:
    a, b, c = cand(A, 0.85), cand(B, 0.95), cand(C, 0.85)
    decisions = plan([a, b, c], hourly=10)
    tied = sorted([a.rec_id, c.rec_id])
    assert [d.candidate.rec_id for d in decisions] == [b.rec_id, *tied]
    assert all(d.verdict == "open" for d in decisions)


def test_below_the_bar_holds() -> None:
    [low] = plan([cand(A, 0.74)])
    assert (low.verdict, low.reason) == ("hold", "confidence 0.74 is below the 0.80 bar")
    [raised] = plan([cand(A, 0.85)], min_confidence=0.9)
    assert raised.verdict == "hold" and raised.reason == "confidence 0.85 is below the 0.90 bar"
    [odd] = plan([cand(A, 0.85, eligible=False)])
    assert odd.verdict == "hold" and "not eligible" in odd.reason
    assert not low.settled


def test_below_the_bar_does_not_consume_limits() -> None:
    decisions = plan([cand(A, 0.5), cand(B, 0.9), cand(C, 0.88)], hourly=2)
    assert [d.verdict for d in decisions] == ["open", "open", "hold"]


def test_ignored_by_config() -> None:
    a = cand(A)
    recs = {a.rec_id: A}
    [by_table] = plan([a], ignore=Ignore(tables=("orders",)), recs=recs)
    assert by_table.verdict == "hold" and by_table.settled
    assert by_table.reason == "ignored by .github/db-architect.yml: ignore.tables has `orders`"
    [by_rule] = plan([a], ignore=Ignore(rules=("workload",)), recs=recs)
    assert "ignore.rules has `workload`" in by_rule.reason
    [by_fp] = plan([a], ignore=Ignore(fingerprints=(a.fingerprint,)))  # no recs needed
    assert by_fp.verdict == "hold"
    [by_action] = plan([a], ignore=Ignore(rules=("create_index",)))
    assert by_action.verdict == "hold"
    [kept] = plan([a], ignore=Ignore(tables=("events",)), recs=recs)
    assert kept.verdict == "open"


def test_ignored_by_a_reviewer() -> None:
    a, b = cand(A), cand(B)
    reason = "ignored with `@db-architect ignore` on its pull request"
    decisions = plan([a, b], [pull(12, a)], ignored={a.rec_id: reason}, hourly=10)
    held, opened = decisions
    assert (held.verdict, held.reason, held.settled) == ("hold", reason, True)
    assert held.existing is not None and held.existing.number == 12  # held, not updated
    assert (opened.candidate.rec_id, opened.verdict) == (b.rec_id, "open")


def test_stored_ignores_do_not_use_up_the_limits() -> None:
    a, b = cand(A, 0.95), cand(B, 0.9)
    decisions = plan([a, b], ignored={a.rec_id: "table `orders` ignored"}, hourly=1)
    assert verdicts(decisions) == [(a.rec_id, "hold"), (b.rec_id, "open")]


def test_config_ignore_is_named_before_a_stored_one() -> None:
    a = cand(A)
    [held] = plan([a], ignore=Ignore(tables=("orders",)), ignored={a.rec_id: "by a reviewer"})
    assert held.reason.startswith("ignored by .github/db-architect.yml")


def test_a_stored_ignore_settles_even_below_the_bar() -> None:
    low = cand(A, 0.5)
    [held] = plan([low], ignored={low.rec_id: "by a reviewer"})
    assert held.reason == "by a reviewer" and held.settled


def test_open_pr_is_updated_outside_the_limits() -> None:
    a, b = cand(A), cand(B)
    existing = [pull(12, a), pull(13), pull(14)]
    decisions = plan([a, b], existing, concurrent=4, hourly=1)
    assert verdicts(decisions) == [(a.rec_id, "update"), (b.rec_id, "open")]
    assert decisions[0].existing == existing[0] and decisions[0].reason.startswith("#12 is open")


def test_open_pr_found_by_fingerprint_when_the_branch_differs() -> None:
    a = cand(A)
    moved = ExistingPull(12, "db-architect/add-index/renamed-x", "open", False, NOW, a.fingerprint)
    [d] = plan([a], [moved])
    assert d.verdict == "update" and d.existing == moved


def test_merged_and_closed_prs_hold() -> None:
    a, b = cand(A), cand(B)
    merged = pull(12, a, state="closed", merged=True)
    closed = pull(13, b, state="closed")
    by_id = {d.candidate.rec_id: d for d in plan([a, b], [merged, closed])}
    assert by_id[a.rec_id].reason == "already merged in #12" and by_id[a.rec_id].settled
    assert by_id[b.rec_id].reason == (
        "ignored: #13 was closed without merging; it comes back only if the recommendation changes"
    )
    assert by_id[b.rec_id].verdict == "hold" and by_id[b.rec_id].existing == closed


def test_an_open_pr_beats_an_older_closed_one() -> None:
    a = cand(A)
    old = pull(3, a, state="closed", age=timedelta(days=30))
    current = pull(9, a)
    [d] = plan([a], [old, current])
    assert d.verdict == "update" and d.existing == current


def test_concurrent_limit() -> None:
    a, b, c = cand(A, 0.95), cand(B, 0.9), cand(C, 0.85)
    existing = [pull(n) for n in (1, 2, 3)]
    decisions = plan([a, b, c], existing, concurrent=5, hourly=10)
    assert [d.verdict for d in decisions] == ["open", "open", "hold"]
    assert decisions[2].reason == (
        "rate-limited: pr_concurrent_limit 5 reached (5 open, 2 of them in this audit)"
    )
    assert not decisions[2].settled


def test_closed_prs_do_not_count_as_open() -> None:
    existing = [pull(n, state="closed") for n in (1, 2, 3, 4, 5)]
    [d] = plan([cand(A)], existing, concurrent=5)
    assert d.verdict == "open"


def test_hourly_limit_counts_recent_prs_in_any_state() -> None:
    recent = [
        pull(1, age=timedelta(minutes=10), state="closed"),
        pull(2, age=timedelta(minutes=59)),
        pull(3, age=timedelta(minutes=61)),
    ]
    decisions = plan([cand(A, 0.95), cand(B)], recent, hourly=3)
    assert [d.verdict for d in decisions] == ["open", "hold"]
    assert (
        decisions[1].reason
        == "rate-limited: pr_hourly_limit 3 reached (3 in the last hour, 1 of them in this audit)"
    )


def test_limits_of_zero_open_nothing() -> None:
    [d] = plan([cand(A)], concurrent=0)
    assert d.verdict == "hold" and d.reason.startswith("rate-limited: pr_concurrent_limit is 0")
    [h] = plan([cand(A)], hourly=0)
    assert h.verdict == "hold" and h.reason.startswith("rate-limited: pr_hourly_limit is 0")


def test_limits_still_allow_updates() -> None:
    a = cand(A)
    [d] = plan([a], [pull(7, a, age=timedelta(minutes=1))], concurrent=0, hourly=0)
    assert d.verdict == "update"


def test_pulls_of_people_do_not_count() -> None:
    human = ExistingPull(99, "feature/faster-orders", "open", False, NOW, None)
    [d] = plan([cand(A)], [human] * 5, concurrent=1, hourly=1)
    assert d.verdict == "open"


def test_a_repeated_candidate_is_decided_once() -> None:
    a = cand(A)
    decisions = plan([a, a], hourly=5)
    assert verdicts(decisions) == [(a.rec_id, "open")]


def test_pull_without_metadata_found_by_branch() -> None:
    a = cand(A)
    [d] = plan([a], [pull(5, a, meta=False, state="closed")])
    assert d.verdict == "hold" and "#5 was closed" in d.reason


def test_a_closed_or_merged_pr_settles_even_below_the_bar() -> None:
    low, merged = cand(A, 0.5), cand(B, 0.4)
    decisions = plan([low, merged], [pull(7, low, state="closed"), pull(8, merged, merged=True)])
    reasons = {d.candidate.rec_id: (d.reason, d.settled) for d in decisions}
    assert reasons[low.rec_id][0].startswith("ignored: #7 was closed without merging")
    assert reasons[merged.rec_id] == ("already merged in #8", True)
    assert all(d.settled for d in decisions)
