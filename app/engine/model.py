"""Immutable values the engine reasons about: catalog snapshot, workload, scans, candidates."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class RelKind(StrEnum):
    """The kinds of relation a query can name (pg_class.relkind, spelled out)."""

    table = "table"
    partitioned = "partitioned"
    view = "view"
    matview = "matview"
    foreign = "foreign"


@dataclass(frozen=True, slots=True)
class ColumnStats:
    """What pg_stats says about one column (values kept as their text form)."""

    null_frac: float = 0.0
    #: pg_stats.n_distinct: positive = count, negative = fraction of rows.
    n_distinct: float = 0.0
    avg_width: int = 8
    most_common_vals: tuple[str, ...] = ()
    most_common_freqs: tuple[float, ...] = ()
    histogram_bounds: tuple[str, ...] = ()
    correlation: float | None = None


@dataclass(frozen=True, slots=True)
class Column:
    """A column of a table, view or materialized view."""

    name: str
    type: str
    not_null: bool = False
    #: The type has a default B-tree operator class (json, point, xml … do not).
    btree: bool = True
    stats: ColumnStats | None = None


@dataclass(frozen=True, slots=True)
class Table:
    """A relation and its activity counters (pg_stat_user_tables)."""

    schema: str
    name: str
    kind: RelKind = RelKind.table
    columns: tuple[Column, ...] = ()
    rows: float = 0.0
    size_bytes: int = 0
    seq_scan: int = 0
    idx_scan: int = 0
    n_tup_ins: int = 0
    n_tup_upd: int = 0
    n_tup_del: int = 0
    n_tup_hot_upd: int = 0
    #: Qualified name of the partitioned parent, for a partition.
    partition_of: str | None = None
    #: SELECT text behind a view or materialized view.
    view_sql: str | None = None
    last_analyze: datetime | None = None
    #: Heap + indexes + TOAST (pg_total_relation_size); ``size_bytes`` is the heap alone.
    total_bytes: int = 0

    @property
    def qualified(self) -> str:
        """``schema.name``, unquoted (the key used everywhere in the engine)."""
        return f"{self.schema}.{self.name}"

    def column(self, name: str) -> Column | None:
        """The column called ``name``, if the table has one."""
        for col in self.columns:
            if col.name == name:
                return col
        return None


@dataclass(frozen=True, slots=True)
class Index:
    """An existing index as the catalog describes it."""

    schema: str
    name: str
    table: str  # qualified table name
    #: Key columns in order; an expression key is its SQL text (pg_get_indexdef).
    columns: tuple[str, ...]
    #: Per key: sort descending?
    descending: tuple[bool, ...] = ()
    include: tuple[str, ...] = ()
    where: str | None = None
    using: str = "btree"
    unique: bool = False
    primary: bool = False
    #: Name of the constraint (PK, UNIQUE, EXCLUDE) the index backs, if any.
    constraint: str | None = None
    valid: bool = True
    size_bytes: int = 0
    scans: int = 0
    definition: str = ""

    @property
    def qualified(self) -> str:
        """``schema.name`` of the index."""
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True, slots=True)
class ForeignKey:
    """A foreign-key constraint, referencing side first."""

    name: str
    table: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything read from the target's catalog and statistics at one moment."""

    server_version: str
    server_version_num: int
    database: str
    taken_at: datetime
    tables: tuple[Table, ...] = ()
    indexes: tuple[Index, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    hypopg: bool = False
    #: When the target's activity counters were last reset (pg_stat_database.stats_reset).
    stats_reset: datetime | None = None
    search_path: tuple[str, ...] = ("public",)
    #: HypoPG could be installed (pg_available_extensions) though ``hypopg`` says it is not.
    hypopg_available: bool = False

    def table(self, qualified: str) -> Table | None:
        """The table with that ``schema.name``."""
        for t in self.tables:
            if t.qualified == qualified:
                return t
        return None

    def names_in_schema_of(self, qualified: str) -> frozenset[str]:
        """Names of the tables and indexes in the schema of ``qualified`` (one namespace)."""
        schema = qualified.partition(".")[0]
        return frozenset(
            [t.name for t in self.tables if t.schema == schema]
            + [i.name for i in self.indexes if i.schema == schema]
        )

    def indexes_on(self, qualified: str) -> tuple[Index, ...]:
        """Indexes of one table."""
        return tuple(i for i in self.indexes if i.table == qualified)


class QuerySource(StrEnum):
    """Where a workload statement came from."""

    pg_stat_statements = "pg_stat_statements"
    file = "file"
    #: Seen running in pg_stat_activity for longer than the threshold.
    activity = "activity"
    #: Cancelled by statement_timeout, from a supplied log.
    timeout_log = "timeout log"


@dataclass(frozen=True, slots=True)
class Query:
    """One workload statement with its weight."""

    text: str
    calls: int = 1
    total_ms: float = 0.0
    rows: int = 0
    queryid: str | None = None
    source: QuerySource = QuerySource.file


class Op(StrEnum):
    """How a predicate restricts a column; the order of index keys follows it."""

    eq = "eq"
    in_ = "in"
    is_null = "is_null"
    range = "range"
    like_prefix = "like_prefix"


@dataclass(frozen=True, slots=True)
class Predicate:
    """``key op value`` on one table; ``key`` is a column name or an expression's SQL."""

    key: str
    op: Op
    #: SQL of a constant right-hand side (literal, not a ``$n``), for partial indexes.
    constant: str | None = None
    expression: bool = False


@dataclass(frozen=True, slots=True)
class SortKey:
    """One ORDER BY key that maps to a column of the scanned table."""

    key: str
    descending: bool = False
    nulls_first: bool | None = None


@dataclass(frozen=True, slots=True)
class Scan:
    """What one statement asks of one base table."""

    table: str
    predicates: tuple[Predicate, ...] = ()
    join_keys: tuple[str, ...] = ()
    order_by: tuple[SortKey, ...] = ()
    group_by: tuple[str, ...] = ()
    limit: bool = False
    #: Columns the statement reads from the table (for covering indexes).
    columns: tuple[str, ...] = ()
    #: The statement writes this table (UPDATE/DELETE target, INSERT target).
    write: bool = False
    #: Columns an UPDATE assigns (a new index on one of them costs HOT updates).
    set_columns: tuple[str, ...] = ()


class StatementKind(StrEnum):
    """The kind of top-level statement."""

    select = "select"
    insert = "insert"
    update = "update"
    delete = "delete"


@dataclass(frozen=True, slots=True)
class Analyzed:
    """A workload statement after parsing: its scans and the SQL to plan it with."""

    query: Query
    kind: StatementKind
    scans: tuple[Scan, ...]
    #: Text to hand to EXPLAIN (repaired; still may hold ``$n``).
    explain_sql: str
    params: int = 0


@dataclass(frozen=True, slots=True)
class Skipped:
    """A workload statement the engine did not analyse, and why."""

    query: Query
    reason: str


@dataclass(frozen=True, slots=True)
class IndexKey:
    """One key of a proposed index: a column (or expression SQL) and its direction."""

    key: str
    descending: bool = False
    expression: bool = False


@dataclass(frozen=True, slots=True)
class Candidate:
    """A proposed B-tree index; hashable, so it can key caches and sets."""

    table: str
    keys: tuple[IndexKey, ...]
    include: tuple[str, ...] = ()
    where: str | None = None
    using: str = "btree"

    @property
    def columns(self) -> tuple[str, ...]:
        """Key columns (or expression SQL) in order."""
        return tuple(k.key for k in self.keys)

    def label(self) -> str:
        """Human form, e.g. ``public.posts (user_id, created_at DESC) WHERE …``."""
        keys = ", ".join(k.key + (" DESC" if k.descending else "") for k in self.keys)
        text = f"{self.table} ({keys})"
        if self.include:
            text += f" INCLUDE ({', '.join(self.include)})"
        if self.where:
            text += f" WHERE {self.where}"
        return text


@dataclass(frozen=True, slots=True)
class Rejection:
    """A candidate or existing index that did not make it, with the reason."""

    candidate: str
    reason: str
    #: For a candidate existing indexes already serve: each of them (``schema.name``), the
    #: one the reason names first (``report.settle_coverage`` rewords it when one is dropped).
    covered_by: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class QueryEffect:
    """Estimated cost of one statement without and with a recommendation."""

    query: Query
    cost_before: float
    cost_after: float


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One action the advisor proposes, with the evidence behind it."""

    action: str  # create_index | drop_index | reindex
    table: str
    columns: tuple[str, ...]
    index_name: str
    ddl: str
    include: tuple[str, ...] = ()
    where: str | None = None
    using: str = "btree"
    descending: tuple[bool, ...] = ()
    effects: tuple[QueryEffect, ...] = ()
    reasons: tuple[str, ...] = ()
    rule: str = "workload"
    size_bytes: int = 0
    #: For drops: the index's definition, so a downgrade can recreate it exactly.
    definition: str | None = None
    extra: dict[str, float] = field(default_factory=dict, hash=False, compare=False)
    #: For the drop of an exact duplicate: the name of its twin, the index that stays.
    twin: str | None = None

    def keys_text(self) -> str:
        """The keys as the DDL spells them, e.g. ``user_id, blog_id DESC``."""
        return ", ".join(
            key + (" DESC" if i < len(self.descending) and self.descending[i] else "")
            for i, key in enumerate(self.columns)
        )


@dataclass(frozen=True, slots=True)
class DiskBudget:
    """Bytes of new indexes one audit may propose (None: no limit) and the rule that set it."""

    bytes: int | None
    rule: str


def recommendation_id(rec: Recommendation) -> str:
    """Stable id from what the recommendation changes, e.g. ``create_index:3f9a1c2b``."""
    basis = "|".join(
        [
            rec.action,
            rec.table,
            ",".join(rec.columns),
            ",".join(rec.include),
            rec.where or "",
            rec.using,
            ",".join("d" if d else "a" for d in rec.descending),
            rec.index_name if rec.action != "create_index" else "",
        ]
    )
    return f"{rec.action}:{hashlib.sha256(basis.encode()).hexdigest()[:8]}"
