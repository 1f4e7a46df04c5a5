"""The disk budget of one audit: how many bytes of new indexes it may propose, and why that many.

Written ``25%`` (of the database's size: tables, their indexes and TOAST), ``500MB``, ``2 GB``
or ``off``. A share never comes to less than :data:`FLOOR_BYTES`, so a small database can still
get its indexes. The default, :data:`DEFAULT_BUDGET`, keeps an audit from proposing more new
index than a quarter of what the database already holds.
"""

from __future__ import annotations

import re

from app.engine.model import DiskBudget, Snapshot

__all__ = [
    "DEFAULT_BUDGET",
    "FLOOR_BYTES",
    "BudgetError",
    "check_budget",
    "database_bytes",
    "disk_budget",
    "fmt_bytes",
]

DEFAULT_BUDGET = "25%"
FLOOR_BYTES = 256 * 2**20
_UNITS = {"B": 1, "KB": 2**10, "MB": 2**20, "GB": 2**30, "TB": 2**40}
_SPEC = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%|[KMGT]?B)?\s*$", re.IGNORECASE)


class BudgetError(ValueError):
    """A budget that cannot be read; the message says what is accepted."""


def fmt_bytes(n: float) -> str:
    """``n`` bytes for people.

    >>> fmt_bytes(3 * 2**30), fmt_bytes(300 * 2**20), fmt_bytes(12_000)
    ('3.0 GB', '300 MB', '12 kB')
    """
    if n >= 2**30:
        return f"{n / 2**30:.1f} GB"
    if n >= 2**20:
        return f"{n / 2**20:.0f} MB"
    return f"{n / 2**10:.0f} kB"


def database_bytes(snapshot: Snapshot) -> int:
    """Tables with their indexes and TOAST (a partitioned parent counts through its partitions)."""
    return sum(t.total_bytes for t in snapshot.tables)


def check_budget(spec: str) -> tuple[float, str] | None:
    """``(number, unit)`` of a budget (unit ``%`` or a size unit), None for ``off``.

    Raises:
        BudgetError: ``spec`` is not ``N%``, a size such as ``500MB``, or ``off``.

    >>> check_budget("25%"), check_budget(" 2 gb "), check_budget("off")
    ((25.0, '%'), (2.0, 'GB'), None)
    """
    text = spec.strip()
    if text.lower() in ("off", "none"):
        return None
    match = _SPEC.match(text)
    if not match:
        raise BudgetError(
            f"disk budget {spec[:40]!r}: write a share of the database such as 25%, a size "
            "such as 500MB or 2GB, or off"
        )
    if not match.group(2):
        raise BudgetError(f"disk budget {spec[:40]!r}: add a unit, as in 25% or 500MB")
    number, unit = float(match.group(1)), match.group(2).upper()
    if unit == "%" and not 0 < number <= 1000:
        raise BudgetError(f"disk budget {spec[:40]!r}: a share must be above 0% and at most 1000%")
    if unit != "%" and number <= 0:
        raise BudgetError(f"disk budget {spec[:40]!r}: a size must be above 0 (or write off)")
    return number, unit


def disk_budget(spec: str, snapshot: Snapshot) -> DiskBudget:
    """The budget ``spec`` gives on ``snapshot``'s database (see :func:`check_budget`)."""
    checked = check_budget(spec)
    if checked is None:
        return DiskBudget(None, "no disk budget (off)")
    number, unit = checked
    if unit == "%":
        size = database_bytes(snapshot)
        share = int(size * number / 100)
        rule = f"{number:g}% of the database's {fmt_bytes(size)}"
        if share < FLOOR_BYTES:
            return DiskBudget(FLOOR_BYTES, f"{rule}, raised to the {fmt_bytes(FLOOR_BYTES)} floor")
        return DiskBudget(share, rule)
    return DiskBudget(int(number * _UNITS[unit]), f"set to {fmt_bytes(number * _UNITS[unit])}")
