"""What-if planner costs for the engine: HypoPG hypothetical indexes, or real builds rolled back."""
# Long module: HypoPG and real builds share the caching oracle; SQL text is a fifth of it.

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar, LiteralString

import structlog
from psycopg import sql

from app.adapters.errors import HypoPGMissing, MissingPrerequisite, TargetQueryError
from app.adapters.target_pg import Target, single_statement, untrusted
from app.adapters.target_pg.reach import Answers, outside_effects
from app.engine.advisor.whatif import CostRequest
from app.engine.ddl import create_index_sql, index_name, quote_ident
from app.engine.model import Candidate, RelKind, Snapshot
from app.engine.proof.evidence import plan_index_names

__all__ = [
    "HypoPGOracle",
    "RolledBackBuildOracle",
    "WhatIfOracle",
    "leaf_partitions",
    "make_oracle",
]

log = structlog.get_logger(__name__)

#: ``EXPLAIN (GENERIC_PLAN)`` exists from PostgreSQL 16 on.
GENERIC_PLAN_VERSION = 160000
_PLACEHOLDER = re.compile(r"\$\d")

Q_HYPOPG_SCHEMA: LiteralString = """
SELECT
    n.nspname AS schema
FROM pg_catalog.pg_extension AS e
JOIN pg_catalog.pg_namespace AS n
    ON n.oid = e.extnamespace
WHERE e.extname = 'hypopg'
"""
# {reset}, {create}: hypopg functions qualified with the extension's schema.
Q_HYPOPG_RESET: LiteralString = """
SELECT
    {reset}() AS reset
"""
Q_HYPOPG_CREATE: LiteralString = """
SELECT
    h.indexrelid
FROM pg_catalog.unnest(%(ddl)s::text[]) WITH ORDINALITY AS u(ddl, ord)
CROSS JOIN LATERAL {create}(u.ddl) AS h
ORDER BY
    u.ord
"""
Q_PREPARED_PARAMS: LiteralString = """
SELECT
    pg_catalog.cardinality(p.parameter_types) AS params
FROM pg_catalog.pg_prepared_statements AS p
WHERE p.name = %(name)s
"""
# {index}: an index built in this transaction; on a partitioned table its partitions' indexes
# count too. indcheckxmin: the planner may not use it yet (rows updated by transactions that
# older snapshots still see); bytes: its real size.
Q_CHECK_XMIN: LiteralString = """
SELECT
    COALESCE(bool_or(i.indcheckxmin), false) AS indcheckxmin,
    COALESCE(sum(pg_catalog.pg_relation_size(i.indexrelid)), 0)::bigint AS bytes
FROM pg_catalog.pg_index AS i
WHERE i.indexrelid = pg_catalog.to_regclass({index})
    OR i.indexrelid IN (
        SELECT pt.relid
        FROM pg_catalog.pg_partition_tree(pg_catalog.to_regclass({index})) AS pt
    )
"""
Q_EXPLAIN: LiteralString = "EXPLAIN (FORMAT JSON) "
Q_EXPLAIN_GENERIC: LiteralString = "EXPLAIN (GENERIC_PLAN, FORMAT JSON) "
Q_FORCE_GENERIC: LiteralString = "SET LOCAL plan_cache_mode = force_generic_plan"
Q_PREPARE: LiteralString = "PREPARE {name} AS "
Q_EXPLAIN_EXECUTE: LiteralString = "EXPLAIN (FORMAT JSON) EXECUTE {name}{args}"
Q_DEALLOCATE: LiteralString = "DEALLOCATE {name}"
Q_SAVEPOINT: LiteralString = "SAVEPOINT {name}"
Q_RELEASE: LiteralString = "RELEASE SAVEPOINT {name}"
Q_ROLLBACK_TO: LiteralString = "ROLLBACK TO SAVEPOINT {name}"
Q_READ_ONLY: LiteralString = "SET LOCAL transaction_read_only = on"

Key = tuple[str, frozenset[Candidate]]


def leaf_partitions(snapshot: Snapshot) -> dict[str, tuple[str, ...]]:
    """The leaf partitions (plain tables, any depth) of each partitioned table in ``snapshot``.

    Foreign-table partitions are left out: they cannot be indexed, and a ``CREATE INDEX`` on
    the parent skips them too.
    """
    children: dict[str, list[str]] = {}
    kinds = {t.qualified: t.kind for t in snapshot.tables}
    for t in snapshot.tables:
        if t.partition_of is not None:
            children.setdefault(t.partition_of, []).append(t.qualified)
    leaves: dict[str, tuple[str, ...]] = {}
    for parent, kind in kinds.items():
        if kind != RelKind.partitioned:
            continue
        found: list[str] = []
        stack = list(reversed(children.get(parent, [])))
        while stack:
            name = stack.pop()
            if kinds[name] == RelKind.table:
                found.append(name)
            stack.extend(reversed(children.get(name, [])))
        leaves[parent] = tuple(found)
    return leaves


def _total_cost(rows: list[dict[str, Any]]) -> float:
    """Total Cost of the top plan node of an ``EXPLAIN (FORMAT JSON)`` result."""
    plan = rows[0]["QUERY PLAN"]
    return float(plan[0]["Plan"]["Total Cost"])


def _index_names(rows: list[dict[str, Any]]) -> frozenset[str]:
    """Every ``Index Name`` in an ``EXPLAIN (FORMAT JSON)`` plan tree."""
    return plan_index_names(rows[0]["QUERY PLAN"][0])


class WhatIfOracle:
    """A :class:`~app.engine.advisor.whatif.CostOracle` with caching, grouping, generic plans.

    ``kind`` names the method; ``errors`` / ``index_errors`` say why something got ``None``.
    """

    kind: ClassVar[str] = ""

    def __init__(self, target: Target) -> None:
        self._target = target
        self._cache: dict[Key, float | None] = {}
        self._calls = 0
        self._param_counts: dict[str, int] = {}
        #: Why a statement could not be planned (last error per statement text).
        self.errors: dict[str, str] = {}
        #: Why a candidate could not be built (hypothetically or for real).
        self.index_errors: dict[Candidate, str] = {}
        #: Existing indexes each statement's plan uses with no new index (statement text →
        #: index names), so that an index the workload needs is never called unused.
        self.baseline_indexes: dict[str, frozenset[str]] = {}
        #: Why a statement is not planned at all (it reaches an untrusted function), or None.
        self._refusals: dict[str, str | None] = {}
        self._catalog_answers: Answers = {}

    @property
    def calls(self) -> int:
        """Statements planned so far (cache hits not counted)."""
        return self._calls

    def costs(self, requests: Sequence[CostRequest]) -> list[float | None]:
        """Total planner cost per request, in order; ``None`` where it cannot be planned."""
        pending: dict[frozenset[Candidate], dict[str, int]] = {}
        for r in requests:
            if (r.sql, r.indexes) not in self._cache:
                pending.setdefault(r.indexes, {}).setdefault(r.sql, r.params)
        if pending:
            started, calls = time.perf_counter(), self._calls
            self._evaluate(pending)
            log.info(
                "whatif.batch",
                kind=self.kind,
                index_sets=len(pending),
                planned=self._calls - calls,
                ms=round((time.perf_counter() - started) * 1000, 1),
            )
        return [self._cache[(r.sql, r.indexes)] for r in requests]

    def _evaluate(self, pending: dict[frozenset[Candidate], dict[str, int]]) -> None:
        raise NotImplementedError

    # -- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _name(prefix: str, depth: int = 0) -> str:
        """A fixed name per purpose (and nesting depth for build savepoints and indexes).

        Names are reused on purpose: every distinct utility text (PREPARE, SAVEPOINT, CREATE
        INDEX) becomes its own pg_stat_statements entry, and unique names would flood the
        target's statistics and evict its real workload.
        """
        return f"dbarchitect_{prefix}{depth}"

    def _fail(self, indexes: frozenset[Candidate], statements: Iterable[str], why: str) -> None:
        for text in statements:
            self._cache[(text, indexes)] = None
            self.errors[text] = why

    def _explain_parts(self, text: str, params: int) -> tuple[list[sql.Composable], str | None]:
        """Statements that plan ``text`` generically, and the prepared name to deallocate."""
        body = untrusted(single_statement(text))
        if not params and not _PLACEHOLDER.search(text):
            return [sql.SQL(Q_EXPLAIN) + body], None
        if self._target.server_version_num >= GENERIC_PLAN_VERSION:
            return [sql.SQL(Q_EXPLAIN_GENERIC) + body], None
        name = self._name("p")
        count = self._param_counts.get(text, params)
        args = (
            sql.SQL("({})").format(sql.SQL(", ").join([sql.NULL] * count)) if count else sql.SQL("")
        )
        ident = sql.Identifier(name)
        return [
            sql.SQL(Q_FORCE_GENERIC),
            sql.SQL(Q_PREPARE).format(name=ident) + body,
            sql.SQL(Q_EXPLAIN_EXECUTE).format(name=ident, args=args),
            sql.SQL(Q_DEALLOCATE).format(name=ident),
        ], name

    def _undo(self, savepoint: sql.Identifier) -> None:
        """Roll back to ``savepoint`` and drop it (an aborted subtransaction frees its xid)."""
        self._target.script(
            [
                sql.SQL(Q_ROLLBACK_TO).format(name=savepoint),
                sql.SQL(Q_RELEASE).format(name=savepoint),
            ]
        )

    def _deallocate(self, name: str) -> None:
        self._target.rows(sql.SQL(Q_DEALLOCATE).format(name=sql.Identifier(name)))

    def _true_param_count(self, name: str) -> int | None:
        found = self._target.rows(Q_PREPARED_PARAMS, {"name": name})
        return int(found[0]["params"]) if found else None

    def _plan(
        self, text: str, params: int, *, savepoint: bool, baseline: bool = False
    ) -> float | None:
        """Plan one statement (generic plan when it has ``$n``); None and ``errors`` on failure.

        ``savepoint``: an explicit transaction is open, so guard the EXPLAIN with one.
        """
        try:
            parts, prepared = self._explain_parts(text, params)
        except ValueError as exc:
            self.errors[text] = str(exc)
            return None
        if text not in self._refusals:
            self._refusals[text] = outside_effects(
                self._target, text, executes=False, answers=self._catalog_answers
            )
        if (refused := self._refusals[text]) is not None:
            self.errors[text] = f"not planned: {refused}"
            return None
        sp = sql.Identifier(self._name("s")) if savepoint else None
        if sp is not None:
            parts = [
                sql.SQL(Q_SAVEPOINT).format(name=sp),
                *parts,
                sql.SQL(Q_RELEASE).format(name=sp),
            ]
        self._calls += 1
        try:
            rows = self._target.script(parts)
        except TargetQueryError as exc:
            # No SQLSTATE: the driver failed (reading a plan too deep for JSON, say), either
            # before sending or after the server ran every part, RELEASE included.
            if sp is not None and exc.sqlstate is not None:
                self._undo(sp)
            if prepared is None:
                self.errors[text] = exc.message
                return None
            actual = self._true_param_count(prepared)  # None: PREPARE itself failed
            if actual is not None:
                self._deallocate(prepared)
            if actual is None or actual == self._param_counts.get(text, params):
                self.errors[text] = exc.message
                return None
            # The request miscounted the $n placeholders: trust the server and retry once.
            self._param_counts[text] = actual
            self._calls -= 1
            return self._plan(text, actual, savepoint=savepoint, baseline=baseline)
        if baseline:
            self.baseline_indexes[text] = _index_names(rows)
        return _total_cost(rows)


class HypoPGOracle(WhatIfOracle):
    """Costs with hypothetical indexes (HypoPG); works on the read-only session.

    HypoPG (1.3.1) applies a hypothetical index on a partitioned table to its partitions
    with the parent's column numbers, so the planner ignores it on every partition whose
    columns are numbered differently (attached with another column order, or made after a
    column was dropped from the parent). A candidate on a partitioned table is therefore
    made hypothetical on each of its leaf ``partitions`` instead (same keys, INCLUDE and
    WHERE, resolved by name), as a real ``CREATE INDEX`` on the parent would be.
    """

    kind: ClassVar[str] = "hypopg"

    def __init__(
        self, target: Target, *, partitions: Mapping[str, Sequence[str]] | None = None
    ) -> None:
        super().__init__(target)
        #: Leaf partitions per partitioned table (see :func:`leaf_partitions`).
        self.partitions: dict[str, tuple[str, ...]] = {
            parent: tuple(leaves) for parent, leaves in (partitions or {}).items()
        }
        found = target.rows(Q_HYPOPG_SCHEMA)
        if not found:
            raise MissingPrerequisite(
                f"HypoPG is not installed in database {target.database!r}: run "
                "CREATE EXTENSION hypopg; (package postgresql-<version>-hypopg)"
            )
        schema = str(found[0]["schema"])
        self._reset = sql.SQL(Q_HYPOPG_RESET).format(reset=sql.Identifier(schema, "hypopg_reset"))
        self._create = sql.SQL(Q_HYPOPG_CREATE).format(
            create=sql.Identifier(schema, "hypopg_create_index")
        )

    def _ddl(self, candidate: Candidate) -> list[str]:
        """``CREATE INDEX`` text for HypoPG: one per leaf partition of a partitioned table."""
        tables = self.partitions.get(candidate.table) or (candidate.table,)
        placed = [replace(candidate, table=t) for t in tables]
        return [
            single_statement(create_index_sql(c, index_name(c), concurrently=False)) for c in placed
        ]

    def _build(self, indexes: frozenset[Candidate]) -> str | None:
        """Make exactly ``indexes`` hypothetical; the reason when that is impossible."""
        self._target.rows(self._reset)
        if not indexes:
            return None
        members = sorted(indexes, key=Candidate.label)
        try:
            ddl = [text for c in members for text in self._ddl(c)]
            self._target.rows(self._create, {"ddl": ddl})
            return None
        except (TargetQueryError, ValueError):
            pass
        # Find the culprit(s) one at a time, so the reason names the candidate.
        self._target.rows(self._reset)
        failures: list[str] = []
        for c in members:
            try:
                self._target.rows(self._create, {"ddl": self._ddl(c)})
            except (TargetQueryError, ValueError) as exc:
                reason = exc.message if isinstance(exc, TargetQueryError) else str(exc)
                self.index_errors[c] = f"HypoPG cannot create {c.label()}: {reason}"
                failures.append(self.index_errors[c])
        return "; ".join(failures) or "HypoPG could not create the index set"

    def _evaluate(self, pending: dict[frozenset[Candidate], dict[str, int]]) -> None:
        try:
            for indexes, statements in pending.items():
                why = self._build(indexes)
                if why is not None:
                    self._fail(indexes, statements, why)
                    continue
                for text, params in statements.items():
                    self._cache[(text, indexes)] = self._plan(
                        text, params, savepoint=False, baseline=not indexes
                    )
        finally:
            if not self._target.closed:
                self._target.rows(self._reset)


class RolledBackBuildOracle(WhatIfOracle):
    """Costs with real ``CREATE INDEX`` inside ``BEGIN READ WRITE … ROLLBACK`` (no HypoPG).

    Index sets are visited in an order that shares builds: each index is built in its own
    savepoint, and moving to the next set only rolls back the indexes it does not contain.
    A transaction is rolled back and a new one started after ``max_transaction_s`` so the
    ShareLocks the builds hold (they block writes to those tables) are not held for long.
    EXPLAINs run with ``transaction_read_only`` switched back on.
    """

    kind: ClassVar[str] = "rolled-back-build"

    def __init__(
        self,
        target: Target,
        *,
        lock_timeout_ms: int = 1_000,
        build_timeout_ms: int = 60_000,
        max_transaction_s: float = 10.0,
    ) -> None:
        super().__init__(target)
        self.lock_timeout_ms = lock_timeout_ms
        self.build_timeout_ms = build_timeout_ms
        self.max_transaction_s = max_transaction_s

    def _evaluate(self, pending: dict[frozenset[Candidate], dict[str, int]]) -> None:
        counts = Counter(c for indexes in pending for c in indexes)
        rank = {c: i for i, c in enumerate(sorted(counts, key=lambda c: (-counts[c], c.label())))}
        order = sorted(pending, key=lambda s: sorted(rank[c] for c in s))
        while order:
            try:
                self._transaction(order, pending, rank)
            except TargetQueryError as exc:  # BEGIN READ WRITE refused (a standby, say)
                for indexes in order:
                    self._fail(indexes, pending[indexes], f"cannot open a build transaction: {exc}")
                order.clear()

    def _transaction(
        self,
        order: list[frozenset[Candidate]],
        pending: dict[frozenset[Candidate], dict[str, int]],
        rank: dict[Candidate, int],
    ) -> None:
        """Visit index sets from the front of ``order`` in one rolled-back transaction."""
        with self._target.read_write_transaction(
            lock_timeout_ms=self.lock_timeout_ms, statement_timeout_ms=self.build_timeout_ms
        ):
            started = time.monotonic()
            stack: list[tuple[Candidate, sql.Identifier]] = []
            while order:
                indexes = order.pop(0)
                why = self._build(sorted(indexes, key=rank.__getitem__), stack)
                if why is None:
                    self._explain_all(indexes, pending[indexes])
                else:
                    self._fail(indexes, pending[indexes], why)
                if time.monotonic() - started > self.max_transaction_s:
                    break  # release the builds' locks; the next transaction rebuilds

    def _build(
        self, members: list[Candidate], stack: list[tuple[Candidate, sql.Identifier]]
    ) -> str | None:
        """Make the built indexes exactly ``members``, reusing the common prefix of ``stack``."""
        keep = 0
        while keep < min(len(stack), len(members)) and stack[keep][0] == members[keep]:
            keep += 1
        if keep < len(stack):
            self._undo(stack[keep][1])
            del stack[keep:]
        for candidate in members[keep:]:
            depth = len(stack)
            sp = sql.Identifier(self._name("b", depth))
            why = self._build_one(candidate, sp, depth)
            if why is not None:
                self.index_errors[candidate] = why
                return why
            stack.append((candidate, sp))
        return None

    def _build_one(self, candidate: Candidate, sp: sql.Identifier, depth: int) -> str | None:
        """CREATE INDEX in savepoint ``sp``; the reason (and ``sp`` rolled back) on failure."""
        name = self._name("whatif_", depth)
        schema = candidate.table.partition(".")[0]
        try:
            ddl = untrusted(single_statement(create_index_sql(candidate, name, concurrently=False)))
        except ValueError as exc:
            return f"cannot build {candidate.label()}: {exc}"
        qualified = f"{quote_ident(schema)}.{quote_ident(name)}"
        try:
            rows = self._target.script(
                [
                    sql.SQL(Q_SAVEPOINT).format(name=sp),
                    ddl,
                    sql.SQL(Q_CHECK_XMIN).format(index=sql.Literal(qualified)),
                ]
            )
        except TargetQueryError as exc:
            self._undo(sp)
            if exc.lock_timeout:
                return (
                    f"lock timeout building {candidate.label()}: another session holds a "
                    f"conflicting lock on {candidate.table} (waited {self.lock_timeout_ms} ms)"
                )
            if exc.timed_out:
                return f"building {candidate.label()} took longer than {self.build_timeout_ms} ms"
            return f"cannot build {candidate.label()}: {exc.message}"
        if rows and rows[0]["indcheckxmin"]:
            self._undo(sp)
            return (
                f"{candidate.label()} would not be visible to the planner inside the building "
                f"transaction ({candidate.table} has recently updated rows, so the new index "
                "waits for older snapshots): VACUUM the table or install HypoPG"
            )
        return None

    def _explain_all(self, indexes: frozenset[Candidate], statements: dict[str, int]) -> None:
        """EXPLAIN each statement with writes forbidden again, then undo that switch."""
        guard = sql.Identifier(self._name("ro"))
        self._target.script([sql.SQL(Q_SAVEPOINT).format(name=guard), sql.SQL(Q_READ_ONLY)])
        try:
            for text, params in statements.items():
                self._cache[(text, indexes)] = self._plan(
                    text, params, savepoint=True, baseline=not indexes
                )
        finally:
            if not self._target.closed:
                self._undo(guard)


def make_oracle(target: Target, snapshot: Snapshot, *, allow_build: bool = True) -> WhatIfOracle:
    """HypoPG when the extension is installed, else real builds rolled back (``.kind`` says).

    ``allow_build=False`` (a production target whose config forbids builds) turns the
    fallback into :class:`MissingPrerequisite` naming the extension to install.
    """
    if snapshot.hypopg:
        return HypoPGOracle(target, partitions=leaf_partitions(snapshot))
    if not allow_build:
        hint = (
            "run CREATE EXTENSION hypopg;"
            if snapshot.hypopg_available
            else "install the postgresql-<version>-hypopg package, then CREATE EXTENSION hypopg;"
        )
        raise HypoPGMissing(
            f"what-if costing needs HypoPG on this target (builds are not allowed): {hint}"
        )
    return RolledBackBuildOracle(target)
