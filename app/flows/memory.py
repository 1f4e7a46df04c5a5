"""Reviewer memory in an audit: similar past feedback folds into confidence; the ledger after."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol

import psycopg
import structlog

from app.adapters.memory import LedgerEntry, Neighbour, Unembedded
from app.bot.memory.feedback import MemoryHit, memory_adjustment, quote, themes
from app.bot.memory.recall import describe, feedback_text, remember, stored_ignores
from app.bot.pulls.fixpr import fingerprint
from app.bot.pulls.plan import Decision
from app.engine.model import recommendation_id
from app.engine.report import Report

__all__ = ["MEMORY_K", "AuditMemory", "Embed", "recall", "record_ledger"]

log = structlog.get_logger(__name__)

#: Texts → unit vectors (``app.adapters.embed.Embedder.embed``).
Embed = Callable[[Sequence[str]], Awaitable[list[list[float]]]]


class AuditMemory(Protocol):
    """The store's reviewer memory, as an audit uses it (``app.adapters.memory.Memory``)."""

    async def nearest_feedback(
        self, embedding: Sequence[float], *, repository: str, k: int = 5
    ) -> list[Neighbour]: ...
    async def ignores(self, repository: str) -> list[tuple[str, str]]: ...
    async def unembedded(self, repository: str, limit: int = 100) -> list[Unembedded]: ...
    async def set_embeddings(self, vectors: Mapping[int, Sequence[float]]) -> None: ...
    async def upsert_recommendation(self, entry: LedgerEntry) -> int: ...


#: Past feedback consulted per recommendation.
MEMORY_K = 5


async def recall(
    memory: AuditMemory | None, embed: Embed | None, repository: str, report: Report
) -> tuple[Report, dict[str, str]]:
    """Fold similar past feedback into each confidence; find what reviewers ignored.

    Each recommendation's descriptor is embedded and its nearest stored feedback (same
    repository ranked first) becomes a bounded adjustment cited in the evidence.
    """
    if memory is None:
        return report, {}
    ignored = stored_ignores(report.recommendations, await memory.ignores(repository))
    if embed is None or not report.recommendations:
        return report, ignored
    await _backfill(memory, embed, repository)
    recs = list(report.recommendations)
    vectors = await embed([describe(report, rec) for rec in recs])
    adjustments = {}
    for rec, vector in zip(recs, vectors, strict=True):
        found = await memory.nearest_feedback(vector, repository=repository, k=MEMORY_K)
        hits = [hit for n in _verdicts(found) if (hit := _hit(n, repository)) is not None]
        adjustments[recommendation_id(rec)] = memory_adjustment(hits)
    remembered = remember(report, adjustments)
    moved = sum(1 for a in adjustments.values() if a.cited)
    log.info("memory_consulted", recommendations=len(recs), adjusted=moved, ignored=len(ignored))
    return remembered, ignored


async def _backfill(memory: AuditMemory, embed: Embed, repository: str) -> None:
    """Embed feedback stored while no model was provisioned (a batch per audit)."""
    missing = await memory.unembedded(repository)
    if not missing:
        return
    texts = [feedback_text(m.descriptor, m.classification, m.text) for m in missing]
    vectors = await embed(texts)
    await memory.set_embeddings({m.id: v for m, v in zip(missing, vectors, strict=True)})
    log.info("memory_backfilled", rows=len(missing))


def _verdicts(found: Sequence[Neighbour]) -> list[Neighbour]:
    """One voice per past recommendation: its latest verdict (a question is not one).

    A review that rejects and the ``@db-architect ignore`` that follows are one decision
    about one recommendation; counting both would let a single pull request weigh double.
    """
    latest: dict[str, Neighbour] = {}
    for item in found:
        if item.classification not in ("accept", "reject", "concern"):
            continue
        key = f"{item.repository}:{item.fingerprint}" if item.fingerprint else f"id:{item.id}"
        if key not in latest or (item.created_at, item.id) > (
            latest[key].created_at,
            latest[key].id,
        ):
            latest[key] = item
    return sorted(latest.values(), key=lambda n: -n.similarity)


def _hit(found: Neighbour, repository: str) -> MemoryHit | None:
    """A stored feedback row as the engine weighs it (rows without a verdict weigh nothing)."""
    if found.classification not in ("accept", "reject", "concern", "question"):
        return None
    body = found.body or ""
    return MemoryHit(
        similarity=found.similarity,
        classification=found.classification,  # type: ignore[arg-type]
        same_repository=found.repository == repository,
        table=found.table_name or "",
        action=found.action or "",
        quote=quote(body) if body else "",
        reason=found.reason or "",
        themes=frozenset(themes(body)),
    )


async def record_ledger(
    memory: AuditMemory | None,
    repository: str,
    report: Report,
    decisions: Sequence[Decision],
    numbers: Mapping[str, int],
) -> None:
    """Record every recommendation and where it stands (proposed, PR open, merged, ignored).

    Best effort: this runs after publishing, and a store hiccup here must not fail (and so
    repeat) an audit whose pull requests are already out; the next audit records them.
    """
    if memory is None:
        return
    try:
        await _record_ledger(memory, repository, report, decisions, numbers)
    except psycopg.Error as err:
        log.warning("ledger_not_recorded", repository=repository, error=type(err).__name__)


async def _record_ledger(
    memory: AuditMemory,
    repository: str,
    report: Report,
    decisions: Sequence[Decision],
    numbers: Mapping[str, int],
) -> None:
    by_id = {d.candidate.rec_id: d for d in decisions}
    for rec in report.recommendations:
        rid = recommendation_id(rec)
        decision = by_id.get(rid)
        assessment = report.assessments.get(rid)
        state, number = _state(decision, numbers.get(rid))
        await memory.upsert_recommendation(
            LedgerEntry(
                repository,
                fingerprint(rec),
                rid,
                rec.action,
                rec.table,
                state,
                round(assessment.confidence.score, 4) if assessment else None,
                assessment.confidence.breakdown if assessment else None,
                number,
                descriptor=describe(report, rec),
            )
        )


def _state(decision: Decision | None, published: int | None) -> tuple[str, int | None]:
    """The ledger's state for one recommendation after this audit, and its PR if known."""
    pr = decision.existing if decision else None
    if published:
        return "pr_open", published
    if pr is not None and pr.merged:
        return "merged", pr.number
    if decision is not None and decision.settled:
        return "ignored", pr.number if pr else None
    if pr is not None and pr.state == "open":
        return "pr_open", pr.number
    return "proposed", None
