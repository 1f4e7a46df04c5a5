"""The sentences of an evidence file that say how a recommendation was measured, or why not."""

from __future__ import annotations

from app.engine import markdown as md
from app.engine.model import Recommendation
from app.engine.proof.confidence import Assessment
from app.engine.proof.evidence import Evidence
from app.engine.proof.method import Measurement, Method
from app.engine.proof.twin import HIDDEN, PLANS_ONLY
from app.engine.sql import scrub_message

__all__ = ["footer", "heading", "unwritten", "where"]

_MESSAGE_CHARS = 300
_PLACES = {
    Method.sandbox: "on the sandbox copy of the database",
    Method.rolled_back_build: "on the target database",
}


def _scrub(message: str) -> str:
    return md.text(scrub_message(message).rstrip("."), _MESSAGE_CHARS)


def heading(m: Measurement) -> str:
    """``Measured evidence`` when timings back it, else ``Evidence``."""
    return "#### Measured evidence" if m.measured else "#### Evidence"


def where(rec: Recommendation, evidence: Evidence | None, m: Measurement, *, rows: bool) -> str:
    """The method as a token, then where and how the timings were taken, or why they were not.

    ``rows``: a table of statements follows (its costs are then named as estimates).
    """
    token = f"**Method: `{m.method.value}`**"
    if not m.measured:
        cause = f" (`{m.cause.value}`)" if m.cause else ""
        reason = _scrub(m.reason or "no reason was recorded")
        partly = m.statements_measured > 0
        text = (
            f"{token}{cause}. **{'Only partly measured' if partly else 'Not measured'}**: {reason}."
        )
        if partly:
            text += (
                " The timings shown were taken before it stopped; the confidence does not "
                "count them."
            )
        if evidence is not None:
            text += " Nothing was changed on the database."
        if rows and not partly:
            text += " The costs below are the planner's estimates."
        return text
    if evidence is not None and evidence.drop_method in (HIDDEN, PLANS_ONLY):
        how = (
            "hidden from this session's planner (hidden index: HypoPG's `hypopg_hide_index`, "
            "no lock, unhidden afterwards)"
            if evidence.drop_method == HIDDEN
            else "dropped inside a transaction that was rolled back, for the planning only"
        )
        place = (
            "on the sandbox copy of the database"
            if evidence.where == "sandbox"
            else ("on the target database")
        )
        return (
            f"{token}. Checked {place} by its plans: the statements below were planned "
            f"(EXPLAIN, never executed) with the index present, then {how}. There are no "
            "timings."
        )
    if m.method is Method.hidden_index:
        text = (
            f"{token}. Measured on the target database with the index hidden from the planner "
            "in one session (`hypopg_hide_index`): the statements below ran without it, with "
            "no lock taken and nothing dropped."
        )
    else:
        change = "index existed" if rec.action == "create_index" else "change was in place"
        place = _PLACES.get(m.method, "on the database")
        text = (
            f"{token}. Measured {place}, inside a transaction that was rolled back: the "
            f"{change} only while the statements below ran."
        )
    if evidence is not None and evidence.used_by_plans is True:
        text += " The measured plans used the new index."
    elif evidence is not None and evidence.used_by_plans is False:
        text += " **The measured plans did not use the new index.**"
    return text


def unwritten(
    assessment: Assessment | None, revision_file: str | None, no_migration: str | None
) -> str | None:
    """Why no migration was drafted for the recommendation, or None when one was (or will be).

    Only a recommendation that clears the bar gets a migration (``write_out``, the PR plan).
    """
    if no_migration:
        return no_migration
    if revision_file:
        return None
    if assessment is None:
        return "it was not assessed"
    conf = assessment.confidence
    if not conf.eligible:
        return f"its confidence, {conf.score:.0%}, is below the {conf.threshold:.0%} bar"
    return None


def footer(m: Measurement, evidence: Evidence | None = None) -> str:
    """The closing line: what the figures above are, true of this recommendation's run."""
    if evidence is not None and evidence.drop_method in (HIDDEN, PLANS_ONLY):
        said = (
            "Nothing was timed: the statements were planned, never executed, and nothing was "
            "changed on the database."
        )
    elif m.method is Method.hidden_index:
        said = (
            "All timings were taken with the index hidden from the planner in one session "
            "(`hypopg_hide_index`); nothing was changed on the database."
        )
    elif m.measured:
        said = (
            "All timings were taken inside a transaction that was rolled back; nothing was "
            "changed on the database."
        )
    elif m.statements_measured:
        said = (
            "Validation stopped before it finished: the timings shown were taken inside a "
            "transaction that was rolled back, and the confidence does not count them; nothing "
            "was changed on the database."
        )
    else:
        said = "Nothing was timed for this recommendation, and nothing was changed on the database."
    return f"---\n\n<sub>Generated by DB Architect. {said}</sub>\n"
