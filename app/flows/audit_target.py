"""Audit one target: read-only snapshot and workload, what-if oracle, pure engine, then proof."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime

from app.adapters.errors import TargetUnavailable
from app.adapters.target_pg import Target, connect
from app.adapters.validate import Budget, Planned, validate
from app.adapters.whatif import make_oracle
from app.engine.advisor.audit import AuditConfig, Report, audit, recommendation_id
from app.engine.advisor.params import ParamSet, parameter_sets, resample_sets
from app.engine.advisor.samples import Values, captured, read_log_samples
from app.engine.advisor.selection import Progress
from app.engine.advisor.workload import read_queries
from app.engine.catalog import Catalog
from app.engine.proof.evidence import Evidence
from app.engine.verdict import Affected, ProofConfig, affected, assess

SANDBOX = "sandbox"
#: Starts the message of a connection error that concerns the sandbox, not the target.
SANDBOX_PREFIX = "validation sandbox: "
ON_TARGET = "target"
DROP_ON_TARGET = (
    "not measured: dropping an index inside a transaction locks every reader of the table "
    "out until it rolls back, which is not done on the target; validate drops on a sandbox "
    "(--validate-dsn)"
)


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    """Where the workload comes from and how it is filtered."""

    #: ``;``-separated SQL; ``None`` reads pg_stat_statements.
    queries_text: str | None = None
    min_calls: int = 1
    min_total_ms: float = 0.0
    limit: int = 1000
    #: PostgreSQL log lines whose captured values are measured instead of synthesised ones.
    samples_text: str | None = None


@dataclass(frozen=True, slots=True)
class ValidationSpec:
    """Where recommendations are measured: a sandbox copy, the target itself, or nowhere."""

    #: A sandbox copy of the target (same schema, representative data).
    sandbox_dsn: str | None = field(default=None, repr=False)
    #: The operator allows rolled-back index builds on the target itself.
    on_target: bool = False
    budget: Budget = field(default_factory=Budget)
    #: Recommendations still waiting when this much time has passed are left unmeasured.
    max_seconds: float = 600.0

    @property
    def enabled(self) -> bool:
        """Validation has somewhere to run."""
        return self.sandbox_dsn is not None or self.on_target


def audit_target(
    dsn: str,
    workload: WorkloadSpec,
    *,
    config: AuditConfig | None = None,
    progress: Progress | None = None,
    allow_build: bool = False,
    validation: ValidationSpec | None = None,
    proof: ProofConfig | None = None,
) -> Report:
    """Collect from the target read-only, run the engine with its planner as the oracle, prove.

    Without HypoPG on the target, what-if needs real index builds inside transactions that
    roll back; those block writes to each table while they build, so they run only when
    ``allow_build`` says the operator agreed (a copy, a replica-promoted sandbox, a quiet
    database). Otherwise a MissingPrerequisite says how to install HypoPG.

    Every recommendation is then measured where ``validation`` allows, and judged: rejected
    with numbers when the measurements contradict it, scored for confidence otherwise.
    """
    validation = validation or ValidationSpec()
    with ExitStack() as stack:
        target = stack.enter_context(connect(dsn))
        sandbox = _open_sandbox(stack, validation.sandbox_dsn)
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
        now = datetime.now(UTC)
        report = audit(snapshot, queries, oracle, now=now, config=config, progress=progress)
        evidence: Mapping[str, Evidence] = {}
        if validation.enabled and report.recommendations:
            session, where = (sandbox, SANDBOX) if sandbox is not None else (target, ON_TARGET)
            samples = read_log_samples(workload.samples_text or "")
            evidence = prove(report, session, where, validation, proof, progress, samples)
        return assess(report, evidence, now=now, config=proof)


def _planned(
    target: Affected, catalog: Catalog, samples: Mapping[str, Sequence[Values]]
) -> Planned:
    stmt = target.statement
    values = captured(samples, stmt.query.text, stmt.params) if stmt.params else []
    if values:
        sets = [ParamSet(f"captured-{n}", v) for n, v in enumerate(values, 1)]
        return Planned(target, tuple(sets))
    synthesised, notes = parameter_sets(stmt, catalog)
    first = tuple(synthesised)
    more = tuple(resample_sets(stmt, catalog, first)) if first else ()
    return Planned(target, first, tuple(notes), synthesized=bool(first), resample=more)


def _open_sandbox(stack: ExitStack, dsn: str | None) -> Target | None:
    """Connect to the sandbox first, so a wrong DSN fails before the audit's work."""
    if dsn is None:
        return None
    try:
        return stack.enter_context(connect(dsn))
    except TargetUnavailable as exc:
        raise type(exc)(f"{SANDBOX_PREFIX}{exc}") from None


def prove(
    report: Report,
    session: Target,
    where: str,
    validation: ValidationSpec,
    proof: ProofConfig | None = None,
    progress: Progress | None = None,
    samples: Mapping[str, Sequence[Values]] | None = None,
) -> Mapping[str, Evidence]:
    """Measure each create / drop recommendation on ``session`` in its own rolled-back txn.

    Statements run with their captured values (``samples``, from logs) when there are any,
    else with values synthesised from pg_stats.
    """
    catalog = Catalog(report.snapshot)
    recs = [r for r in report.recommendations if r.action in ("create_index", "drop_index")]
    started = time.monotonic()
    found: dict[str, Evidence] = {}
    for n, rec in enumerate(recs):
        if progress:
            progress("validate", n, len(recs))
        rid = recommendation_id(rec)
        if time.monotonic() - started > validation.max_seconds:
            found[rid] = Evidence(
                where, skipped=f"not measured: the {validation.max_seconds:.0f} s budget ran out"
            )
            continue
        if rec.action == "drop_index" and where == ON_TARGET:
            found[rid] = Evidence(where, skipped=DROP_ON_TARGET)
            continue
        planned = [
            _planned(t, catalog, samples or {}) for t in affected(rec, report.analyzed, proof)
        ]
        found[rid] = validate(session, rec, planned, where=where, budget=validation.budget)
    if progress and recs:
        progress("validate", len(recs), len(recs))
    return found
