"""The catalog snapshot: catalog rows of the target turned into ``app.engine.model`` values."""

from __future__ import annotations

import time

import structlog

from app.adapters.target_pg.catalog_sql import Q_FOREIGN_KEYS, Q_INDEXES, Q_SERVER, Q_TABLES
from app.adapters.target_pg.columns_sql import Q_COLUMNS
from app.adapters.target_pg.gate import Row, Session
from app.engine.model import (
    Column,
    ColumnStats,
    ForeignKey,
    Index,
    RelKind,
    Snapshot,
    Table,
)

log = structlog.get_logger(__name__)

_RELKINDS: dict[str, RelKind] = {
    "r": RelKind.table,
    "p": RelKind.partitioned,
    "v": RelKind.view,
    "m": RelKind.matview,
    "f": RelKind.foreign,
}

Columns = dict[tuple[str, str], tuple[Column, ...]]


def read_snapshot(session: Session) -> Snapshot:
    """Catalog, statistics and activity counters of the current database, in five queries."""
    started = time.perf_counter()
    server = session.one(Q_SERVER)
    columns = _columns(session.rows(Q_COLUMNS))
    tables = tuple(_table(r, columns) for r in session.rows(Q_TABLES))
    indexes = tuple(_index(r) for r in session.rows(Q_INDEXES))
    foreign_keys = tuple(_foreign_key(r) for r in session.rows(Q_FOREIGN_KEYS))
    snapshot = Snapshot(
        server_version=str(server["server_version"]).split()[0],
        server_version_num=int(server["server_version_num"]),
        database=str(server["database"]),
        taken_at=server["taken_at"],
        tables=tables,
        indexes=indexes,
        foreign_keys=foreign_keys,
        hypopg=bool(server["hypopg_installed"]),
        hypopg_available=bool(server["hypopg_available"]),
        stats_reset=server["stats_reset"],
        search_path=tuple(server["search_path"] or ()),
    )
    log.info(
        "target.snapshot",
        tables=len(tables),
        indexes=len(indexes),
        foreign_keys=len(foreign_keys),
        ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return snapshot


def _columns(rows: list[Row]) -> Columns:
    """Columns per ``(schema, table)`` in attnum order (the query leaves them unsorted)."""
    numbered: dict[tuple[str, str], list[tuple[int, Column]]] = {}
    for r in rows:
        stats = None
        if r["has_stats"]:
            stats = ColumnStats(
                null_frac=float(r["null_frac"] or 0.0),
                n_distinct=float(r["n_distinct"] or 0.0),
                avg_width=int(r["avg_width"] or 0),
                most_common_vals=tuple(r["most_common_vals"] or ()),
                most_common_freqs=tuple(float(f) for f in r["most_common_freqs"] or ()),
                histogram_bounds=tuple(r["histogram_bounds"] or ()),
                correlation=None if r["correlation"] is None else float(r["correlation"]),
            )
        column = Column(
            name=r["name"],
            type=r["type"],
            not_null=bool(r["not_null"]),
            btree=bool(r["btree"]),
            stats=stats,
        )
        numbered.setdefault((r["schema"], r["table_name"]), []).append((r["attnum"], column))
    return {
        table: tuple(column for _, column in sorted(pairs, key=lambda pair: pair[0]))
        for table, pairs in numbered.items()
    }


def _table(r: Row, columns: Columns) -> Table:
    return Table(
        schema=r["schema"],
        name=r["name"],
        kind=_RELKINDS[r["kind"]],
        columns=columns.get((r["schema"], r["name"]), ()),
        rows=float(r["rows"]),
        size_bytes=int(r["size_bytes"]),
        total_bytes=int(r["total_bytes"]),
        seq_scan=int(r["seq_scan"]),
        idx_scan=int(r["idx_scan"]),
        n_tup_ins=int(r["n_tup_ins"]),
        n_tup_upd=int(r["n_tup_upd"]),
        n_tup_del=int(r["n_tup_del"]),
        n_tup_hot_upd=int(r["n_tup_hot_upd"]),
        partition_of=".".join(r["parent"]) if r["parent"] else None,
        view_sql=r["view_sql"],
        last_analyze=r["last_analyze"],
    )


def _index(r: Row) -> Index:
    return Index(
        schema=r["schema"],
        name=r["name"],
        table=f"{r['table_schema']}.{r['table_name']}",
        columns=tuple(r["columns"]),
        descending=tuple(r["descending"]),
        include=tuple(r["include"]),
        where=r["predicate"],
        using=r["using"],
        unique=bool(r["is_unique"]),
        primary=bool(r["is_primary"]),
        constraint=r["constraint_name"],
        valid=bool(r["valid"]),
        size_bytes=int(r["size_bytes"]),
        scans=int(r["scans"]),
        definition=r["definition"],
    )


def _foreign_key(r: Row) -> ForeignKey:
    return ForeignKey(
        name=r["name"],
        table=f"{r['schema']}.{r['table_name']}",
        columns=tuple(r["columns"]),
        ref_table=f"{r['ref_schema']}.{r['ref_table']}",
        ref_columns=tuple(r["ref_columns"]),
    )
