"""Pieces of the JSON report (docs/architecture.md) as the store keeps them, for seeding tests."""

from __future__ import annotations

from typing import Any


def measured_query(
    before_ms: float,
    after_ms: float,
    *,
    write: bool = False,
    text: str = "SELECT * FROM accounts WHERE email = $1",
) -> dict[str, Any]:
    """One measured statement of a recommendation: median ms before and after the index."""
    side = {"cost": 10.0, "ms_p95": None, "buffers": 4}
    return {
        "query": text,
        "calls": 40,
        "write": write,
        "before": side | {"ms_p50": before_ms},
        "after": side | {"ms_p50": after_ms},
        "parameter_sets": ["common"],
        "notes": [],
    }
