"""The Report: the outcome of one audit, before rendering (what render, verdict and draft read)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from app.engine.model import Analyzed, DiskBudget, Recommendation, Rejection, Skipped, Snapshot
from app.engine.proof.confidence import MIN_CONFIDENCE, Assessment

__all__ = ["Report", "settle_coverage"]


@dataclass(frozen=True, slots=True)
class Report:
    """The outcome of one audit, before rendering."""

    snapshot: Snapshot
    statements: int
    analyzed: tuple[Analyzed, ...]
    skipped: tuple[Skipped, ...]
    recommendations: tuple[Recommendation, ...]
    rejected: tuple[Rejection, ...]
    whatif: str
    whatif_calls: int
    #: Weighted estimated workload cost (Σ calls × cost) before and after the new indexes.
    workload_cost_before: float = 0.0
    workload_cost_after: float = 0.0
    #: Recommendation id → confidence and measured evidence (filled by ``proof.assess``).
    assessments: Mapping[str, Assessment] = field(default_factory=dict)
    #: The confidence a recommendation needs for a drafted revision or pull request.
    min_confidence: float = MIN_CONFIDENCE
    #: How many bytes of new indexes the audit could propose, and why that many.
    disk_budget: DiskBudget | None = None

    @property
    def proposed_bytes(self) -> int:
        """Estimated bytes of the new indexes this report proposes."""
        return sum(r.size_bytes for r in self.recommendations if r.action == "create_index")


_RULE_WORDS = {
    "duplicate_index": "as a duplicate",
    "unused_index": "as unused",
    "invalid_index": "as invalid",
}


def settle_coverage(
    rejected: Iterable[Rejection], recommendations: Iterable[Recommendation]
) -> tuple[Rejection, ...]:
    """Coverage reasons that never lean on an index the same report drops.

    A candidate rejected as "covered by existing index X", when the report also drops X,
    names an index that covers it and stays, and says that X is dropped; when no covering
    index stays, it says so instead of claiming cover. Idempotent: call it again whenever the
    set of drops changes (proof may reject one).
    """
    dropping = {
        f"{r.table.partition('.')[0]}.{r.index_name}": r
        for r in recommendations
        if r.action == "drop_index"
    }
    settled = []
    for rej in rejected:
        if not rej.covered_by:
            settled.append(rej)
            continue
        staying = [n for n in rej.covered_by if n not in dropping]
        gone = [n for n in rej.covered_by if n in dropping]
        name = _short(staying[0] if staying else gone[0])
        if not gone or rej.covered_by[0] not in dropping:
            reason = f"covered by existing index {name}"
        elif staying:
            reason = (
                f"covered by existing index {name}, which stays ({_short(gone[0])} covers it "
                "too, but this report drops it)"
            )
        else:
            why = _RULE_WORDS.get(dropping[gone[0]].rule, f"({dropping[gone[0]].rule})")
            reason = (
                f"covered today only by existing index {name}, which this report drops {why}; "
                "no index that stays covers it, and it was not weighed on its own: audit "
                "again once the drop is applied"
            )
        settled.append(replace(rej, reason=reason))
    return tuple(settled)


def _short(qualified: str) -> str:
    return qualified.partition(".")[2] or qualified
