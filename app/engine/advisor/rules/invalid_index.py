"""Invalid indexes (left by a failed concurrent build): rebuild them, or drop REINDEX leftovers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from app.engine.advisor.rules.common import drop_recommendation, format_bytes, is_partitioned
from app.engine.ddl import drop_index_sql, quote_qualified
from app.engine.model import Recommendation

if TYPE_CHECKING:
    from app.engine.advisor.rules.config import RuleConfig
    from app.engine.model import Index, Snapshot

__all__ = ["RULE_ID", "invalid_index", "reindex_sql"]

RULE_ID = "invalid_index"

#: Names REINDEX CONCURRENTLY gives its transient copies (``_ccnew``, ``_ccold``, then numbered).
_REINDEX_LEFTOVER = re.compile(r"_cc(new|old)\d*$")


def reindex_sql(qualified_index: str) -> str:
    """``REINDEX INDEX CONCURRENTLY schema.name``.

    >>> reindex_sql("public.Orders_idx")
    'REINDEX INDEX CONCURRENTLY public."Orders_idx"'
    """
    return f"REINDEX INDEX CONCURRENTLY {quote_qualified(qualified_index)}"


def invalid_index(
    snapshot: Snapshot, /, *, now: datetime, config: RuleConfig
) -> Iterator[Recommendation]:
    """Propose rebuilding each invalid index (``pg_index.indisvalid = false``).

    A transient copy left by a failed ``REINDEX CONCURRENTLY`` (name ending ``_ccnew`` or
    ``_ccold``) is proposed for dropping instead, as the PostgreSQL docs advise. Invalid
    indexes on a partitioned table are skipped: they are usually mid-way through
    ``CREATE INDEX ON ONLY`` + ``ALTER INDEX … ATTACH PARTITION``, which REINDEX does not finish.

    Args:
        snapshot: the target's catalog and counters.
        now: unused; part of the rule signature.
        config: unused; part of the rule signature.

    Returns:
        ``reindex`` (or ``drop_index``) recommendations ordered by table, then index name.
    """
    for index in sorted(snapshot.indexes, key=lambda i: (i.table, i.name)):
        if index.valid or is_partitioned(snapshot, index):
            continue
        leftover = _REINDEX_LEFTOVER.search(index.name)
        if leftover:
            yield drop_recommendation(
                snapshot, index, rule=RULE_ID, reasons=_leftover_reasons(index, leftover[1])
            )
            continue
        yield Recommendation(
            action="reindex",
            table=index.table,
            columns=index.columns,
            index_name=index.name,
            ddl=reindex_sql(index.qualified),
            include=index.include,
            where=index.where,
            using=index.using,
            descending=index.descending,
            reasons=_reasons(index),
            rule=RULE_ID,
            size_bytes=index.size_bytes,
            definition=index.definition,
        )


def _reasons(index: Index) -> tuple[str, ...]:
    reasons = [
        f"{index.name} is invalid: a CREATE INDEX CONCURRENTLY that failed or was cancelled "
        "leaves the index behind in this state",
        f"the planner never uses it, yet every insert and update on {index.table} still "
        f"maintains it ({format_bytes(index.size_bytes)})",
        "first check pg_stat_progress_create_index: an index still being built concurrently "
        "is also invalid until the build finishes",
        "REINDEX INDEX CONCURRENTLY rebuilds it without blocking writes; if it is not needed, "
        f"drop it instead: {drop_index_sql(index.qualified)}",
    ]
    if index.unique:
        reasons.append(
            "it is unique: if the build failed on duplicate values, the rebuild fails the "
            "same way until those rows are fixed"
        )
    return tuple(reasons)


def _leftover_reasons(index: Index, kind: str) -> tuple[str, ...]:
    if kind == "new":
        what = (
            "the new copy a failed REINDEX CONCURRENTLY was building; drop it, then run the "
            "REINDEX again"
        )
    else:
        what = (
            "the old copy a REINDEX CONCURRENTLY could not drop after the rebuild succeeded; "
            "dropping it is all that is left to do"
        )
    return (
        f"{index.name} is invalid and named like a REINDEX CONCURRENTLY leftover: {what}",
        f"until then every insert and update on {index.table} still maintains it "
        f"({format_bytes(index.size_bytes)})",
    )
