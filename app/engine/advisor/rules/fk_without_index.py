"""Foreign keys whose referencing columns lead no index: create one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from app.engine.advisor.rules.common import covers_foreign_key
from app.engine.ddl import create_index_sql, index_name
from app.engine.model import Candidate, IndexKey, Recommendation, RelKind

if TYPE_CHECKING:
    from app.engine.advisor.rules.config import RuleConfig
    from app.engine.model import ForeignKey, Snapshot, Table

__all__ = ["RULE_ID", "fk_without_index"]

RULE_ID = "fk_without_index"


def fk_without_index(
    snapshot: Snapshot, /, *, now: datetime, config: RuleConfig
) -> Iterator[Recommendation]:
    """Propose a B-tree on the referencing columns of each foreign key no index serves.

    A foreign key is served when some valid B-tree with no predicate has the FK's columns,
    in any order, as its leading keys (PgHero's and splinter's test). Referencing tables
    with fewer than ``config.fk_min_rows`` rows are skipped: a sequential scan of a small
    table is cheap. A foreign key on a partition that repeats one on its parent is left to
    the parent's.

    Args:
        snapshot: the target's catalog and counters.
        now: unused; part of the rule signature.
        config: thresholds.

    Returns:
        ``create_index`` recommendations ordered by table, then constraint name; one per
        distinct column list.
    """
    seen: set[Candidate] = set()
    for fk in sorted(snapshot.foreign_keys, key=lambda f: (f.table, f.name)):
        table = snapshot.table(fk.table)
        if table is None or _rows(snapshot, table) < config.fk_min_rows:
            continue
        if _inherited(snapshot, table, fk):
            continue
        if any(covers_foreign_key(i, fk) for i in snapshot.indexes_on(fk.table)):
            continue
        candidate = Candidate(fk.table, tuple(IndexKey(col) for col in fk.columns))
        if candidate in seen:
            continue
        seen.add(candidate)
        name = index_name(candidate, snapshot.names_in_schema_of(fk.table))
        partitioned = table.kind == RelKind.partitioned
        yield Recommendation(
            action="create_index",
            table=fk.table,
            columns=fk.columns,
            index_name=name,
            ddl=create_index_sql(candidate, name, concurrently=not partitioned),
            descending=(False,) * len(fk.columns),
            reasons=_reasons(snapshot, table, fk),
            rule=RULE_ID,
            extra={"rows": _rows(snapshot, table)},
        )


def _rows(snapshot: Snapshot, table: Table) -> float:
    """Row estimate; a partitioned parent counts its partitions' rows."""
    if table.kind != RelKind.partitioned or table.rows > 0:
        return table.rows
    return sum(t.rows for t in snapshot.tables if t.partition_of == table.qualified)


def _inherited(snapshot: Snapshot, table: Table, fk: ForeignKey) -> bool:
    """The FK is the copy PostgreSQL keeps on a partition of a parent's FK."""
    if table.partition_of is None:
        return False
    return any(
        parent.table == table.partition_of
        and parent.columns == fk.columns
        and parent.ref_table == fk.ref_table
        for parent in snapshot.foreign_keys
    )


def _reasons(snapshot: Snapshot, table: Table, fk: ForeignKey) -> tuple[str, ...]:
    cols, ref_cols = ", ".join(fk.columns), ", ".join(fk.ref_columns)
    rows = f"{_rows(snapshot, table):,.0f}"
    reasons = [
        f"foreign key {fk.name}: {fk.table} ({cols}) references {fk.ref_table} ({ref_cols}), "
        f"and no index on {fk.table} leads with {cols}",
        f"every DELETE on {fk.ref_table}, and every UPDATE of its key, looks up the "
        f"referencing rows in {fk.table} ({rows} rows); without an index each such row "
        f"costs a sequential scan of {fk.table}",
    ]
    ref = snapshot.table(fk.ref_table)
    if ref is not None and (ref.n_tup_del or ref.n_tup_upd):
        reasons.append(
            f"{fk.ref_table} has had {ref.n_tup_del} deletes and {ref.n_tup_upd} updates "
            "since its statistics were reset"
        )
    reasons.append(f"joins from {fk.ref_table} to {fk.table} on these columns can use it too")
    if table.kind == RelKind.partitioned:
        reasons.append(
            f"{fk.table} is partitioned: CREATE INDEX CONCURRENTLY does not work on it, so "
            "build the index per partition (CREATE INDEX ON ONLY, then ATTACH PARTITION) "
            "or accept a write-blocking lock during the build"
        )
    return tuple(reasons)
