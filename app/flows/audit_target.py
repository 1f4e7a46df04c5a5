"""Audit one target database: read-only snapshot and workload, what-if oracle, pure engine."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from app.adapters.target_pg import connect
from app.adapters.whatif import make_oracle
from app.engine.audit import AuditConfig, Report, audit
from app.engine.selection import Progress
from app.engine.workload import read_queries


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    """Where the workload comes from and how it is filtered."""

    #: ``;``-separated SQL; ``None`` reads pg_stat_statements.
    queries_text: str | None = None
    min_calls: int = 1
    min_total_ms: float = 0.0
    limit: int = 1000


def audit_target(
    dsn: str,
    workload: WorkloadSpec,
    *,
    config: AuditConfig | None = None,
    progress: Progress | None = None,
    allow_build: bool = False,
) -> Report:
    """Collect from the target read-only, then run the engine with its planner as the oracle.

    Without HypoPG on the target, what-if needs real index builds inside transactions that
    roll back; those block writes to each table while they build, so they run only when
    ``allow_build`` says the operator agreed (a copy, a replica-promoted sandbox, a quiet
    database). Otherwise a MissingPrerequisite says how to install HypoPG.
    """
    with connect(dsn) as target:
        if progress:
            progress("collect", 0, 2)
        snapshot = target.snapshot()
        if progress:
            progress("collect", 1, 2)
        if workload.queries_text is not None:
            queries = read_queries(workload.queries_text)
        else:
            queries = target.workload(
                min_calls=workload.min_calls,
                min_total_ms=workload.min_total_ms,
                limit=workload.limit,
            )
        if progress:
            progress("collect", 2, 2)
        oracle = make_oracle(target, snapshot, allow_build=allow_build)
        return audit(
            snapshot, queries, oracle, now=datetime.now(UTC), config=config, progress=progress
        )
