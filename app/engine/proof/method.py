"""How a recommendation was measured, or why it was not: one value every report states."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Cause", "Measurement", "Method"]


class Method(StrEnum):
    """How the timings behind a recommendation were taken (the JSON's ``measurement.method``)."""

    #: The index built (or dropped) on the target inside a transaction that was rolled back.
    rolled_back_build = "rolled-back-build"
    #: The same on the sandbox copy of the target (``--validate-dsn``, a target's sandbox).
    sandbox = "sandbox"
    #: On the target with the index hidden from the planner (HypoPG 1.4+ ``hypopg_hide_index``):
    #: plans and timings without it, in one session, with no lock and nothing changed.
    hidden_index = "hidden-index"
    #: Nothing was timed: the planner's estimates and the finding only (``cause`` says why).
    estimate_only = "estimate-only"


class Cause(StrEnum):
    """Why a recommendation was not measured, or not completely (``measurement.cause``)."""

    #: Validation had nowhere to run: no sandbox, and builds on the target not allowed.
    not_configured = "not-configured"
    #: The validation mode chosen (the repository's ``validation``) measures nothing.
    mode = "mode"
    #: The audit's validation time budget ran out before this recommendation's turn.
    budget = "budget"
    #: This change may not be measured where validation runs (a drop on the target).
    not_allowed = "not-allowed"
    #: The database role may not make the change (permission denied, read-only server).
    no_write_access = "no-write-access"
    #: Another session held a conflicting lock beyond the lock budget.
    lock_wait = "lock-wait"
    #: The built index would not be visible to the planner inside the transaction.
    not_visible = "not-visible"
    #: An error stopped validation.
    failed = "failed"
    #: Validation ran, but none of the affected statements could be run (see their notes).
    unmeasurable = "unmeasurable"
    #: The change alters no plan, so there is nothing to time (rebuilding an invalid index).
    nothing_to_measure = "nothing-to-measure"
    #: No verdict was computed for it (a report that was never assessed).
    not_assessed = "not-assessed"


@dataclass(frozen=True, slots=True)
class Measurement:
    """How one recommendation was measured; for ``estimate_only``, the cause and reason why not.

    ``reason`` also says what limited a measurement that ran (statements left unmeasured).
    """

    method: Method
    cause: Cause | None = None
    reason: str | None = None
    #: Affected statements validation chose to run, and how many of them it timed on both
    #: sides of the change.
    statements: int = 0
    statements_measured: int = 0

    @property
    def measured(self) -> bool:
        """Timings were taken (the score rests on them, not on estimates alone)."""
        return self.method is not Method.estimate_only

    def how(self, action: str) -> str:
        """Where and how, e.g. ``on the sandbox, the index built in a transaction that was
        rolled back``; for an estimate, ``not measured (estimate only)``."""
        change = "the index built" if action == "create_index" else "the index dropped"
        rolled_back = f"{change} in a transaction that was rolled back"
        if self.method is Method.sandbox:
            return f"measured on the sandbox copy, {rolled_back}"
        if self.method is Method.rolled_back_build:
            return f"measured on the target, {rolled_back}"
        if self.method is Method.hidden_index:
            return (
                "measured on the target with the index hidden from the planner "
                "(hypopg_hide_index: one session, no lock, nothing changed)"
            )
        return "not measured (estimate only)"

    def summary(self, action: str) -> str:
        """``how`` with the statement count and the reason, as one clause."""
        text = self.how(action)
        if self.measured and self.statements:
            text += f"; {self.statements_measured} of {self.statements} affected statements timed"
        elif self.measured:
            text += "; no affected workload statement was found, so none was timed"
        if self.reason:
            text += f" ({self.reason})" if self.measured else f": {self.reason}"
        if not self.measured and self.statements_measured:
            text += (
                f"; {self.statements_measured} of {self.statements} affected statements were "
                "timed before it stopped, which the score does not count"
            )
        return text
