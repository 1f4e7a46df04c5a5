"""What a recommendation's evidence amounts to: how it was measured, or why it was not."""

from __future__ import annotations

import re

from app.engine.model import Recommendation
from app.engine.proof.confidence import Assessment
from app.engine.proof.evidence import Evidence
from app.engine.proof.method import Cause, Measurement, Method
from app.engine.proof.twin import HIDDEN, PLANS_ONLY

__all__ = ["NOTHING_TO_MEASURE", "NOT_ASSESSED", "measurement", "measurement_of"]

NOTHING_TO_MEASURE = (
    "the planner never uses an invalid index, so rebuilding or dropping it changes no plan; "
    "there is nothing to time, and it is safe by construction"
)
NOT_ASSESSED = Measurement(
    Method.estimate_only, Cause.not_assessed, "no validation was run for this report"
)
_NOT_RUN = Measurement(Method.estimate_only, Cause.not_configured, "validation did not run for it")
_PREFIX = re.compile(r"^not measured:\s*", re.IGNORECASE)


def measurement(
    rec: Recommendation, evidence: Evidence | None, *, unmeasured: Measurement | None = None
) -> Measurement:
    """How ``rec`` was measured according to ``evidence``.

    Without evidence, ``unmeasured`` says why validation did not run (the caller knows: no
    sandbox, the repository's mode, …); an invalid index needs no measurement at all. Evidence
    whose validation was skipped or stopped, or where no affected statement could be timed,
    counts as an estimate: the confidence rests on no timing then.
    """
    invalid = rec.action == "reindex" or rec.rule == "invalid_index"
    if invalid and (evidence is None or evidence.skipped is not None):
        return Measurement(Method.estimate_only, Cause.nothing_to_measure, NOTHING_TO_MEASURE)
    if evidence is None:
        return unmeasured or NOT_ASSESSED
    total = len(evidence.statements)
    timed = sum(1 for s in evidence.statements if s.measured)
    if evidence.skipped is not None:
        stopped = _PREFIX.sub("", evidence.skipped).rstrip(".")
        cause = evidence.cause or Cause.failed
        return Measurement(Method.estimate_only, cause, stopped, total, timed)
    place = "the sandbox copy" if evidence.where == "sandbox" else f"the {evidence.where}"
    if evidence.drop_method in (HIDDEN, PLANS_ONLY):
        hidden = evidence.drop_method == HIDDEN
        where = Method.sandbox if evidence.where == "sandbox" else Method.rolled_back_build
        how = "hidden from the planner" if hidden else "dropped in a transaction rolled back"
        why = (
            f"checked by plans on {place}, the index {how}: each statement planned with and "
            "without it (EXPLAIN, never executed); nothing was timed"
        )
        return Measurement(Method.hidden_index if hidden else where, None, why, total, 0)
    if total and not timed:
        notes = [n for s in evidence.statements for n in s.notes]
        first = f": {_PREFIX.sub('', notes[0]).rstrip('.')}" if notes else ""
        why = (
            f"validation ran on {place}, but none of the {total} affected statements could be "
            f"timed{first}"
        )
        return Measurement(Method.estimate_only, Cause.unmeasurable, why, total, 0)
    method = evidence.method or (
        Method.sandbox if evidence.where == "sandbox" else Method.rolled_back_build
    )
    reason = None
    if timed < total:
        left = total - timed
        reason = f"{left} could not be timed; {'its' if left == 1 else 'their'} notes say why"
    return Measurement(method, None, reason, total, timed)


def measurement_of(rec: Recommendation, assessment: Assessment | None) -> Measurement:
    """The assessment's measurement, derived from its evidence when it was built without one."""
    if assessment is None:
        return measurement(rec, None)
    if assessment.measured is not None:
        return assessment.measured
    return measurement(rec, assessment.evidence, unmeasured=_NOT_RUN)
