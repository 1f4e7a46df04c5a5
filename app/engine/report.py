"""The Report: the outcome of one audit, before rendering (what render, verdict and draft read)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from app.engine.model import Analyzed, DiskBudget, Recommendation, Rejection, Skipped, Snapshot
from app.engine.proof.confidence import MIN_CONFIDENCE, Assessment

__all__ = ["Report"]


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
