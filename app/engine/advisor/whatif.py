"""The cost-oracle contract the engine plans with; adapters implement it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from app.engine.model import Candidate


@dataclass(frozen=True, slots=True)
class CostRequest:
    """Plan ``sql`` (which has ``params`` ``$n`` placeholders) with exactly ``indexes`` added."""

    sql: str
    params: int
    indexes: frozenset[Candidate]


class CostOracle(Protocol):
    """Answers "what would the planner estimate if these indexes existed?"."""

    def costs(self, requests: Sequence[CostRequest]) -> list[float | None]:
        """Total planner cost per request, in order; ``None`` where the statement cannot be planned.

        Implementations group requests by index set so each hypothetical set is built once.
        """
        ...

    @property
    def baseline_indexes(self) -> Mapping[str, frozenset[str]]:
        """Existing indexes each statement's plan uses with no new index (text → names)."""
        ...

    @property
    def calls(self) -> int:
        """How many statements were planned so far (the what-if call count)."""
        ...
