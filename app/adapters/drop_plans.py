"""A drop checked by its plans: HypoPG's version, and EXPLAIN with the index hidden or dropped.

The statements are planned (EXPLAIN, never executed) with the index present, then absent:

- hidden (HypoPG 1.4+): ``hypopg_hide_index(oid)`` removes it from this session's planner,
  with no lock, in a read-only transaction; every index is unhidden afterwards (hiding is
  session state, not undone by a rollback). HypoPG hides an index from plain ``EXPLAIN``
  only (its planner hook runs for EXPLAIN without ANALYZE), so this gives plans, not timings;
- dropped: ``DROP INDEX`` inside a transaction that rolls back. It takes an ACCESS EXCLUSIVE
  lock on the table, so it waits at most the lock budget and is held only while the
  statements are planned.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, LiteralString

import structlog
from psycopg import sql

from app.adapters.errors import TargetError, TargetQueryError
from app.adapters.measure import why
from app.adapters.target_pg import Target, single_statement, untrusted
from app.adapters.validate import (
    CHANGE_SAVEPOINT,
    Budget,
    Planned,
    change_sql,
    deallocate,
    prepare_guarded,
)
from app.adapters.whatif import Q_ROLLBACK_TO, Q_SAVEPOINT
from app.engine.ddl import quote_qualified
from app.engine.model import Recommendation
from app.engine.proof.evidence import Evidence, PlanCheck, StatementEvidence, plan_index_names
from app.engine.proof.twin import HIDDEN, PLANS_ONLY

Q_HYPOPG_VERSION: LiteralString = """
SELECT
    n.nspname AS schema,
    e.extversion AS version
FROM pg_catalog.pg_extension AS e
JOIN pg_catalog.pg_namespace AS n
    ON n.oid = e.extnamespace
WHERE e.extname = 'hypopg'
"""
# {hide} / {unhide}: HypoPG's functions, qualified with the extension's schema.
Q_HIDE: LiteralString = "SELECT {hide}(pg_catalog.to_regclass({index})::oid) AS hidden"
Q_UNHIDE: LiteralString = "SELECT {unhide}() AS unhidden"
Q_PLAN_MODE: LiteralString = "SELECT pg_catalog.set_config('plan_cache_mode', %(mode)s, true)"
Q_EXPLAIN_EXECUTE: LiteralString = "EXPLAIN (FORMAT JSON) EXECUTE {name}{args}"
log = structlog.get_logger(__name__)

PREPARE_SAVEPOINT = "dbarchitect_plan"
GENERIC = "generic"


@dataclass(frozen=True, slots=True)
class HypoPG:
    """The HypoPG extension installed in the database: its schema and ``extversion``."""

    schema: str
    version: str


def hypopg(session: Target) -> HypoPG | None:
    """HypoPG as installed in the session's database (``pg_extension``), or ``None``."""
    found = session.rows(Q_HYPOPG_VERSION)
    if not found:
        return None
    return HypoPG(str(found[0]["schema"]), str(found[0]["version"]))


Plans = dict[tuple[int, str], tuple[frozenset[str], float]]


class _PlansOnly:
    """Prepare, plan, drop in a savepoint, plan again; the transaction always rolls back."""

    def __init__(
        self,
        session: Target,
        rec: Recommendation,
        planned: Sequence[Planned],
        budget: Budget,
        hypopg_schema: str | None,
    ) -> None:
        self.session = session
        self.rec = rec
        self.planned = list(planned)
        self.budget = budget
        #: Hide the index with HypoPG (this schema's functions) instead of dropping it.
        self.hypopg_schema = hypopg_schema
        self.notes: dict[int, list[str]] = {i: [] for i in range(len(planned))}
        self.prepared: list[int] = []
        self.change_ms: float | None = None

    def name(self, i: int) -> sql.Identifier:
        return sql.Identifier(f"dbarchitect_d{i}")

    def run(self, where: str) -> Evidence:
        skipped: str | None = None
        before: Plans = {}
        after: Plans = {}
        try:
            with self.session.read_write_transaction(
                lock_timeout_ms=self.budget.lock_timeout_ms,
                statement_timeout_ms=self.budget.statement_timeout_ms,
                read_only=self.hypopg_schema is not None,
            ):
                self._prepare_all()
                before = self._plan_all()
                skipped = self._take_away()
                if skipped is None:
                    # Prepared again: a cached generic plan outlives hiding (no invalidation).
                    self._deallocate()
                    self._prepare_all()
                    after = self._plan_all()
        except TargetQueryError as exc:
            skipped = f"validation stopped: {why(exc)}"
        finally:
            self._deallocate()
            self._unhide()
        checks = [
            PlanCheck(
                self.planned[i].affected.statement.query,
                label,
                names,
                after[(i, label)][0],
                cost,
                after[(i, label)][1],
            )
            for (i, label), (names, cost) in before.items()
            if (i, label) in after
        ]
        return Evidence(
            where=where,
            statements=tuple(self._statement(i) for i in range(len(self.planned))),
            change_ms=self.change_ms,
            skipped=skipped,
            drop_method=PLANS_ONLY if self.hypopg_schema is None else HIDDEN,
            plans=tuple(checks) if skipped is None else (),
        )

    def _prepare_all(self) -> None:
        sp = sql.Identifier(PREPARE_SAVEPOINT)
        self.prepared = []
        self.notes = {i: [] for i in range(len(self.planned))}
        for i, p in enumerate(self.planned):
            problem = prepare_guarded(
                self.session, self.name(i), p.affected.statement.explain_sql, sp, executes=False
            )
            if problem is not None:
                self.notes[i].append(f"not planned: {problem}")
                continue
            self.prepared.append(i)

    def _plan_all(self) -> Plans:
        """Each statement's plan per parameter set (custom plans), or its generic plan when
        a placeholder has no value: the index names it uses and its estimated cost."""
        found: Plans = {}
        for i in self.prepared:
            p = self.planned[i]
            params = p.affected.statement.params
            if p.param_sets and not p.notes:
                sets = [(s.label, s.values, "force_custom_plan") for s in p.param_sets]
            else:
                label = GENERIC if params else "literal"
                sets = [(label, (None,) * params, "force_generic_plan")]
            for label, values, mode in sets:
                self.session.rows(Q_PLAN_MODE, {"mode": mode})
                args = (
                    sql.SQL("({})").format(
                        sql.SQL(", ").join(
                            sql.NULL if v is None else sql.Literal(v) for v in values
                        )
                    )
                    if values
                    else sql.SQL("")
                )
                rows = self.session.rows(
                    sql.SQL(Q_EXPLAIN_EXECUTE).format(name=self.name(i), args=args)
                )
                plan: dict[str, Any] = rows[0]["QUERY PLAN"][0]
                found[(i, label)] = (plan_index_names(plan), float(plan["Plan"]["Total Cost"]))
        return found

    def _take_away(self) -> str | None:
        """Hide or drop the index; the reason it could not be done, or None."""
        started = time.perf_counter()
        if self.hypopg_schema is None:
            skipped = self._drop(untrusted(single_statement(change_sql(self.rec))))
        else:
            qualified = f"{self.rec.table.partition('.')[0]}.{self.rec.index_name}"
            row = self.session.one(
                sql.SQL(Q_HIDE).format(
                    hide=sql.Identifier(self.hypopg_schema, "hypopg_hide_index"),
                    index=sql.Literal(quote_qualified(qualified)),
                )
            )
            skipped = None if row["hidden"] else f"HypoPG could not hide {self.rec.index_name}"
        if skipped is None:
            self.change_ms = (time.perf_counter() - started) * 1000
        return skipped

    def _unhide(self) -> None:
        """Hiding is session state that a rollback keeps: unhide every index, always."""
        if self.hypopg_schema is None:
            return
        unhide = sql.Identifier(self.hypopg_schema, "hypopg_unhide_all_indexes")
        try:
            self.session.rows(sql.SQL(Q_UNHIDE).format(unhide=unhide))
        except TargetError:
            log.warning("drop_plans.unhide_failed")  # a broken session takes its state along

    def _drop(self, ddl: sql.Composable) -> str | None:
        sp = sql.Identifier(CHANGE_SAVEPOINT)
        try:
            self.session.script([sql.SQL(Q_SAVEPOINT).format(name=sp), ddl])
        except TargetQueryError as exc:
            self.session.script([sql.SQL(Q_ROLLBACK_TO).format(name=sp)])
            if exc.lock_timeout:
                return (
                    f"lock wait: another session holds a lock on {self.rec.table} beyond the "
                    f"{self.budget.lock_timeout_ms} ms lock budget; nothing was changed, "
                    "validate again when it is quieter"
                )
            return f"the change could not be made: {why(exc)}"
        return None

    def _deallocate(self) -> None:
        prepared, self.prepared = self.prepared, []
        deallocate(self.session, [self.name(i) for i in prepared])

    def _statement(self, i: int) -> StatementEvidence:
        a = self.planned[i].affected
        return StatementEvidence(
            query=a.statement.query,
            write=a.write,
            cost_before=a.cost_before,
            cost_after=a.cost_after,
            notes=(*self.notes[i], "planned only: the statement was not executed"),
        )


def plans_without(
    session: Target,
    rec: Recommendation,
    planned: Sequence[Planned],
    *,
    where: str,
    budget: Budget | None = None,
    hypopg_schema: str | None = None,
) -> Evidence:
    """Plan ``planned`` with the index of ``rec`` present, then absent; always rolled back.

    With ``hypopg_schema`` (HypoPG 1.4+ there) the index is hidden, without a lock;
    otherwise it is dropped in the transaction. Nothing is executed: the evidence is the
    plans (index names, estimated costs), for the twin check of an exact duplicate
    (:func:`app.engine.proof.twin.twin_verdict`) and the drop verdict.
    """
    if rec.action != "drop_index":
        raise ValueError(f"{rec.action} is not checked by planning without an index")
    return _PlansOnly(session, rec, planned, budget or Budget(), hypopg_schema).run(where)
