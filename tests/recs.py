"""Recommendations built as the engine builds them, for tests that need a realistic one."""

from __future__ import annotations

from app.engine.ddl import create_index_sql
from app.engine.model import Candidate, IndexKey, Recommendation

#: Mixed-case columns, an expression key, DESC, INCLUDE and WHERE: every part of an index.
AUDITLOG = Candidate(
    "public.AuditLog",
    (
        IndexKey("userId"),
        IndexKey("lower(email)", expression=True),
        IndexKey("createdAt", descending=True),
    ),
    include=("payload",),
    where="deleted_at IS NULL",
)


def create_rec(candidate: Candidate, name: str, *, reasons: tuple[str, ...] = ()) -> Recommendation:
    """A ``create_index`` recommendation whose ddl is the candidate's measured statement."""
    return Recommendation(
        action="create_index",
        table=candidate.table,
        columns=candidate.columns,
        index_name=name,
        ddl=create_index_sql(candidate, name),
        include=candidate.include,
        where=candidate.where,
        using=candidate.using,
        descending=tuple(k.descending for k in candidate.keys),
        reasons=reasons,
    )
