"""How large a new B-tree would be: its entries, B-tree deduplication, the leaves' fill factor.

Checked against indexes built on PostgreSQL 15 (``tests/integration/test_sizes.py``): a
B-tree entry is an 8-byte header (with the heap TID) plus the values at their alignment,
padded to 8 bytes, plus a 4-byte line pointer. Since PostgreSQL 13 equal keys share one
entry with a posting list of 6-byte TIDs (deduplication), so an index on a date column of a
million rows takes about 7 MB instead of 22 MB. Deduplication never applies to INCLUDE
indexes, unique ones, expression keys here (their type is unknown), or keys of types that
cannot be compared bytewise for equality (numeric, floats, jsonb, arrays).
"""

from __future__ import annotations

import math

from app.engine.model import Candidate, Table

__all__ = [
    "DEDUP_VERSION",
    "DEFAULT_PARTIAL_FRACTION",
    "estimate_size",
    "key_bytes",
    "partial_fraction",
]

#: B-tree deduplication exists from PostgreSQL 13 on.
DEDUP_VERSION = 130000
#: The share of rows a partial index keeps when the statistics cannot say.
DEFAULT_PARTIAL_FRACTION = 0.1
_TUPLE_HEADER = 8
_LINE_POINTER = 4
_TID = 6
#: The largest posting-list tuple deduplication builds (half of the 2,704-byte item limit).
_MAX_POSTING_TUPLE = 1352
#: Leaf pages are built 90 % full (the default fillfactor).
_FILL = 0.9
_NO_DEDUP_TYPES = ("numeric", "decimal", "real", "double precision", "float", "jsonb")


def estimate_size(c: Candidate, table: Table | None, *, dedup: bool = True) -> int:
    """Bytes of the B-tree ``c`` on ``table``; ``dedup``: the server deduplicates (13+)."""
    rows = table.rows if table else 0.0
    if c.where:
        rows *= partial_fraction(c, table)
    entry = _entry_bytes(c, table)
    distinct = _distinct_keys(c, table, rows) if dedup else None
    if distinct is not None and rows / distinct >= 2:
        per_tuple = max(1, (_MAX_POSTING_TUPLE - entry) // _TID)
        tuples = distinct * math.ceil(rows / distinct / per_tuple)
        total = rows * _TID + tuples * (entry + _LINE_POINTER)
    else:
        total = rows * (entry + _LINE_POINTER)
    return max(8192, int(total / _FILL))


def partial_fraction(c: Candidate, table: Table | None) -> float:
    """The share of ``table``'s rows that ``c``'s predicate keeps, from pg_stats."""
    if table is None or not c.where:
        return DEFAULT_PARTIAL_FRACTION
    fraction = 1.0
    for part in c.where.split(" AND "):
        name, _, rest = part.partition(" ")
        col = table.column(name.strip('"'))
        stats = col.stats if col else None
        if stats is None:
            fraction *= DEFAULT_PARTIAL_FRACTION
        elif rest == "IS NULL":
            fraction *= stats.null_frac
        else:
            value = rest.removeprefix("= ").strip("'")
            freqs = dict(zip(stats.most_common_vals, stats.most_common_freqs, strict=False))
            fraction *= freqs.get(value, DEFAULT_PARTIAL_FRACTION)
    return max(fraction, 0.0001)


def key_bytes(c: Candidate, table: Table | None) -> int:
    """The width the write cost counts for one entry of ``c``: each key padded to 8 bytes."""
    total = 0
    for name in (*c.columns, *c.include):
        col = table.column(name) if table else None
        width = col.stats.avg_width if col and col.stats else 8
        total += -(-width // 8) * 8
    return total


def _entry_bytes(c: Candidate, table: Table | None) -> int:
    """One index tuple: the header and the values, each at its type's alignment, padded to 8."""
    used = _TUPLE_HEADER
    for name in (*c.columns, *c.include):
        col = table.column(name) if table else None
        width = col.stats.avg_width if col and col.stats else 8
        align = width if width in (2, 4, 8) else 1  # short varlena values are not aligned
        used = -(-used // align) * align + width
    return -(-used // 8) * 8


def _distinct_keys(c: Candidate, table: Table | None, rows: float) -> float | None:
    """Distinct key combinations among ``rows``, or None when deduplication cannot apply."""
    if table is None or c.include or rows < 1:
        return None
    combined = 1.0
    for key in c.keys:
        col = None if key.expression else table.column(key.key)
        if col is None or col.stats is None or col.stats.n_distinct == 0:
            return None
        kind = col.type.lower()
        if "[" in kind or kind.startswith(_NO_DEDUP_TYPES):
            return None
        found = col.stats.n_distinct
        combined *= found if found > 0 else -found * table.rows
    return max(1.0, min(rows, combined))
