"""Validate one recommendation for real: measure, change the index, measure again — rolled back."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import LiteralString

import structlog
from psycopg import sql

from app.adapters.errors import TargetError, TargetQueryError
from app.adapters.measure import run_prepared, why
from app.adapters.target_pg import Target, single_statement, untrusted
from app.adapters.target_pg.reach import outside_effects
from app.adapters.whatif import (
    Q_CHECK_XMIN,
    Q_DEALLOCATE,
    Q_PREPARE,
    Q_RELEASE,
    Q_ROLLBACK_TO,
    Q_SAVEPOINT,
)
from app.engine.advisor.params import ParamSet
from app.engine.ddl import drop_index_sql, quote_ident, restate_create_index
from app.engine.model import Recommendation
from app.engine.proof.evidence import Evidence, Run, StatementEvidence, Timing, plan_index_names
from app.engine.proof.method import Cause
from app.engine.proof.reproduce import describe, observed, representative
from app.engine.verdict import Affected

log = structlog.get_logger(__name__)

CHANGE_SAVEPOINT = "dbarchitect_change"
PREPARE_SAVEPOINT = "dbarchitect_prepare"
CONCURRENTLY = "CREATE INDEX CONCURRENTLY "

# Every execution is planned for its own values, as an application's first executions are;
# otherwise the plan cache could switch to a generic plan halfway through the runs.
Q_CUSTOM_PLANS: LiteralString = (
    "SELECT pg_catalog.set_config('plan_cache_mode', 'force_custom_plan', true)"
)


@dataclass(frozen=True, slots=True)
class Budget:
    """Time and lock limits of one validation transaction."""

    lock_timeout_ms: int = 1_000
    #: Per statement: each measured run, and the CREATE / DROP INDEX itself.
    statement_timeout_ms: int = 60_000
    runs: int = 5
    warmup: int = 1
    #: Stop repeating a parameter set after this long (at least three runs are kept).
    set_budget_ms: float = 3_000.0
    #: Measured runs of each resampled parameter set (before the change only, unless kept).
    resample_runs: int = 3


@dataclass(frozen=True, slots=True)
class Planned:
    """A statement to measure, its parameter sets, and why it cannot be measured (notes)."""

    affected: Affected
    param_sets: tuple[ParamSet, ...]
    notes: tuple[str, ...] = ()
    #: The sets were drawn from pg_stats (not captured): check that they reproduce what
    #: pg_stat_statements saw, and draw ``resample`` when none does.
    synthesized: bool = False
    resample: tuple[ParamSet, ...] = ()


def prepare_guarded(
    session: Target, name: sql.Identifier, text: str, sp: sql.Identifier, *, executes: bool
) -> str | None:
    """PREPARE ``text`` as ``name`` under savepoint ``sp``; why it could not be, or None.

    Refused without a round trip when it is not one statement, or reaches a function that
    could act outside the transaction (``executes``: it will run, not just be planned).
    """
    try:
        body = untrusted(single_statement(text))
        refused = outside_effects(session, text, executes=executes)
        if refused is not None:
            return refused
        session.script(
            [
                sql.SQL(Q_SAVEPOINT).format(name=sp),
                sql.SQL(Q_PREPARE).format(name=name) + body,
                sql.SQL(Q_RELEASE).format(name=sp),
            ]
        )
    except ValueError as exc:
        return str(exc)
    except TargetQueryError as exc:
        session.script([sql.SQL(Q_ROLLBACK_TO).format(name=sp)])
        return f"cannot prepare it ({why(exc)})"
    return None


def deallocate(session: Target, names: Sequence[sql.Identifier]) -> None:
    """DEALLOCATE each prepared statement; stop at the first failure (the session is gone)."""
    for name in names:
        try:
            session.script([sql.SQL(Q_DEALLOCATE).format(name=name)])
        except TargetError:
            log.debug("validate.deallocate_failed")
            return


def change_sql(rec: Recommendation) -> str:
    """The change in its transactional form (CONCURRENTLY cannot run in a transaction).

    Raises:
        ValueError: an action validation cannot perform.
    """
    if rec.action == "create_index" and rec.ddl.startswith(CONCURRENTLY):
        # The same derivation the drafted revision uses, so what ships is what was measured.
        return restate_create_index(
            rec.ddl,
            name=rec.index_name,
            table=rec.table,
            concurrently=False,
            if_not_exists=False,
        )
    if rec.action == "drop_index":
        schema = rec.table.partition(".")[0]
        return drop_index_sql(f"{schema}.{rec.index_name}", concurrently=False)
    raise ValueError(f"{rec.action} is not measured (nothing a query plan would show)")


def _qualified_index(rec: Recommendation) -> str:
    schema = rec.table.partition(".")[0]
    return f"{quote_ident(schema)}.{quote_ident(rec.index_name)}"


class _Validation:
    """One recommendation's transaction: prepare, measure, change, measure again."""

    def __init__(
        self, session: Target, rec: Recommendation, planned: Sequence[Planned], budget: Budget
    ) -> None:
        self.session = session
        self.rec = rec
        self.planned = list(planned)
        self.budget = budget
        self.before: dict[int, list[Run]] = {}
        self.after: dict[int, list[Run]] = {}
        self.notes: dict[int, list[str]] = {i: list(p.notes) for i, p in enumerate(planned)}
        self.sets: dict[int, tuple[ParamSet, ...]] = {
            i: p.param_sets or (ParamSet("literal", ()),) for i, p in enumerate(planned)
        }
        self.reproduced: dict[int, bool] = {}
        self.representative: dict[int, tuple[str, ...]] = {}
        self.prepared: list[int] = []
        self.change_ms: float | None = None
        self.index_bytes: int | None = None
        #: Why validation was skipped or stopped (with the reason ``run`` returns).
        self.cause: Cause | None = None

    def name(self, i: int) -> sql.Identifier:
        return sql.Identifier(f"dbarchitect_v{i}")

    def run(self, where: str) -> Evidence:
        skipped: str | None = None
        try:
            with self.session.read_write_transaction(
                lock_timeout_ms=self.budget.lock_timeout_ms,
                statement_timeout_ms=self.budget.statement_timeout_ms,
            ):
                self.session.rows(Q_CUSTOM_PLANS)
                self._prepare_all()
                self._measure(self.before)
                self._reproduce()
                skipped = self._change()
                if skipped is None:
                    self._measure(self.after)
        except TargetQueryError as exc:
            skipped = f"validation stopped: {why(exc)}"
            self.cause = _cause(exc)
        finally:
            self._deallocate()
        return Evidence(
            where=where,
            statements=tuple(self._statement(i) for i in range(len(self.planned))),
            change_ms=self.change_ms,
            index_bytes=self.index_bytes,
            skipped=skipped,
            used_by_plans=self._used() if skipped is None else None,
            cause=self.cause if skipped is not None else None,
        )

    def _measurable(self) -> Iterator[tuple[int, Planned]]:
        for i, p in enumerate(self.planned):
            if i in self.prepared:
                yield i, p

    def _prepare_all(self) -> None:
        sp = sql.Identifier(PREPARE_SAVEPOINT)
        for i, p in enumerate(self.planned):
            if p.notes:
                continue
            problem = prepare_guarded(
                self.session, self.name(i), p.affected.statement.explain_sql, sp, executes=True
            )
            if problem is not None:
                self.notes[i].append(f"not measured: {problem}")
                continue
            self.prepared.append(i)

    def _measure(self, into: dict[int, list[Run]]) -> None:
        for i, _ in self._measurable():
            into[i] = [self._run(i, params, self.budget.runs) for params in self.sets[i]]

    def _run(self, i: int, params: ParamSet, runs: int) -> Run:
        return run_prepared(
            self.session,
            self.name(i),
            params,
            runs=runs,
            warmup=self.budget.warmup,
            budget_ms=self.budget.set_budget_ms,
            timeout_ms=self.budget.statement_timeout_ms,
        )

    def _reproduce(self) -> None:
        """Check each synthesized read against pg_stat_statements; resample when none fits.

        Resampled sets that reproduce the statement join its sets (measured after the change
        too); the others are dropped. The engine decides; this only runs the statements.
        """
        for i, p in self._measurable():
            seen = observed(p.affected.statement.query)
            if seen is None or p.affected.write or not p.synthesized:
                continue
            first = list(self.before[i])
            kept = representative(seen, first)
            if not kept:
                extra = [self._run(i, s, self.budget.resample_runs) for s in p.resample]
                kept = representative(seen, extra)
                self.sets[i] += tuple(s for s in p.resample if s.label in kept)
                self.before[i] += [r for r in extra if r.label in kept]
                self.notes[i].append(describe(seen, [*first, *extra], len(extra), kept))
            self.reproduced[i] = bool(kept)
            self.representative[i] = kept

    def _change(self) -> str | None:
        """Make the change in a savepoint; the reason it could not be made, or None."""
        try:
            ddl = untrusted(single_statement(change_sql(self.rec)))
        except ValueError as exc:
            self.cause = Cause.nothing_to_measure
            return str(exc)
        sp = sql.Identifier(CHANGE_SAVEPOINT)
        started = time.perf_counter()
        try:
            self.session.script([sql.SQL(Q_SAVEPOINT).format(name=sp), ddl])
        except TargetQueryError as exc:
            self.session.script([sql.SQL(Q_ROLLBACK_TO).format(name=sp)])
            self.cause = _cause(exc)
            if exc.lock_timeout:
                return (
                    f"lock wait: another session holds a conflicting lock on {self.rec.table} "
                    f"beyond the {self.budget.lock_timeout_ms} ms lock budget; nothing was "
                    "changed, validate again when it is quieter"
                )
            return f"the change could not be made: {why(exc)}"
        self.change_ms = (time.perf_counter() - started) * 1000
        if self.rec.action != "create_index":
            return None
        built = self.session.one(
            sql.SQL(Q_CHECK_XMIN).format(index=sql.Literal(_qualified_index(self.rec)))
        )
        self.index_bytes = int(built["bytes"])
        if built["indcheckxmin"]:
            self.cause = Cause.not_visible
            return (
                f"the new index would not be visible to the planner inside the validating "
                f"transaction ({self.rec.table} has recently updated rows that older snapshots "
                "still see): VACUUM the table, or validate on a sandbox"
            )
        return None

    def _deallocate(self) -> None:
        deallocate(self.session, [self.name(i) for i in self.prepared])

    def _statement(self, i: int) -> StatementEvidence:
        a = self.planned[i].affected
        return StatementEvidence(
            query=a.statement.query,
            write=a.write,
            cost_before=a.cost_before,
            cost_after=a.cost_after,
            before=tuple(self.before.get(i, ())),
            after=tuple(self.after.get(i, ())),
            notes=tuple(self.notes[i]),
            reproduced=self.reproduced.get(i),
            representative=self.representative.get(i, ()),
        )

    def _used(self) -> bool | None:
        if self.rec.action != "create_index":
            return None
        return any(
            self.rec.index_name in plan_index_names(r.plan)
            for runs in self.after.values()
            for r in runs
            if isinstance(r, Timing)
        )


#: SQLSTATEs that mean the role may not make the change: insufficient_privilege,
#: read_only_sql_transaction (a standby or a read-only role).
_NO_WRITE_ACCESS = frozenset({"42501", "25006"})


def _cause(exc: TargetQueryError) -> Cause:
    if exc.lock_timeout:
        return Cause.lock_wait
    if exc.sqlstate in _NO_WRITE_ACCESS:
        return Cause.no_write_access
    return Cause.failed


def validate(
    session: Target,
    rec: Recommendation,
    planned: Sequence[Planned],
    *,
    where: str,
    budget: Budget | None = None,
) -> Evidence:
    """Measure ``planned`` before and after ``rec`` inside one transaction that rolls back.

    Bounded by ``budget``: a lock wait beyond the lock budget or a timeout ends validation
    with ``Evidence.skipped`` saying why; nothing is ever committed.
    """
    return _Validation(session, rec, planned, budget or Budget()).run(where)
