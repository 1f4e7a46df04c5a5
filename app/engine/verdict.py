"""Proof before proposal: which statements to measure, and the verdict on what was measured."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from app.engine.advisor.audit import Report, recommendation_id
from app.engine.model import Analyzed, Recommendation, Rejection, StatementKind
from app.engine.proof.confidence import (
    MIN_CONFIDENCE,
    Assessment,
    create_confidence,
    drop_confidence,
)
from app.engine.proof.evidence import Evidence, EvidenceConfig, create_verdict, drop_verdict
from app.engine.proof.reproduce import FACTOR


@dataclass(frozen=True, slots=True)
class Affected:
    """A workload statement to measure for a recommendation, with the planner's estimates."""

    statement: Analyzed
    write: bool
    cost_before: float | None = None
    cost_after: float | None = None


@dataclass(frozen=True, slots=True)
class ProofConfig:
    """How many statements to measure per recommendation, and the judging thresholds."""

    max_reads: int = 8
    max_writes: int = 4
    evidence: EvidenceConfig = field(default_factory=EvidenceConfig)
    min_confidence: float = MIN_CONFIDENCE


def _touches(stmt: Analyzed, table: str, columns: Sequence[str]) -> bool:
    """The statement reads ``table`` through one of ``columns`` (predicate, join, order)."""
    for scan in stmt.scans:
        if scan.table != table or scan.write:
            continue
        keys = {p.key for p in scan.predicates} | set(scan.join_keys)
        keys |= {k.key for k in scan.order_by}
        if not columns or keys & set(columns):
            return True
    return False


def _is_write(stmt: Analyzed, table: str) -> bool:
    return stmt.kind is not StatementKind.select and any(
        s.write and s.table == table for s in stmt.scans
    )


def affected(
    rec: Recommendation, analyzed: Sequence[Analyzed], config: ProofConfig | None = None
) -> list[Affected]:
    """The statements whose timings prove or disprove ``rec``.

    A new index: the statements whose estimated cost it changes (or, for a finding without
    estimates, those that read the table through its leading column), plus the writes to its
    table. A drop: every statement that reads the table through the index's columns, plus the
    writes. Heaviest first, bounded by ``max_reads`` and ``max_writes``.
    """
    config = config or ProofConfig()
    by_text = {a.query.text: a for a in analyzed}
    reads: list[Affected] = []
    for effect in rec.effects:
        stmt = by_text.get(effect.query.text)
        if stmt is not None and not _is_write(stmt, rec.table):
            reads.append(Affected(stmt, False, effect.cost_before, effect.cost_after))
    if not rec.effects:
        lead = rec.columns[:1] if rec.action == "create_index" else rec.columns
        reads = [
            Affected(a, False)
            for a in sorted(analyzed, key=lambda a: -a.query.total_ms)
            if not _is_write(a, rec.table) and _touches(a, rec.table, lead)
        ]
    writes = [
        Affected(a, True)
        for a in sorted(analyzed, key=lambda a: (-a.query.calls, -a.query.total_ms))
        if _is_write(a, rec.table)
    ]
    return [*reads[: config.max_reads], *writes[: config.max_writes]]


def workload_share(targets: Sequence[Affected], analyzed: Sequence[Analyzed]) -> float:
    """Share of the workload's total time (calls when times are unknown) in the reads."""
    total = sum(a.query.total_ms for a in analyzed)
    mine = sum(t.statement.query.total_ms for t in targets if not t.write)
    if total > 0:
        return mine / total
    calls = sum(max(a.query.calls, 1) for a in analyzed)
    mine_calls = sum(max(t.statement.query.calls, 1) for t in targets if not t.write)
    return mine_calls / calls if calls else 0.0


def assess(
    report: Report,
    evidence: Mapping[str, Evidence],
    *,
    now: datetime,
    config: ProofConfig | None = None,
) -> Report:
    """Reject what the measurements contradict (with numbers) and score the rest.

    ``evidence`` maps recommendation ids to what validation measured; recommendations without
    an entry are scored on estimates alone, which keeps them below the PR threshold.
    """
    config = config or ProofConfig()
    kept: list[Recommendation] = []
    rejected: list[Rejection] = []
    assessments: dict[str, Assessment] = {}
    for rec in report.recommendations:
        rid = recommendation_id(rec)
        ev = evidence.get(rid)
        table = report.snapshot.table(rec.table)
        if rec.action == "create_index":
            why = create_verdict(ev, config.evidence) if ev is not None else None
            targets = affected(rec, report.analyzed, config)
            conf = create_confidence(
                ev,
                workload_share=workload_share(targets, report.analyzed),
                table=table,
                now=now,
                writes_table=any(t.write for t in targets),
                threshold=config.min_confidence,
            )
        else:
            why = drop_verdict(ev, config.evidence) if ev is not None else None
            conf = drop_confidence(rec, ev, table=table, now=now, threshold=config.min_confidence)
        if why is not None:
            rejected.append(Rejection(_label(rec), why))
            continue
        lowered = conf.breakdown.get("unreproduced")
        if lowered is not None and ev is not None:
            rec = dataclasses.replace(rec, reasons=(*rec.reasons, _unreproduced(ev, lowered)))
        kept.append(rec)
        assessments[rid] = Assessment(conf, ev)
    return dataclasses.replace(
        report,
        recommendations=tuple(kept),
        rejected=(*report.rejected, *rejected),
        assessments=assessments,
        min_confidence=config.min_confidence,
    )


def _unreproduced(ev: Evidence, lowered: float) -> str:
    missed = [s for s in ev.reads() if s.measured and s.reproduced is False]
    return (
        f"Confidence lowered by {-lowered:.0%}: for {len(missed)} of the measured statements no "
        f"synthesized parameter set, resampled ranges and values included, came within "
        f"{FACTOR:g}× of the mean time and rows per call pg_stat_statements recorded, so the "
        "timings may not be the workload's (each statement's notes give the figures)"
    )


def _label(rec: Recommendation) -> str:
    if rec.action == "create_index":
        keys = ", ".join(rec.columns)
        where = f" WHERE {rec.where}" if rec.where else ""
        return f"{rec.table} ({keys}){where}"
    return f"{rec.action.replace('_index', '')} {rec.index_name}"
