"""Reviews, comments, merges and commands on the bot's PRs become memory and actions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from app.adapters.llm import ClaudeUnavailable
from app.adapters.memory import FeedbackRow, StoredFeedback, StoredRecommendation
from app.bot.memory.feedback import Classified
from app.bot.pulls.fixpr import PrMeta, pr_body
from app.flows.deliveries import handle
from app.flows.feedback import FeedbackDeps
from tests import payloads
from tests.unit.flows.test_deliveries import job, setup

BOT = "db-architect[bot]"
FP = "3f9a1c2b"
META = PrMeta(
    fingerprint=FP,
    rec_id=f"create_index:{FP}",
    action="create_index",
    table="public.events",
    revision="c0ffee",
    confidence=0.86,
    audit_id=None,
)


def pull(
    *, author: str = BOT, branch: str = f"db-architect/index/events-{FP}", state: str = "open"
) -> dict[str, Any]:
    """PR #12 as GitHub sends it (``state``: open, closed or merged)."""
    return payloads.pull(
        user=author,
        branch=branch,
        state=state,
        title="perf(db): add index on events (user_id)",
        body=pr_body("### Add index on public.events (user_id)\n\nevidence", META),
    )


class FakeMemory:
    """The store's reviewer memory, in a dict."""

    def __init__(self) -> None:
        self.rows: list[FeedbackRow] = []
        self.states: dict[str, tuple[str, int | None]] = {}
        self.ignored: list[tuple[str, str, str | None]] = []
        self.recs = {
            FP: StoredRecommendation(
                id=5,
                rec_id=META.rec_id,
                action="create_index",
                table_name="public.events",
                state="pr_open",
                confidence=0.86,
                breakdown={"benefit": 0.4, "measured": 0.3, "reviewer_memory": -0.02},
                pr_number=12,
                descriptor="add index on events (user_id); table events: write-heavy",
            )
        }

    async def recommendation(
        self, repository: str, fingerprint: str
    ) -> StoredRecommendation | None:
        return self.recs.get(fingerprint)

    async def add_feedback(self, rows: Sequence[FeedbackRow]) -> list[int]:
        known = {(r.source, r.source_id) for r in self.rows}
        new = [r for r in rows if (r.source, r.source_id) not in known]
        self.rows.extend(new)
        return list(range(len(self.rows) - len(new) + 1, len(self.rows) + 1))

    async def has_feedback(self, repository: str, source: str, source_id: str) -> bool:
        return any((r.source, r.source_id) == (source, source_id) for r in self.rows)

    async def set_state(
        self, repository: str, fingerprint: str, state: str, pr_number: int | None = None
    ) -> bool:
        self.states[fingerprint] = (state, pr_number)
        return True

    async def add_ignore(self, repository: str, kind: str, value: str, author: str | None) -> None:
        self.ignored.append((kind, value, author))

    async def feedback_on(
        self, repository: str, fingerprint: str, limit: int = 10
    ) -> list[StoredFeedback]:
        return [
            StoredFeedback(
                r.source, r.author, r.classification, r.reason, r.body, datetime.now(UTC)
            )
            for r in reversed(self.rows)
            if r.fingerprint == fingerprint
        ][:limit]


async def fake_embed(texts: Sequence[str]) -> list[list[float]]:
    return [[float(len(t) % 7), 1.0] + [0.0] * 382 for t in texts]


class FakeClaude:
    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.calls: list[str] = []

    async def classify(
        self, text: str, *, source: str, review_state: str | None, recommendation: str
    ) -> Classified:
        self.calls.append("classify")
        if self.fail:
            raise ClaudeUnavailable("Claude is rate-limited; try again later")
        return Classified("concern", "write load on a hot table")

    async def explain(self, evidence: str) -> str:
        self.calls.append("explain")
        if self.fail:
            raise ClaudeUnavailable("Claude is down")
        return "Lookups by user scan the whole table; the index lets them jump to the rows."


def with_memory(
    permission: str = "write", *, claude: FakeClaude | None = None
) -> tuple[Any, Any, Any, FakeMemory]:
    deps, repo, queued = setup(permission)
    memory = FakeMemory()
    deps.feedback = FeedbackDeps(memory=memory, embed=fake_embed, prose=claude)
    return deps, repo, queued, memory


async def test_changes_requested_review_becomes_a_classified_embedded_row() -> None:
    deps, repo, _, memory = with_memory()
    payload = payloads.pull_request_review(
        pull(), "changes_requested", "This table is write-heavy; another index slows inserts."
    )

    outcome = await handle(job("pull_request_review", payload), deps)

    assert outcome == "feedback: concern (changes requested: write load)"
    (row,) = memory.rows
    assert (row.source, row.source_id, row.author) == ("review", "review:80001", "carol")
    assert (row.recommendation_id, row.fingerprint, row.table_name) == (5, FP, "public.events")
    assert row.embedding is not None and len(row.embedding) == 384
    assert repo.calls == []  # feedback is quiet: no reaction, no reply


async def test_a_retried_review_is_stored_once_and_classified_once() -> None:
    claude = FakeClaude()
    deps, _, _, memory = with_memory(claude=claude)
    review = payloads.pull_request_review(pull(), "commented", "We insert a lot here.")
    delivery = job("pull_request_review", review)

    assert (await handle(delivery, deps)).startswith("feedback: concern")
    assert await handle(delivery, deps) == "feedback already recorded"
    assert len(memory.rows) == 1
    assert claude.calls == ["classify"]  # the retry asked nobody again


async def test_empty_commented_reviews_and_other_pull_requests_are_ignored() -> None:
    deps, _, _, memory = with_memory()
    empty = payloads.pull_request_review(pull(), "commented", None)
    theirs = payloads.pull_request_review(pull(author="alice"), "approved", "lgtm")
    robot = payloads.pull_request_review(pull(), "approved", "ok", login="ci[bot]", kind="Bot")

    assert await handle(job("pull_request_review", empty), deps) == "ignored: empty review"
    assert (await handle(job("pull_request_review", theirs), deps)).startswith("ignored")
    assert (await handle(job("pull_request_review", robot), deps)).startswith("ignored")
    assert memory.rows == []


async def test_review_comment_and_conversation_comment_are_feedback() -> None:
    deps, _, _, memory = with_memory()
    line = payloads.pull_request_review_comment(pull(), "Why not a partial index?")
    talk = payloads.pull_comment(pull(), "Don't merge this, we drop the table next week.")

    first = await handle(job("pull_request_review_comment", line, "d-1"), deps)
    second = await handle(job("issue_comment", talk, "d-2"), deps)

    assert first.startswith("feedback: question")
    assert second.startswith("feedback: reject")
    assert [r.source for r in memory.rows] == ["review_comment", "comment"]


async def test_claude_classifies_when_configured_and_the_rules_take_over_when_it_fails() -> None:
    claude = FakeClaude()
    deps, _, _, memory = with_memory(claude=claude)
    text = "We insert 5k rows a second here."
    payload = payloads.pull_request_review(pull(), "commented", text)

    assert await handle(job("pull_request_review", payload), deps) == (
        "feedback: concern (write load on a hot table)"
    )
    claude.fail = True
    other = payloads.pull_request_review(pull(), "commented", "lgtm", review_id=80002)
    assert await handle(job("pull_request_review", other, "d-2"), deps) == (
        "feedback: accept (approved in a review)"
    )
    assert claude.calls == ["classify", "classify"]
    assert len(memory.rows) == 2


async def test_merge_and_close_move_the_ledger_and_are_remembered() -> None:
    deps, repo, _, memory = with_memory()
    merged = pull(state="merged")

    outcome = await handle(job("pull_request", payloads.pull_request_closed(merged)), deps)

    assert "feedback: accept (merged)" in outcome
    assert memory.states[FP] == ("merged", 12)
    assert ("delete_branch", f"db-architect/index/events-{FP}") in repo.calls

    deps, _, _, memory = with_memory()
    closed = pull(state="closed")
    outcome = await handle(job("pull_request", payloads.pull_request_closed(closed)), deps)
    assert "feedback: reject (closed without merging)" in outcome
    assert memory.states[FP] == ("ignored", 12)
    assert memory.rows[0].source == "close"


async def test_ignore_command_remembers_closes_and_answers_once() -> None:
    deps, repo, _, memory = with_memory()
    payload = payloads.pull_comment(pull(), "@db-architect ignore")

    outcome = await handle(job("issue_comment", payload), deps)

    assert outcome == "ignore: done"
    assert memory.ignored == [("fingerprint", FP, "carol")]
    assert memory.states[FP] == ("ignored", 12)
    assert memory.rows[0].source == "command" and memory.rows[0].classification == "reject"
    kinds = [c[0] for c in repo.calls]
    assert kinds == ["react", "permission", "pull", "close_pull", "delete_branch", "comment"]
    reply = repo.calls[-1][1][1]
    assert "will not propose this change" in reply and FP in reply


async def test_ignore_table_closes_only_a_pull_request_on_that_table() -> None:
    deps, repo, _, memory = with_memory()
    other = payloads.pull_comment(pull(), "@db-architect ignore table orders", comment_id=1)
    await handle(job("issue_comment", other, "d-1"), deps)
    assert memory.ignored == [("table", "public.orders", "carol")]
    assert "close_pull" not in [c[0] for c in repo.calls]
    assert memory.rows == [] and FP not in memory.states  # says nothing about this PR

    same = payloads.pull_comment(pull(), "@db-architect ignore table Events", comment_id=2)
    await handle(job("issue_comment", same, "d-2"), deps)
    assert ("table", "public.events", "carol") in memory.ignored
    assert ("close_pull", 12) in repo.calls


async def test_recheck_and_recreate_queue_an_audit_of_the_table_that_edits_the_reply() -> None:
    deps, repo, queued, _ = with_memory()
    recheck = payloads.pull_comment(pull(), "@db-architect recheck", comment_id=1)
    recreate = payloads.pull_comment(pull(), "@db-architect recreate", comment_id=2)

    assert await handle(job("issue_comment", recheck, "d-1"), deps) == "audit queued"
    assert await handle(job("issue_comment", recreate, "d-2"), deps) == "audit queued"

    first, second = queued
    assert first.tables == ("public.events",) and first.issue_number == 12
    assert first.comment_id is not None and first.force_fingerprint is None
    assert first.trigger == "command" and first.extra == {"verb": "recheck"}
    assert second.force_fingerprint == FP
    replies = [c[1][1] for c in repo.calls if c[0] == "comment"]
    assert "re-measure" in replies[0] and "rebuild this branch" in replies[1]


async def test_readers_may_only_ask_for_an_explanation() -> None:
    deps, repo, queued, memory = with_memory("read")
    ignore = payloads.pull_comment(pull(), "@db-architect ignore", comment_id=1)
    explain = payloads.pull_comment(pull(), "@db-architect explain", comment_id=2)

    assert (await handle(job("issue_comment", ignore, "d-1"), deps)).startswith("refused")
    assert await handle(job("issue_comment", explain, "d-2"), deps) == "explained"

    assert memory.ignored == [] and not queued
    refusal, answer = [c[1][1] for c in repo.calls if c[0] == "comment"]
    assert "write access" in refusal
    assert "Confidence: **86%**" in answer and "write-heavy" in answer


async def test_explain_uses_claude_once_and_says_what_reviewers_said() -> None:
    claude = FakeClaude()
    deps, repo, _, _ = with_memory(claude=claude)
    review = payloads.pull_request_review(pull(), "changes_requested", "Too write-heavy.")
    await handle(job("pull_request_review", review, "d-0"), deps)

    for n in (1, 2):
        payload = payloads.pull_comment(pull(), "@db-architect explain", comment_id=n)
        await handle(job("issue_comment", payload, f"d-{n}"), deps)

    assert claude.calls == ["classify", "explain"]  # the second explanation came from the memo
    answer = [c[1][1] for c in repo.calls if c[0] == "comment"][-1]
    assert "jump to the rows" in answer
    assert "@\u200bcarol" in answer and "Too write-heavy." in answer


@pytest.mark.parametrize(
    ("body", "expected"),
    [("@db-architect frobnicate", "is not a command"), ("@db-architect", "needs a command")],
)
async def test_a_bad_command_gets_the_usage(body: str, expected: str) -> None:
    deps, repo, _, memory = with_memory()

    outcome = await handle(job("issue_comment", payloads.pull_comment(pull(), body)), deps)

    assert outcome == "refused: bad command" and memory.rows == []
    reply = next(c[1][1] for c in repo.calls if c[0] == "comment")
    assert expected in reply and "@db-architect recheck" in reply


async def test_without_a_store_feedback_is_not_kept_but_nothing_breaks() -> None:
    deps, repo, _ = setup()
    review = payloads.pull_request_review(pull(), "approved", "lgtm")

    assert await handle(job("pull_request_review", review), deps) == (
        "ignored: no store for feedback"
    )
    assert repo.calls == []


async def test_drive_by_reviews_and_comments_do_not_count() -> None:
    deps, _, _, memory = with_memory()
    review = payloads.pull_request_review(pull(), "approved", "lgtm")
    review["review"]["author_association"] = "NONE"
    talk = payloads.pull_comment(pull(), "Ship it!")
    talk["comment"]["author_association"] = "CONTRIBUTOR"

    assert await handle(job("pull_request_review", review, "d-1"), deps) == (
        "ignored: feedback counts from the repository's members"
    )
    assert await handle(job("issue_comment", talk, "d-2"), deps) == (
        "ignored: feedback counts from the repository's members"
    )
    assert memory.rows == []


async def test_without_a_store_commands_say_so() -> None:
    deps, repo, _ = setup()
    payload = payloads.pull_comment(pull(), "@db-architect ignore")

    assert await handle(job("issue_comment", payload), deps) == "refused: no store"
    (reply,) = [c[1][1] for c in repo.calls if c[0] == "comment"]
    assert "DBARCH_STORE_DSN" in reply
