"""Confidence in a recommendation: a documented, bounded formula over measured evidence.

For a new index, confidence is the sum of six weighted scores, each in [0, 1]:

=================  ======  ==============================================================
component          weight  score
=================  ======  ==============================================================
measured_speedup   0.35    fraction of the affected reads' time saved (by calls) ÷ 0.5,
                           capped at 1: twice as fast or better scores fully
noise_margin       0.15    how far the medians moved in widths of run-to-run noise
                           (p95 − fastest), averaged by calls, ÷ 3, capped at 1
workload_share     0.15    share of the workload's total time spent in the affected
                           statements ÷ 0.05, capped at 1: 5 % of the workload scores fully
write_overhead     0.15    1 − (measured write time added ÷ read time saved), floored at 0;
                           1 when the workload does not write the table
agreement          0.10    min(estimated, measured gain) ÷ max(both): the planner and the
                           stopwatch tell the same story
stats_freshness    0.10    1 if the table was analysed within a day, falling linearly to 0
                           at 30 days; 0 if never analysed
=================  ======  ==============================================================

Dropping an index scores ``finding`` (0.5: exact duplicate 1, covered by another index 0.9,
unused for *d* days d ÷ 30, invalid 1), ``measured_safety`` (0.3: validated and every
affected read measured; a read clearly slower without the index has already rejected the drop;
an invalid index is safe by construction, as the planner never uses it; an exact duplicate is
safe when the plans of the statements that used it use its twin without it) and
``stats_freshness`` (0.2, as above). ``reindex`` is judged like a drop.

When the synthesized parameter values reproduced none of the parameter sets' statements as
pg_stat_statements saw them (``app.engine.proof.reproduce``), a negative part,
``unreproduced``, takes away 0.5 × the share of the measured reads' workload time in those
statements: the timings may not be the workload's, so they prove less.

Without measurements the measured components are 0, so an unmeasured recommendation never
reaches the 0.80 a pull request needs. The breakdown reports each weighted contribution; they
sum to the confidence. Reviewer memory (``feedback.apply_memory``) may then add one more part,
``reviewer_memory``, bounded to −0.25 … +0.10, and the assessment cites the reviews behind it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from app.engine.model import Recommendation, Table
from app.engine.proof.evidence import Evidence, balance, estimated_gain, weighted_noise_margin
from app.engine.proof.method import Measurement
from app.engine.proof.reproduce import PENALTY, unreproduced_share

#: The lowest confidence that may open a pull request; configuration may only raise it.
MIN_CONFIDENCE = 0.80

CREATE_WEIGHTS: Mapping[str, float] = {
    "measured_speedup": 0.35,
    "noise_margin": 0.15,
    "workload_share": 0.15,
    "write_overhead": 0.15,
    "agreement": 0.10,
    "stats_freshness": 0.10,
}
DROP_WEIGHTS: Mapping[str, float] = {
    "finding": 0.5,
    "measured_safety": 0.3,
    "stats_freshness": 0.2,
}
FULL_SPEEDUP = 0.5
FULL_NOISE_MARGIN = 3.0
FULL_SHARE = 0.05
FRESH_DAYS = 1.0
STALE_DAYS = 30.0
UNUSED_FULL_DAYS = 30.0


@dataclass(frozen=True, slots=True)
class Confidence:
    """A score in [0, 1], its weighted parts, and whether it clears the PR threshold."""

    score: float
    breakdown: dict[str, float] = field(default_factory=dict)
    threshold: float = MIN_CONFIDENCE

    @property
    def eligible(self) -> bool:
        """High enough to open a pull request."""
        return self.score >= self.threshold


@dataclass(frozen=True, slots=True)
class Assessment:
    """A recommendation's confidence and the evidence behind it (``None``: not validated)."""

    confidence: Confidence
    evidence: Evidence | None = None
    #: Reviewer-memory citations (``feedback.cite``): the "Reviewer memory moved the
    #: confidence by …" header, then one Markdown bullet per similar past review.
    memory: tuple[str, ...] = ()
    #: How it was measured, or why not (``verdict.assess`` sets it; ``measured.measurement_of``
    #: derives it from ``evidence`` when it is missing).
    measured: Measurement | None = None


def check_threshold(value: float) -> float:
    """A configured threshold: at least 0.80 and at most 1.

    Raises:
        ValueError: below 0.80 or above 1.
    """
    if not MIN_CONFIDENCE <= value <= 1.0:
        raise ValueError(
            f"min_confidence must be between {MIN_CONFIDENCE:.2f} and 1.0 (got {value:g}); "
            "it can only be raised"
        )
    return value


def _clamp(value: float) -> float:
    return max(0.0, min(1.0, value))


def freshness(table: Table | None, now: datetime) -> float:
    """1 when analysed within a day, 0 at 30 days or never."""
    if table is None or table.last_analyze is None:
        return 0.0
    days = (now - table.last_analyze).total_seconds() / 86_400
    if days <= FRESH_DAYS:
        return 1.0
    return _clamp(1 - (days - FRESH_DAYS) / (STALE_DAYS - FRESH_DAYS))


def _finish(
    scores: Mapping[str, float], weights: Mapping[str, float], threshold: float
) -> Confidence:
    parts = {k: round(weights[k] * _clamp(scores[k]), 4) for k in weights}
    return Confidence(round(sum(parts.values()), 4), parts, threshold)


def create_confidence(
    evidence: Evidence | None,
    *,
    workload_share: float,
    table: Table | None,
    now: datetime,
    writes_table: bool,
    threshold: float = MIN_CONFIDENCE,
) -> Confidence:
    """Confidence in a new index from its measurements (see the module docstring)."""
    found = _create_parts(
        evidence,
        workload_share=workload_share,
        table=table,
        now=now,
        writes_table=writes_table,
        threshold=threshold,
    )
    missed = unreproduced_share(evidence)
    if missed <= 0:
        return found
    score = round(max(0.0, found.score - PENALTY * missed), 4)
    parts = {**found.breakdown, "unreproduced": round(score - found.score, 4)}
    return Confidence(score, parts, threshold)


def _create_parts(
    evidence: Evidence | None,
    *,
    workload_share: float,
    table: Table | None,
    now: datetime,
    writes_table: bool,
    threshold: float,
) -> Confidence:
    scores = dict.fromkeys(CREATE_WEIGHTS, 0.0)
    scores["workload_share"] = workload_share / FULL_SHARE
    scores["stats_freshness"] = freshness(table, now)
    if evidence is not None and evidence.skipped is None:
        bal = balance(evidence)
        if bal.reads_measured:
            scores["measured_speedup"] = bal.speedup / FULL_SPEEDUP
            scores["noise_margin"] = weighted_noise_margin(evidence) / FULL_NOISE_MARGIN
            estimate = estimated_gain(evidence)
            if estimate is not None and estimate > 0 and bal.speedup > 0:
                scores["agreement"] = min(estimate, bal.speedup) / max(estimate, bal.speedup)
            if bal.writes_measured and bal.read_saved > 0:
                scores["write_overhead"] = 1 - max(bal.write_added, 0.0) / bal.read_saved
            elif not writes_table:
                scores["write_overhead"] = 1.0
    return _finish(scores, CREATE_WEIGHTS, threshold)


def finding_strength(rec: Recommendation) -> float:
    """How certain the finding behind a drop is, before any measurement."""
    if rec.rule == "unused_index":
        return _clamp(rec.extra.get("window_days", 0.0) / UNUSED_FULL_DAYS)
    if rec.rule == "duplicate_index":
        return 1.0 if rec.extra.get("exact", 0.0) else 0.9
    return 1.0  # invalid indexes serve nothing


def drop_confidence(
    rec: Recommendation,
    evidence: Evidence | None,
    *,
    table: Table | None,
    now: datetime,
    threshold: float = MIN_CONFIDENCE,
    proven: bool = False,
) -> Confidence:
    """Confidence in dropping an index (see the module docstring).

    ``proven``: an exact duplicate whose plans without it use its twin
    (:func:`app.engine.proof.twin.twin_verdict`), which is its measured safety.
    """
    # The planner never uses an invalid index, so rebuilding or dropping one cannot slow
    # any statement down: that is safe by construction, not by measurement.
    # Otherwise validation must have run and measured every affected statement; with no
    # statement reading the table through the index's columns, nothing can get slower.
    measured = (
        rec.rule == "invalid_index"
        or proven
        or (
            evidence is not None
            and evidence.skipped is None
            and all(s.measured for s in evidence.statements if not s.write)
        )
    )
    scores = {
        "finding": finding_strength(rec),
        "measured_safety": 1.0 if measured else 0.0,
        "stats_freshness": freshness(table, now),
    }
    return _finish(scores, DROP_WEIGHTS, threshold)
