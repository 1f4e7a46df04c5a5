"""What people say on the bot's PRs: feedback rows for memory, and `@db-architect` commands."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from app.adapters.github.repo import Effects
from app.adapters.llm import ClaudeUnavailable
from app.adapters.memory import FeedbackRow, StoredFeedback, StoredRecommendation
from app.bot.commands.pr import PrCommand
from app.bot.memory.feedback import Classified, classify
from app.bot.memory.recall import feedback_text
from app.bot.pulls.ours import BotPull
from app.bot.replies.delivery import no_marker_reply
from app.bot.replies.pr import (
    PastFeedback,
    explain_reply,
    ignore_reply,
    ignore_table_reply,
)

__all__ = [
    "FeedbackDeps",
    "MemoryPort",
    "Prose",
    "explain",
    "ignore",
    "record_feedback",
]

log = structlog.get_logger(__name__)

#: Reviewer text kept with the feedback (GitHub allows 65,536 characters per comment).
MAX_BODY = 4_000
_EXPLAIN_TTL_S = 7 * 24 * 3600


class MemoryPort(Protocol):
    """The store's reviewer memory (``app.adapters.memory.Memory``)."""

    async def recommendation(
        self, repository: str, fingerprint: str
    ) -> StoredRecommendation | None: ...
    async def add_feedback(self, rows: Sequence[FeedbackRow]) -> list[int]: ...
    async def has_feedback(self, repository: str, source: str, source_id: str) -> bool: ...
    async def set_state(
        self, repository: str, fingerprint: str, state: str, pr_number: int | None = None
    ) -> bool: ...
    async def add_ignore(
        self, repository: str, kind: str, value: str, author: str | None
    ) -> None: ...
    async def feedback_on(
        self, repository: str, fingerprint: str, limit: int = 10
    ) -> list[StoredFeedback]: ...


class Prose(Protocol):
    """Claude's part (``app.adapters.llm.Claude``): it classifies and explains, never decides."""

    async def classify(
        self, text: str, *, source: str, review_state: str | None, recommendation: str
    ) -> Classified: ...
    async def explain(self, evidence: str) -> str: ...


class MemoCache(Protocol):
    """Where explanations are kept for a while (``app.flows.requests.Memo``)."""

    async def get(self, key: str) -> str | None: ...
    async def set(self, key: str, value: str, ttl_s: int) -> None: ...


@dataclass(slots=True)
class FeedbackDeps:
    """What recording feedback talks to; ``embed`` is None when no model is provisioned."""

    memory: MemoryPort
    embed: Callable[[Sequence[str]], Awaitable[list[list[float]]]] | None = None
    prose: Prose | None = None


# ---------------------------------------------------------------------- feedback in


async def record_feedback(
    deps: FeedbackDeps,
    repository: str,
    pull: BotPull,
    *,
    source: str,
    source_id: str,
    author: str | None,
    text: str = "",
    review_state: str | None = None,
    merged: bool | None = None,
) -> str:
    """Classify, embed and store one piece of feedback on ``pull``; returns the outcome.

    Claude classifies when configured (and the deterministic rules when it cannot); a merge
    or a close is never sent to it. Without a model the row is stored without a vector, and
    the next audit with a model embeds it: nothing is lost.
    """
    if await deps.memory.has_feedback(repository, source, source_id):
        return "feedback already recorded"  # before paying Claude and the model again
    stored = await _stored(deps, repository, pull)
    descriptor = (stored.descriptor if stored else None) or pull.descriptor
    words = text.strip()[:MAX_BODY]
    classified = await _classify(deps, source, words, review_state, merged, descriptor)
    vector = await _embed(deps, feedback_text(descriptor, classified.classification, words))
    row = _row(repository, pull, stored, source, source_id, author, words, classified, vector)
    added = await deps.memory.add_feedback([row])
    if not added:
        return "feedback already recorded"
    log.info(
        "feedback_recorded",
        source=source,
        classification=classified.classification,
        embedded=vector is not None,
    )
    return f"feedback: {classified.classification} ({classified.reason})"


async def _stored(
    deps: FeedbackDeps, repository: str, pull: BotPull
) -> StoredRecommendation | None:
    """The ledger's row for the PR's recommendation (None without a marker or a row)."""
    if not pull.fingerprint:
        return None
    return await deps.memory.recommendation(repository, pull.fingerprint)


def _row(
    repository: str,
    pull: BotPull,
    stored: StoredRecommendation | None,
    source: str,
    source_id: str,
    author: str | None,
    words: str,
    classified: Classified,
    vector: list[float] | None,
) -> FeedbackRow:
    """One feedback row, linked to the ledger's recommendation when there is one."""
    return FeedbackRow(
        repository=repository,
        source=source,
        source_id=source_id,
        recommendation_id=stored.id if stored else None,
        fingerprint=pull.fingerprint,
        author=author,
        body=words or None,
        classification=classified.classification,
        reason=classified.reason,
        table_name=(stored.table_name if stored else None) or pull.table,
        action=(stored.action if stored else None) or pull.action,
        embedding=vector,
    )


async def _classify(
    deps: FeedbackDeps,
    source: str,
    text: str,
    review_state: str | None,
    merged: bool | None,
    descriptor: str,
) -> Classified:
    if deps.prose is not None and merged is None and text:
        try:
            return await deps.prose.classify(
                text, source=source, review_state=review_state, recommendation=descriptor
            )
        except ClaudeUnavailable as err:
            log.warning("feedback_classified_without_claude", reason=str(err))
    return classify(source, review_state=review_state, merged=merged, text=text)


async def _embed(deps: FeedbackDeps, text: str) -> list[float] | None:
    if deps.embed is None:
        return None
    vectors = await deps.embed([text])
    return vectors[0]


# ---------------------------------------------------------------------- commands


async def ignore(
    deps: FeedbackDeps,
    effects: Effects,
    repository: str,
    pull: BotPull,
    command: PrCommand,
    *,
    login: str,
    source_id: str,
) -> str:
    """``ignore`` / ``ignore table T``: remember it, close the PR when it is covered, reply."""
    if command.verb == "ignore_table" and command.table:
        table = _table_name(command.table)
        await deps.memory.add_ignore(repository, "table", table, login)
        covered = pull.table == table
        reason = f"table {table} ignored with a command"
        reply = ignore_table_reply(login, table, closed=covered)
    else:
        if pull.fingerprint is None:
            return no_marker_reply(login)
        await deps.memory.add_ignore(repository, "fingerprint", pull.fingerprint, login)
        covered = True
        reason = "ignored with a command"
        reply = ignore_reply(login, pull.fingerprint, closed=True)
    if not covered:
        return reply  # another table's ignore says nothing about this recommendation
    if pull.fingerprint:
        await deps.memory.set_state(repository, pull.fingerprint, "ignored", pull.number)
    await _remember_command(deps, repository, pull, login, source_id, reason)
    if covered:
        await effects.close_pull(pull.number)
        if pull.branch:
            await effects.delete_branch(pull.branch)
    return reply


def _table_name(name: str) -> str:
    """``Events`` → ``public.events``: unquoted SQL names fold to lower case."""
    if name.startswith('"'):
        return name if "." in name else f"public.{name}"
    folded = name.lower()
    return folded if "." in folded else f"public.{folded}"


async def _remember_command(
    deps: FeedbackDeps,
    repository: str,
    pull: BotPull,
    login: str,
    source_id: str,
    reason: str,
) -> None:
    """An ignore is the clearest rejection there is: memory keeps it like any feedback."""
    stored = await _stored(deps, repository, pull)
    descriptor = (stored.descriptor if stored else None) or pull.descriptor
    vector = await _embed(deps, feedback_text(descriptor, "reject", reason))
    verdict = Classified("reject", reason)
    row = _row(repository, pull, stored, "command", source_id, login, "", verdict, vector)
    await deps.memory.add_feedback([row])


async def explain(
    deps: FeedbackDeps, memo: MemoCache, repository: str, pull: BotPull, *, login: str
) -> str:
    """``explain``: the stored facts, what reviewers said, and Claude's prose when configured.

    Claude's explanation is kept for a week per recommendation, so repeated requests (anyone
    with read access may ask) cost one call.
    """
    stored = await _stored(deps, repository, pull)
    said = await deps.memory.feedback_on(repository, pull.fingerprint) if pull.fingerprint else []
    prose = await _prose(deps, memo, repository, pull)
    return explain_reply(
        login,
        title=pull.title,
        confidence=stored.confidence if stored else None,
        breakdown=stored.breakdown if stored else {},
        descriptor=(stored.descriptor if stored else None) or pull.descriptor,
        feedback=[PastFeedback(f.author, f.classification, f.reason, f.body) for f in said],
        prose=prose,
    )


async def _prose(deps: FeedbackDeps, memo: MemoCache, repository: str, pull: BotPull) -> str | None:
    if deps.prose is None:
        return None
    key = f"dbarch:explain:{repository}:{pull.fingerprint or pull.number}"
    known = await memo.get(key)
    if known:
        return known
    evidence = pull.body.split("<!-- db-architect:meta", 1)[0]
    try:
        text = await deps.prose.explain(evidence)
    except ClaudeUnavailable as err:
        log.warning("explain_without_claude", reason=str(err))
        return None
    await memo.set(key, text, _EXPLAIN_TTL_S)
    return text
