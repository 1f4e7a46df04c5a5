"""Audit one target: read-only snapshot and workload, what-if oracle, pure engine, then proof."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog

from app.adapters.drop_plans import HypoPG, hypopg, plans_without
from app.adapters.errors import TargetQueryError, TargetUnavailable
from app.adapters.target_pg import Target, connect
from app.adapters.validate import Budget, Planned, validate
from app.adapters.whatif import make_oracle
from app.engine.advisor.audit import AuditConfig, audit
from app.engine.advisor.params import ParamSet, parameter_sets, resample_sets
from app.engine.advisor.samples import Values, captured, read_log_samples
from app.engine.advisor.selection import Progress
from app.engine.advisor.sightings import (
    TIMEOUT_MESSAGE,
    Running,
    Samples,
    from_activity,
    merge,
    merge_samples,
    read_timeout_log,
)
from app.engine.advisor.workload import read_queries
from app.engine.catalog import Catalog
from app.engine.model import Query, Recommendation, recommendation_id
from app.engine.proof.evidence import Evidence
from app.engine.proof.method import Cause, Measurement, Method
from app.engine.proof.twin import HIDDEN, PLANS_ONLY, drop_method
from app.engine.report import Report
from app.engine.verdict import Affected, ProofConfig, affected, assess, twin_of

log = structlog.get_logger(__name__)

SANDBOX = "sandbox"
#: Starts the message of a connection error that concerns the sandbox, not the target.
SANDBOX_PREFIX = "validation sandbox: "
ON_TARGET = "target"
DROP_ON_TARGET = (
    "not measured: dropping an index inside a transaction locks every reader of the table "
    "out until it rolls back, which is not done on the target; validate drops on a sandbox copy, "
    "or install HypoPG 1.4 or later, which hides an index without a lock"
)
#: Why nothing was measured when validation had nowhere to run (callers say it their way).
NOT_CONFIGURED = Measurement(
    Method.estimate_only,
    Cause.not_configured,
    "validation had nowhere to run: no sandbox copy was given, and rolled-back index builds "
    "on the target were not allowed",
)
CLI_UNMEASURED = Measurement(
    Method.estimate_only,
    Cause.not_configured,
    "validation was not asked for: give a sandbox copy with --validate-dsn (new indexes and "
    "drops), or allow rolled-back builds on the target with --allow-build (new indexes)",
)


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    """Where the workload comes from and how it is filtered."""

    #: ``;``-separated SQL; ``None`` reads pg_stat_statements.
    queries_text: str | None = None
    min_calls: int = 1
    min_total_ms: float = 0.0
    limit: int = 1000
    #: PostgreSQL log lines whose captured values are measured instead of synthesised ones;
    #: their statement-timeout cancellations join the workload.
    samples_text: str | None = None
    #: With pg_stat_statements: statements running at least this long in pg_stat_activity,
    #: sampled while the snapshot and workload are read, join the workload (None: not sampled).
    activity_min_ms: float | None = 1000.0
    #: Slow statements seen earlier (the App's per-minute sampling), joining the workload.
    sightings: tuple[Query, ...] = ()


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
    #: What the report says of every recommendation when validation is not ``enabled``.
    unmeasured: Measurement = NOT_CONFIGURED

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
        live = workload.queries_text is None and workload.activity_min_ms is not None
        running: list[Running] = []
        if progress:
            progress("collect", 0, 2)
        _sample(target, workload, running, live)
        snapshot = target.snapshot()
        _sample(target, workload, running, live)
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
        _sample(target, workload, running, live)
        queries, samples = _with_slow_statements(target, workload, queries, running)
        if progress:
            progress("collect", 2, 2)
        oracle = make_oracle(target, snapshot, allow_build=allow_build)
        now = datetime.now(UTC)
        report = audit(snapshot, queries, oracle, now=now, config=config, progress=progress)
        evidence: Mapping[str, Evidence] = {}
        if validation.enabled and report.recommendations:
            session, where = (sandbox, SANDBOX) if sandbox is not None else (target, ON_TARGET)
            evidence = prove(report, session, where, validation, proof, progress, samples)
        unmeasured = None if validation.enabled else validation.unmeasured
        return assess(report, evidence, now=now, config=proof, unmeasured=unmeasured)


def _sample(target: Target, workload: WorkloadSpec, into: list[Running], live: bool) -> None:
    """One look at pg_stat_activity (three in all, spread over the collect phase)."""
    if not live or workload.activity_min_ms is None:
        return
    try:
        into += target.activity(min_ms=workload.activity_min_ms)
    except TargetQueryError as exc:  # a look we could not take is not worth the audit
        log.warning("audit.activity_unread", reason=str(exc))


def _with_slow_statements(
    target: Target, workload: WorkloadSpec, queries: list[Query], running: list[Running]
) -> tuple[list[Query], Samples]:
    """The workload with the slow statements it lacks, and every captured value set."""
    text = workload.samples_text or ""
    sighted, activity_values = from_activity(running)
    timed_out: list[Query] = []
    log_values: Samples = {}
    if TIMEOUT_MESSAGE in text:
        timed_out, log_values = read_timeout_log(text, timeout_ms=target.statement_timeout_ms())
    merged = merge(queries, [*sighted, *workload.sightings, *timed_out])
    if len(merged) > len(queries):
        log.info(
            "audit.slow_statements",
            running=len(sighted),
            remembered=len(workload.sightings),
            timed_out=len(timed_out),
            added=len(merged) - len(queries),
        )
    return merged, merge_samples(read_log_samples(text), log_values, activity_values)


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
    hypo = hypopg(session) if any(r.action == "drop_index" for r in recs) else None
    started = time.monotonic()
    found: dict[str, Evidence] = {}
    for n, rec in enumerate(recs):
        if progress:
            progress("validate", n, len(recs))
        rid = recommendation_id(rec)
        if time.monotonic() - started > validation.max_seconds:
            found[rid] = Evidence(
                where,
                skipped=f"not measured: the {validation.max_seconds:.0f} s budget ran out",
                cause=Cause.budget,
            )
            continue
        method = _drop_method(report, rec, where, hypo)
        if rec.action == "drop_index" and method is None:
            found[rid] = Evidence(where, skipped=DROP_ON_TARGET, cause=Cause.not_allowed)
            continue
        planned = [
            _planned(t, catalog, samples or {}) for t in affected(rec, report.analyzed, proof)
        ]
        budget = validation.budget
        if method in (HIDDEN, PLANS_ONLY):
            schema = hypo.schema if hypo is not None and method == HIDDEN else None
            found[rid] = plans_without(
                session, rec, planned, where=where, budget=budget, hypopg_schema=schema
            )
        else:
            found[rid] = validate(session, rec, planned, where=where, budget=budget)
    if progress and recs:
        progress("validate", len(recs), len(recs))
    return found


def _drop_method(
    report: Report, rec: Recommendation, where: str, hypo: HypoPG | None
) -> str | None:
    """How a drop is measured here (``None`` for a new index, or a drop not measured)."""
    if rec.action != "drop_index":
        return None
    return drop_method(
        on_sandbox=where == SANDBOX,
        hypopg_version=hypo.version if hypo else None,
        exact=twin_of(report.snapshot, rec) is not None,
    )
