"""Proof before proposal: which statements to measure, and the verdict on what was measured."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from app.engine.model import (
    Analyzed,
    Index,
    Recommendation,
    Rejection,
    Snapshot,
    StatementKind,
    recommendation_id,
)
from app.engine.proof.confidence import (
    MIN_CONFIDENCE,
    Assessment,
    create_confidence,
    drop_confidence,
)
from app.engine.proof.evidence import Evidence, EvidenceConfig, create_verdict, drop_verdict
from app.engine.proof.measured import measurement
from app.engine.proof.method import Measurement
from app.engine.proof.reproduce import FACTOR
from app.engine.proof.twin import DROPPED, still_used, twin_reason, twin_verdict
from app.engine.report import Report, settle_coverage


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
    unmeasured: Measurement | None = None,
) -> Report:
    """Reject what the measurements contradict (with numbers) and score the rest.

    ``evidence`` maps recommendation ids to what validation measured; recommendations without
    an entry are scored on estimates alone, which keeps them below the PR threshold, and
    ``unmeasured`` says why they were not measured. Each assessment records how its
    recommendation was measured (``Assessment.measured``).
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
            if ev is not None and ev.skipped is None and still_used(ev, rec.index_name):
                ev = dataclasses.replace(
                    ev, skipped=f"not measured: the plans without {rec.index_name} still used it"
                )
            why = drop_verdict(ev, config.evidence) if ev is not None else None
            rec, proven = _twin_proof(report.snapshot, rec, ev, config)
            conf = drop_confidence(
                rec, ev, table=table, now=now, threshold=config.min_confidence, proven=proven
            )
        if why is not None:
            rejected.append(Rejection(_label(rec), why))
            continue
        lowered = conf.breakdown.get("unreproduced")
        if lowered is not None and ev is not None:
            rec = dataclasses.replace(rec, reasons=(*rec.reasons, _unreproduced(ev, lowered)))
        kept.append(rec)
        assessments[rid] = Assessment(
            conf, ev, measured=measurement(rec, ev, unmeasured=unmeasured)
        )
    return dataclasses.replace(
        report,
        recommendations=tuple(kept),
        # A drop the measurements refuted no longer excuses a coverage rejection.
        rejected=settle_coverage((*report.rejected, *rejected), kept),
        assessments=assessments,
        min_confidence=config.min_confidence,
    )


def twin_of(snapshot: Snapshot, rec: Recommendation) -> Index | None:
    """The index that stays when ``rec`` drops an exact duplicate of it, else ``None``.

    The duplicate rule already never proposes an index that backs a constraint (or that a
    foreign key needs) and keeps the constraint's index as the twin.
    """
    if rec.action != "drop_index" or rec.twin is None:
        return None
    return next((i for i in snapshot.indexes_on(rec.table) if i.name == rec.twin), None)


def _twin_proof(
    snapshot: Snapshot, rec: Recommendation, ev: Evidence | None, config: ProofConfig
) -> tuple[Recommendation, bool]:
    """For an exact duplicate: do the plans without it show its twin serving the workload?

    When they do, the recommendation gains the sentence that says how that was measured.
    """
    twin = twin_of(snapshot, rec)
    dropped = next((i for i in snapshot.indexes_on(rec.table) if i.name == rec.index_name), None)
    if twin is None or dropped is None or ev is None:
        return rec, False
    why, users = twin_verdict(
        ev, rec.index_name, twin.name, tolerance=config.evidence.regression_tolerance
    )
    if why is not None:
        return rec, False
    reason = twin_reason(ev.drop_method or DROPPED, dropped, twin, users)
    return dataclasses.replace(rec, reasons=(*rec.reasons, reason)), True


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
        where = f" WHERE {rec.where}" if rec.where else ""
        return f"{rec.table} ({rec.keys_text()}){where}"
    return f"{rec.action.replace('_index', '')} {rec.index_name}"
