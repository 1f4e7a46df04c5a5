"""Reviewer memory inside the audit: what is embedded, the adjustment applied, stored ignores."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from app.bot.comment import command_lines
from app.bot.memory.feedback import SIGNALS, Adjustment, apply_memory, cite
from app.bot.pulls.fixpr import fingerprint, short_table
from app.engine import markdown as md
from app.engine.model import Recommendation, recommendation_id
from app.engine.proof.confidence import Assessment, Confidence
from app.engine.report import Report
from app.engine.sql import redact

__all__ = [
    "MAX_DESCRIPTOR",
    "MAX_PROSE",
    "describe",
    "feedback_text",
    "remember",
    "stored_ignores",
    "write_share",
]

MAX_DESCRIPTOR = 300
MAX_PROSE = 1000
#: Room for the action part, so the table's traits always fit after it.
_MAX_ACTION = 180
WRITE_HEAVY = 0.5
MIXED = 0.1
_MEMORY = "reviewer_memory"
_IGNORE_KINDS = ("fingerprint", "table")


def _keys(rec: Recommendation) -> str:
    """Key columns with their direction; expression keys with any literal made ``$n``."""
    return ", ".join(
        " ".join(redact(key).split())
        + (" DESC" if i < len(rec.descending) and rec.descending[i] else "")
        for i, key in enumerate(rec.columns)
    )


def _finding(rec: Recommendation) -> str:
    if rec.rule == "duplicate_index":
        return "duplicate " if rec.extra.get("exact", 1.0) else "redundant "
    return {"unused_index": "unused ", "invalid_index": "invalid "}.get(rec.rule, "")


def _action(rec: Recommendation) -> str:
    table = short_table(rec.table)
    if rec.action == "create_index":
        kind = "partial " if rec.where else ""
        kind += "" if rec.using == "btree" else f"{rec.using} "
        text = f"add {kind}index on {table} ({_keys(rec)})"
        return text + (f" include ({', '.join(rec.include)})" if rec.include else "")
    verb = {"drop_index": "drop", "reindex": "rebuild"}.get(rec.action, rec.action)
    return f"{verb} {_finding(rec)}index {rec.index_name} on {table}"


def write_share(report: Report, table: str) -> float | None:
    """Share of the calls of statements touching ``table`` that write it; None if none do."""
    calls = writes = 0
    for stmt in report.analyzed:
        scans = [scan for scan in stmt.scans if scan.table == table]
        if not scans:
            continue
        weight = max(stmt.query.calls, 1)
        calls += weight
        writes += weight if any(scan.write for scan in scans) else 0
    return writes / calls if calls else None


def _load(share: float) -> str:
    label = "write-heavy" if share >= WRITE_HEAVY else "mixed" if share >= MIXED else "read-mostly"
    return f"{label} ({share:.0%} of statement calls write)"


def _compact(value: float, units: tuple[tuple[float, str], ...], sep: str) -> str:
    """``1.2M``, ``200k``, ``180 MB``: one decimal below 10 of a unit, none above."""
    for size, unit in units:
        scaled = value / size
        if scaled >= 0.9995 or size == units[-1][0]:  # 999,960 rows: 1M, not 1000k
            shown = f"{scaled:.1f}".removesuffix(".0") if scaled < 9.95 else f"{scaled:.0f}"
            return f"{shown}{sep}{unit}".rstrip()
    raise AssertionError("unreachable: the last unit always answers")


def _rows(rows: float) -> str:
    units = ((1e9, "B"), (1e6, "M"), (1e3, "k"), (1.0, ""))
    return _compact(rows, units, "") + " rows"


def _bytes(size: int) -> str:
    units = ((1024.0**4, "TB"), (1024.0**3, "GB"), (1024.0**2, "MB"), (1024.0, "kB"), (1.0, "B"))
    return _compact(float(size), units, " ")


def describe(report: Report, rec: Recommendation) -> str:
    """One line, at most 300 characters: ``rec`` and its table's traits, embedded for recall.

    The table's load comes from the workload (share of calls of the statements that touch
    it which write it), its rows and heap size from the snapshot; unknown traits are left
    out. Only names and figures appear, never a value from a query.
    """
    action = md.shorten(" ".join(_action(rec).split()), _MAX_ACTION)
    traits = []
    share = write_share(report, rec.table)
    if share is not None:
        traits.append(_load(share))
    table = report.snapshot.table(rec.table)
    if table is not None and table.rows > 0:
        traits.append(_rows(table.rows))
    if table is not None and table.size_bytes > 0:
        traits.append(_bytes(table.size_bytes))
    if not traits:
        return md.shorten(action, MAX_DESCRIPTOR)
    return md.shorten(
        f"{action}; table {short_table(rec.table)}: {', '.join(traits)}", MAX_DESCRIPTOR
    )


def feedback_text(descriptor: str, classification: str, text: str) -> str:
    """What one piece of feedback is embedded as: the descriptor, then the reviewer's words.

    Code blocks, ``>`` quotes and HTML comments are not the reviewer's own words and are
    dropped; the rest is single-spaced and cut to 1,000 characters.

    >>> print(feedback_text("add index on events (user_id)", "reject",
    ...                     "> CREATE INDEX …\\nNo: events is   write-heavy."))
    add index on events (user_id)
    reviewer (reject): No: events is write-heavy.

    Raises:
        ValueError: ``classification`` is not accept, concern, question or reject.
    """
    if classification not in SIGNALS:
        raise ValueError(
            f"classification must be one of {', '.join(sorted(SIGNALS))}, not {classification!r}; "
            "classify the feedback first (feedback.classify)"
        )
    prose = md.shorten(" ".join(" ".join(command_lines(text)).split()), MAX_PROSE)
    head = " ".join(descriptor.split())
    return f"{head}\nreviewer ({classification}): {prose}".rstrip()


def _without_memory(confidence: Confidence) -> Confidence:
    """``confidence`` before any earlier reviewer-memory part, so remembering is idempotent."""
    if _MEMORY not in confidence.breakdown:
        return confidence
    breakdown = dict(confidence.breakdown)
    part = breakdown.pop(_MEMORY)
    return replace(confidence, score=round(confidence.score - part, 4), breakdown=breakdown)


def remember(report: Report, adjustments: Mapping[str, Adjustment]) -> Report:
    """``report`` with reviewer memory folded into the assessments it moves.

    For each recommendation id whose adjustment cites something, the confidence gets a
    ``reviewer_memory`` part (``feedback.apply_memory``) and the assessment the citation lines
    (``feedback.cite``). Recommendations without an assessment and adjustments citing nothing
    stay as they were. ``report`` itself is never changed.
    """
    assessments: dict[str, Assessment] = dict(report.assessments)
    for rec_id, adjustment in adjustments.items():
        assessment = assessments.get(rec_id)
        if assessment is None or not adjustment.cited:
            continue
        confidence = apply_memory(_without_memory(assessment.confidence), adjustment)
        applied = confidence.breakdown["reviewer_memory"]
        lines = cite(replace(adjustment, delta=applied))
        if applied != adjustment.delta and adjustment.delta > 0 and applied == 0:
            lines.append(
                f"(Memory would add {adjustment.delta:+.2f}, but it never lifts a "
                "recommendation to the bar: only measurements do.)"
            )
        assessments[rec_id] = replace(assessment, confidence=confidence, memory=tuple(lines))
    return replace(report, assessments=assessments)


def _qualified(table: str) -> str:
    return (table if "." in table else f"public.{table}").casefold()


def _fingerprint(value: str) -> str:
    """``3f9a1c2b`` from itself or from a whole id such as ``create_index:3f9a1c2b``."""
    return value.strip().rpartition(":")[2].lower()


def _shown(text: str) -> str:
    return " ".join(text.split()).replace("`", "'")


def stored_ignores(
    recs: Iterable[Recommendation],
    ignores: Iterable[tuple[str, str]],
    *,
    slug: str = "db-architect",
) -> dict[str, str]:
    """Recommendation id → why it is ignored, for the store's ``(kind, value)`` ignores.

    ``kind`` is ``fingerprint`` (8 hex digits, as ``fixpr.fingerprint``) or ``table``
    (``events`` or ``public.events``; compared qualified, case-insensitively). A fingerprint
    ignore wins over a table ignore.

    Raises:
        ValueError: an ignore of another kind.
    """
    fingerprints: set[str] = set()
    tables: dict[str, str] = {}
    for kind, value in ignores:
        if kind == "fingerprint":
            fingerprints.add(_fingerprint(value))
        elif kind == "table":
            tables.setdefault(_qualified(value.strip()), value.strip())
        else:
            raise ValueError(
                f"unknown ignore kind {kind!r} (value {_shown(value)[:60]!r}); the store "
                f"holds only {' and '.join(_IGNORE_KINDS)} ignores"
            )
    found: dict[str, str] = {}
    for rec in recs:
        rec_id = recommendation_id(rec)
        if rec_id in found:
            continue
        if fingerprint(rec) in fingerprints:
            found[rec_id] = f"ignored with `@{slug} ignore` on its pull request"
        elif (typed := tables.get(_qualified(rec.table))) is not None:
            found[rec_id] = (
                f"table `{_shown(short_table(rec.table))}` ignored with "
                f"`@{slug} ignore table {_shown(typed)}`"
            )
    return found
