"""How the audit scales: time and what-if calls for 100, 1,000 and 5,000 distinct statements.

Starts its own throwaway servers (``app.adapters.pgserver``; never the machine's :5432):
Debian PostgreSQL 15 + HypoPG (the main path) and embedded PostgreSQL 18, where what-if
costs come from real index builds in rolled-back transactions. On each it loads the same
generated schema — ``--tables`` tables (default 56) of 10k–200k rows, narrow to wide, skewed
columns, a few foreign keys, existing indexes including duplicates — and ANALYZEs it.

Workload path: the product's default one, pg_stat_statements, filled for real. For each size
the generator's statements (seeded, so every run audits the same ones) are executed
``calls`` times each, so pg_stat_statements holds exactly those distinct statements with
those call counts. To keep that cheap they run against empty copies of the tables in a
schema ``rec`` first on the search_path; the schema is dropped before the audit, so the
recorded text names the loaded tables (and a few "legacy" tables that no longer exist).
Most statements are sent with ``$n`` placeholders (bound to NULL, any type accepts it);
about one in eight is sent with literal values, and PostgreSQL's own normalisation turns
those into ``$n`` (``timestamptz '…'`` becomes ``timestamptz $1``, which the engine repairs).
Catalog queries are part of the generated statements; the workload reader filters them, so
"audited" is lower than "statements".

Each audit calls ``app.flows.audit_target.audit_target`` (in a forked child, so one that
overruns ``--limit`` / ``--pg18-limit`` can be stopped and reported with how far it got) with
a progress callback that timestamps the phases. The what-if oracle is wrapped for the run to
time what is spent inside it: "planner" is the oracle's time (round trips, HypoPG or index
builds, EXPLAIN), "engine" the rest of the audit.

Run ``python -m bench.audit_scale`` from the repository root: about six minutes on 2 cores,
half of it the PG 18 1,000-statement audit (``--skip-pg18`` leaves that out).
``--profile 1000,5000`` prints a cProfile summary of those PG 15 audits.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.metadata
import io
import math
import multiprocessing
import os
import platform
import pstats
import random
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from unittest.mock import patch

import psycopg
from psycopg import sql

import app.flows.audit_target as audit_flow
from app.adapters.pgserver import DebianPostgres, EmbeddedPostgres, LocalPostgres
from app.adapters.target_pg import Target
from app.adapters.whatif import WhatIfOracle, make_oracle
from app.engine.advisor.whatif import CostRequest
from app.engine.model import Snapshot
from app.engine.report import Report
from app.flows.audit_target import WorkloadSpec, audit_target
from app.log import configure_logging

SEED = 20_260_101
DATABASE = "scale"
RECORD_SCHEMA = "rec"
#: Tables that exist only while the workload is recorded: statements on them are "dropped".
LEGACY_TABLES = ("legacy_orders", "legacy_import_rows", "tmp_user_merge")
SERVER_SETTINGS = {
    "pg_stat_statements.max": "20000",
    "shared_buffers": "512MB",
    "max_wal_size": "4GB",
    "autovacuum": "off",  # timings should not depend on when autovacuum wakes up
}
MIN_ROWS, MAX_ROWS = 10_000, 200_000

TABLE_NAMES = (
    *("users", "orgs", "teams", "accounts", "plans", "subscriptions", "projects", "tasks"),
    *("comments", "products", "categories", "suppliers", "warehouses", "inventory", "orders"),
    *("order_items", "carts", "cart_items", "coupons", "invoices", "payments", "refunds"),
    *("shipments", "addresses", "sessions", "events", "page_views", "clicks", "notifications"),
    *("threads", "messages", "attachments", "audit_log", "api_keys", "webhooks", "deliveries"),
    *("reviews", "ratings", "tags", "taggings", "purchase_orders", "tickets", "ticket_replies"),
    *("customers", "contacts", "leads", "deals", "activities", "documents", "versions", "jobs"),
    *("job_runs", "metrics_daily", "feature_flags", "experiments", "assignments"),
)

# ---------------------------------------------------------------------------------------------
# Schema
# ---------------------------------------------------------------------------------------------


def _u(salt: int) -> str:
    """SQL for a deterministic uniform value in [0, 1) per row ``g``."""
    return f"((hashint4(g # {salt}) & 2147483647)::float8 / 2147483648.0)"


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """A generated column: its type, the SQL that fills it from row number ``g``, its role."""

    name: str
    type: str
    expr: str
    #: How statements use it: eq, range, null, text, email, none.
    role: str
    not_null: bool = False
    parent: str | None = None


@dataclass(frozen=True, slots=True)
class TableSpec:
    """A generated table: ``id bigint`` primary key plus ``columns``."""

    name: str
    rows: int
    columns: tuple[ColumnSpec, ...]
    #: Existing secondary indexes as column tuples (duplicates on purpose).
    indexes: tuple[tuple[str, ...], ...] = ()
    #: Foreign-key columns declared as constraints.
    declared_fks: tuple[str, ...] = ()

    def by_role(self, *roles: str) -> list[ColumnSpec]:
        """Columns with one of ``roles``, in table order."""
        return [c for c in self.columns if c.role in roles]

    @property
    def fks(self) -> list[ColumnSpec]:
        """Columns referencing another table's ``id``."""
        return [c for c in self.columns if c.parent]


def _singular(name: str) -> str:
    if name.endswith("ies"):
        return name[:-3] + "y"
    if name.endswith(("sses", "ches", "shes", "xes")):
        return name[:-2]
    return name[:-1] if name.endswith("s") else name


def _column_pool(salt: int) -> list[ColumnSpec]:
    """Every non-key column kind a table may draw from, skewed where real data is."""
    u = _u(salt)
    status = (
        f"CASE WHEN {u} < 0.80 THEN 'active' WHEN {u} < 0.94 THEN 'archived' "
        f"WHEN {u} < 0.99 THEN 'pending' ELSE 'failed' END"
    )
    return [
        ColumnSpec("status", "text", status, "eq", not_null=True),
        ColumnSpec("category", "smallint", f"floor(20 * power({u}, 3))::smallint", "eq"),
        ColumnSpec("region", "text", f"'r' || (hashint4(g # {salt + 1}) & 63)", "eq"),
        ColumnSpec("is_flagged", "boolean", f"{u} < 0.05", "eq", not_null=True),
        ColumnSpec("code", "varchar(16)", f"upper(substr(md5((g # {salt})::text), 1, 10))", "eq"),
        ColumnSpec(
            "created_at",
            "timestamptz",
            "timestamptz '2024-01-01' + g * interval '37 seconds'",
            "range",
            not_null=True,
        ),
        ColumnSpec(
            "updated_at",
            "timestamptz",
            f"timestamptz '2024-01-01' + {u} * interval '400 days'",
            "range",
        ),
        ColumnSpec(
            "deleted_at",
            "timestamptz",
            f"CASE WHEN {u} < 0.04 THEN timestamptz '2025-01-01' + g * interval '1 minute' END",
            "null",
        ),
        ColumnSpec("amount", "numeric(12,2)", f"round(({u} * 10000)::numeric, 2)", "range"),
        ColumnSpec("score", "double precision", f"power({u}, 2) * 100", "range"),
        ColumnSpec("quantity", "integer", f"1 + (hashint4(g # {salt + 2}) & 127)", "range"),
        ColumnSpec("name", "text", f"initcap(substr(md5((g # {salt + 3})::text), 1, 12))", "text"),
        ColumnSpec("email", "text", f"'user' || g || '.{salt}@example.com'", "email"),
        ColumnSpec("external_ref", "uuid", f"md5(g::text || '{salt}')::uuid", "eq"),
        ColumnSpec(
            "notes",
            "text",
            f"CASE WHEN {u} < 0.5 THEN repeat(md5(g::text), 3) END",
            "none",
        ),
        ColumnSpec(
            "payload",
            "jsonb",
            "jsonb_build_object('k', g % 100, 'v', substr(md5(g::text), 1, 8))",
            "none",
        ),
    ]


def make_schema(tables: int, rng: random.Random) -> list[TableSpec]:
    """``tables`` tables of 10k–200k rows (log-uniform), each with 1–3 parents after the first."""
    if tables > len(TABLE_NAMES):
        names = [*TABLE_NAMES, *(f"extra_{i}" for i in range(tables - len(TABLE_NAMES)))]
    else:
        names = list(TABLE_NAMES[:tables])
    specs: list[TableSpec] = []
    for i, name in enumerate(names):
        rows = int(math.exp(rng.uniform(math.log(MIN_ROWS), math.log(MAX_ROWS))))
        salt = 1000 + 7 * i
        pool = _column_pool(salt)
        width = rng.choice((3, 4, 6, 8, 10, 13))
        picked = [pool[0], pool[5], *rng.sample(pool[1:5] + pool[6:], width - 2)]
        cols = sorted(picked, key=pool.index)
        parents = rng.sample(specs, min(len(specs), rng.choice((0, 1, 1, 2, 2, 3)))) if i else []
        fks = []
        for p, parent in enumerate(parents):
            skew = rng.random() < 0.4
            u = _u(salt + 11 + p)
            expr = (
                f"1 + floor({parent.rows} * power({u}, 4))::int"
                if skew
                else f"1 + (hashint4(g # {salt + 11 + p}) & 2147483647) % {parent.rows}"
            )
            fks.append(
                ColumnSpec(
                    f"{_singular(parent.name)}_id",
                    "bigint",
                    expr,
                    "eq",
                    not_null=True,
                    parent=parent.name,
                )
            )
        metrics = [
            ColumnSpec(f"metric_{m}", "integer", f"hashint4(g # {salt + 20 + m}) & 65535", "range")
            for m in range(rng.choice((0, 0, 2, 5)))
        ]
        columns = (*fks, *cols, *metrics)
        specs.append(TableSpec(name, rows, columns))
    return [_with_indexes(s, rng) for s in specs]


def _with_indexes(spec: TableSpec, rng: random.Random) -> TableSpec:
    """Existing indexes: some FK indexes, a unique email, composites, duplicates, FK constraints."""
    indexes: list[tuple[str, ...]] = []
    declared: list[str] = []
    for fk in spec.fks:
        if rng.random() < 0.45:
            indexes.append((fk.name,))
        if rng.random() < 0.35:
            declared.append(fk.name)
    names = {c.name for c in spec.columns}
    if "email" in names:
        indexes.append(("email",))
    if rng.random() < 0.2:
        indexes.append(("status", "created_at"))
    if indexes and rng.random() < 0.15:
        indexes.append(indexes[0])  # an exact duplicate
    if "status" in names and rng.random() < 0.1:
        indexes.append(("status",))  # prefix-covered when (status, created_at) exists
    return TableSpec(spec.name, spec.rows, spec.columns, tuple(indexes), tuple(declared))


def _create_table(conn: psycopg.Connection[Any], spec: TableSpec) -> None:
    ident = sql.Identifier(spec.name)
    defs: list[sql.Composable] = [sql.SQL("id bigint PRIMARY KEY")]
    for c in spec.columns:
        null = sql.SQL(" NOT NULL") if c.not_null else sql.SQL("")
        defs.append(sql.SQL("{} {}{}").format(sql.Identifier(c.name), sql.SQL(c.type), null))
    conn.execute(sql.SQL("CREATE TABLE {} ({})").format(ident, sql.SQL(", ").join(defs)))
    exprs = sql.SQL(", ").join(sql.SQL(c.expr) for c in spec.columns)
    conn.execute(
        sql.SQL("INSERT INTO {} SELECT g, {} FROM generate_series(1, {}) AS g").format(
            ident, exprs, sql.Literal(spec.rows)
        )
    )
    for n, cols in enumerate(spec.indexes):
        unique = (
            sql.SQL("UNIQUE ") if cols == ("email",) and n == spec.indexes.index(cols) else None
        )
        conn.execute(
            sql.SQL("CREATE {}INDEX {} ON {} ({})").format(
                unique or sql.SQL(""),
                sql.Identifier(f"{spec.name}_{'_'.join(cols)}_{n}_idx"),
                ident,
                sql.SQL(", ").join(map(sql.Identifier, cols)),
            )
        )


def load_schema(dsn: str, specs: Sequence[TableSpec]) -> None:
    """Create and fill the tables (two sessions at a time), then FKs, VACUUM ANALYZE."""

    def one(spec: TableSpec) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            _create_table(conn, spec)

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(one, specs))
    with psycopg.connect(dsn, autocommit=True) as conn:
        for spec in specs:
            for name in spec.declared_fks:
                parent = next(str(c.parent) for c in spec.columns if c.name == name)
                conn.execute(
                    sql.SQL("ALTER TABLE {} ADD FOREIGN KEY ({}) REFERENCES {} (id)").format(
                        sql.Identifier(spec.name), sql.Identifier(name), sql.Identifier(parent)
                    )
                )
        conn.execute("VACUUM ANALYZE")


# ---------------------------------------------------------------------------------------------
# Workload
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Statement:
    """One generated statement as sent to the server, and how often."""

    text: str
    params: int
    calls: int
    #: What the statement exercises: select, join, write, unparseable, catalog, legacy.
    family: str


@dataclass(slots=True)
class _Sql:
    """A statement under construction: slots are rendered as ``$n`` or as literal values."""

    literal: bool
    params: int = 0

    def slot(self, value: str) -> str:
        if self.literal:
            return value
        self.params += 1
        return f"${self.params}"


_LITERALS = {
    "status": "'pending'",
    "category": "3",
    "region": "'r7'",
    "is_flagged": "true",
    "code": "'A1B2C3D4E5'",
    "created_at": "timestamptz '2024-06-01 00:00:00+00'",
    "updated_at": "timestamptz '2024-09-01 00:00:00+00'",
    "deleted_at": "timestamptz '2025-02-01 00:00:00+00'",
    "payload": "'{\"k\": 1}'",
    "amount": "250.00",
    "score": "42.5",
    "quantity": "17",
    "name": "'Ab12%'",
    "email": "'user42@example.com'",
    "external_ref": "'0b9e3f0c-6d2a-4c59-9a57-2c1bb1e9d7a1'",
}


def _literal(col: ColumnSpec) -> str:
    if col.parent or col.name == "id":
        return "1234"
    if col.name.startswith("metric_"):
        return "500"
    return _LITERALS.get(col.name, "'x'")


def _aliases(names: Sequence[str]) -> dict[str, str]:
    """A short alias per table (its initials), unique in the schema.

    PostgreSQL 18's pg_stat_statements tells relations apart by their alias in a query, so
    ``FROM a c JOIN b p`` and ``FROM x c JOIN y p`` can count as one statement; unique aliases
    keep the generated statements distinct there too.
    """
    out: dict[str, str] = {}
    for name in names:
        initials = "".join(word[0] for word in name.split("_"))
        alias, n = initials, 1
        while alias in out.values():
            n += 1
            alias = f"{initials}{n}"
        out[name] = alias
    return out


class WorkloadGenerator:
    """Seeded generator of distinct statements over a schema, in pg_stat_statements form.

    Hot tables and hot columns are drawn from skewed distributions, projections vary the way
    ORMs vary them, so many distinct statements share predicates (as real workloads do).
    """

    def __init__(self, specs: Sequence[TableSpec], rng: random.Random) -> None:
        self.specs = list(specs)
        self.rng = rng
        self.by_name = {s.name: s for s in specs}
        self.alias = _aliases([s.name for s in specs])
        # Zipf-like popularity of tables.
        order = list(range(len(specs)))
        rng.shuffle(order)
        self.table_weights = [1.0 / (1 + order[i]) ** 0.8 for i in range(len(specs))]
        self.shapes: list[tuple[Callable[[_Sql], str | None], float]] = [
            (self._point, 14),
            (self._eq2, 8),
            (self._in_list, 5),
            (self._range, 6),
            (self._eq_range, 8),
            (self._top_n, 9),
            (self._latest, 3),
            (self._aggregate, 4),
            (self._count_live, 3),
            (self._lookup_text, 3),
            (self._join2, 10),
            (self._join3, 4),
            (self._semi_join, 3),
            (self._update, 5),
            (self._delete, 2),
            (self._insert, 3),
            (self._unparseable, 1),
            (self._catalog, 2),
            (self._legacy, 1),
        ]

    def generate(self, count: int) -> list[Statement]:
        """``count`` statements, distinct in pg_stat_statements' sense (their normal form)."""
        out: list[Statement] = []
        seen: set[str] = set()
        shapes, weights = zip(*self.shapes, strict=True)
        attempts = 0
        while len(out) < count:
            attempts += 1
            if attempts > count * 200:
                raise RuntimeError(f"could only generate {len(out)} distinct statements")
            shape = self.rng.choices(shapes, weights)[0]
            literal = self.rng.random() < 0.125
            built = _Sql(literal)
            text = shape(built)
            if text is None:
                continue
            key = _normal_form(text)
            if key in seen:
                continue
            seen.add(key)
            family = shape.__name__.lstrip("_")
            calls = min(5000, int(self.rng.paretovariate(1.1)))
            out.append(Statement(text, built.params, calls, family))
        return out

    # -- helpers ------------------------------------------------------------------------------

    def _table(self) -> TableSpec:
        return self.rng.choices(self.specs, self.table_weights)[0]

    def _hot(self, cols: Sequence[ColumnSpec]) -> ColumnSpec:
        """Earlier columns are hotter (FKs and status come first)."""
        return self.rng.choices(list(cols), [1.0 / (1 + i) for i in range(len(cols))])[0]

    def _projection(self, t: TableSpec, alias: str = "") -> str:
        prefix = f"{alias}." if alias else ""
        roll = self.rng.random()
        if roll < 0.2:
            return f"{prefix}*"
        names = ["id", *(c.name for c in t.columns)]
        width = self.rng.randint(1, min(6, len(names)))
        if width == len(names):
            return f"{prefix}*"  # the same statement as far as pg_stat_statements can tell
        picked = sorted(self.rng.sample(names, width), key=names.index)
        return ", ".join(prefix + n for n in picked)

    def _limit(self, s: _Sql) -> str:
        return f" LIMIT {s.slot(str(self.rng.choice((1, 10, 20, 50, 100))))}"

    # -- shapes -------------------------------------------------------------------------------

    def _point(self, s: _Sql) -> str | None:
        t = self._table()
        col = self._hot(t.by_role("eq", "email"))
        tail = self._limit(s) if self.rng.random() < 0.3 else ""
        where = f"{col.name} = {s.slot(_literal(col))}"
        return f"SELECT {self._projection(t)} FROM {t.name} WHERE {where}{tail}"

    def _eq2(self, s: _Sql) -> str | None:
        t = self._table()
        eqs = t.by_role("eq")
        if len(eqs) < 2:
            return None
        a, b = self._hot(eqs), self._hot(eqs)
        if a == b:
            return None
        where = f"{a.name} = {s.slot(_literal(a))} AND {b.name} = {s.slot(_literal(b))}"
        return f"SELECT {self._projection(t)} FROM {t.name} WHERE {where}"

    def _in_list(self, s: _Sql) -> str | None:
        t = self._table()
        col = self._hot([c for c in t.by_role("eq") if c.type != "boolean"])
        # One list length per column, so PG18's IN-list squashing merges nothing.
        n = 2 + len(col.name) % 4
        items = ", ".join(s.slot(_literal(col)) for _ in range(n))
        return f"SELECT {self._projection(t)} FROM {t.name} WHERE {col.name} IN ({items})"

    def _range(self, s: _Sql) -> str | None:
        t = self._table()
        col = self._hot(t.by_role("range"))
        lo, hi = s.slot(_literal(col)), s.slot(_literal(col))
        if self.rng.random() < 0.5:
            where = f"{col.name} >= {lo} AND {col.name} < {hi}"
        else:
            where = f"{col.name} BETWEEN {lo} AND {hi}"
        return f"SELECT {self._projection(t)} FROM {t.name} WHERE {where}"

    def _eq_range(self, s: _Sql) -> str | None:
        t = self._table()
        eq, rg = self._hot(t.by_role("eq")), self._hot(t.by_role("range"))
        where = f"{eq.name} = {s.slot(_literal(eq))} AND {rg.name} > {s.slot(_literal(rg))}"
        return f"SELECT {self._projection(t)} FROM {t.name} WHERE {where}"

    def _top_n(self, s: _Sql) -> str | None:
        t = self._table()
        eq, rg = self._hot(t.by_role("eq")), self._hot(t.by_role("range"))
        direction = self.rng.choice((" DESC", "", " DESC"))
        where = f"{eq.name} = {s.slot(_literal(eq))}"
        order = f" ORDER BY {rg.name}{direction}"
        return f"SELECT {self._projection(t)} FROM {t.name} WHERE {where}{order}{self._limit(s)}"

    def _latest(self, s: _Sql) -> str | None:
        t = self._table()
        rg = self._hot(t.by_role("range"))
        return f"SELECT {self._projection(t)} FROM {t.name} ORDER BY {rg.name} DESC{self._limit(s)}"

    def _aggregate(self, s: _Sql) -> str | None:
        t = self._table()
        key = self._hot(t.by_role("eq"))
        rg = self._hot(t.by_role("range"))
        fn = self.rng.choice(("count(*)", f"max({rg.name})", f"min({rg.name})"))
        where = f"{rg.name} > {s.slot(_literal(rg))}"
        return f"SELECT {key.name}, {fn} FROM {t.name} WHERE {where} GROUP BY {key.name}"

    def _count_live(self, s: _Sql) -> str | None:
        t = self._table()
        if not t.by_role("null"):
            return None
        eq = self._hot(t.by_role("eq"))
        where = f"{eq.name} = {s.slot(_literal(eq))} AND deleted_at IS NULL"
        return f"SELECT count(*) FROM {t.name} WHERE {where}"

    def _lookup_text(self, s: _Sql) -> str | None:
        t = self._table()
        texts = t.by_role("text", "email")
        if not texts:
            return None
        col = self.rng.choice(texts)
        proj = self._projection(t)
        if col.role == "email":
            return (
                f"SELECT {proj} FROM {t.name} WHERE lower(email) = lower({s.slot(_literal(col))})"
            )
        return f"SELECT {proj} FROM {t.name} WHERE {col.name} LIKE {s.slot(_literal(col))}"

    def _join2(self, s: _Sql) -> str | None:
        child = self._table()
        if not child.fks:
            return None
        fk = self._hot(child.fks)
        assert fk.parent is not None
        parent = self.by_name[fk.parent]
        c, p = self.alias[child.name], self.alias[parent.name]
        filt = self._hot(parent.by_role("eq", "email"))
        where = f"{p}.{filt.name} = {s.slot(_literal(filt))}"
        if self.rng.random() < 0.4:
            rg = self._hot(child.by_role("range"))
            where += f" AND {c}.{rg.name} > {s.slot(_literal(rg))}"
        return (
            f"SELECT {self._projection(child, c)} FROM {child.name} {c} "
            f"JOIN {parent.name} {p} ON {p}.id = {c}.{fk.name} WHERE {where}"
        )

    def _join3(self, s: _Sql) -> str | None:
        child = self._table()
        for fk in child.fks:
            assert fk.parent is not None
            parent = self.by_name[fk.parent]
            if not parent.fks:
                continue
            gfk = self._hot(parent.fks)
            assert gfk.parent is not None
            grand = self.by_name[gfk.parent]
            c, p, g = (self.alias[t.name] for t in (child, parent, grand))
            filt = self._hot(grand.by_role("eq"))
            where = f"{g}.{filt.name} = {s.slot(_literal(filt))}"
            if self.rng.random() < 0.5:
                where += f" ORDER BY {c}.created_at DESC{self._limit(s)}"
            return (
                f"SELECT {self._projection(child, c)}, {p}.id FROM {child.name} {c} "
                f"JOIN {parent.name} {p} ON {p}.id = {c}.{fk.name} "
                f"JOIN {grand.name} {g} ON {g}.id = {p}.{gfk.name} WHERE {where}"
            )
        return None

    def _semi_join(self, s: _Sql) -> str | None:
        child = self._table()
        if not child.fks:
            return None
        fk = self._hot(child.fks)
        assert fk.parent is not None
        parent = self.by_name[fk.parent]
        filt = self._hot(parent.by_role("eq"))
        inner = f"SELECT id FROM {parent.name} WHERE {filt.name} = {s.slot(_literal(filt))}"
        return f"SELECT {self._projection(child)} FROM {child.name} WHERE {fk.name} IN ({inner})"

    def _update(self, s: _Sql) -> str | None:
        t = self._table()
        target = self.rng.choice([c for c in t.columns if not c.parent])
        sets = f"{target.name} = {s.slot(_literal(target))}"
        if any(c.name == "updated_at" for c in t.columns) and target.name != "updated_at":
            sets += ", updated_at = now()"
        if self.rng.random() < 0.6:
            where = f"id = {s.slot('1234')}"
        else:
            col = self._hot(t.by_role("eq"))
            if col == target:
                return None
            where = f"{col.name} = {s.slot(_literal(col))}"
        return f"UPDATE {t.name} SET {sets} WHERE {where}"

    def _delete(self, s: _Sql) -> str | None:
        t = self._table()
        col = self._hot(t.by_role("range", "eq"))
        op = "<" if col.role == "range" else "="
        return f"DELETE FROM {t.name} WHERE {col.name} {op} {s.slot(_literal(col))}"

    def _insert(self, s: _Sql) -> str | None:
        t = self._table()
        cols = [c for c in t.columns if c.not_null or self.rng.random() < 0.7]
        names = ", ".join(["id", *(c.name for c in cols)])
        values = ", ".join([s.slot("99999999"), *(s.slot(_literal(c)) for c in cols)])
        return f"INSERT INTO {t.name} ({names}) VALUES ({values})"

    def _unparseable(self, s: _Sql) -> str | None:
        """Valid PostgreSQL that the parser does not read: ``ORDER BY … USING <op>``."""
        t = self._table()
        eq, rg = self._hot(t.by_role("eq")), self._hot(t.by_role("range"))
        op = self.rng.choice(("<", ">"))
        where = f"{eq.name} = {s.slot(_literal(eq))}"
        order = f"ORDER BY {rg.name} USING {op}"
        return f"SELECT {self._projection(t)} FROM {t.name} WHERE {where} {order}"

    def _catalog(self, s: _Sql) -> str | None:
        """Monitoring and driver housekeeping: the workload reader filters these out."""
        roll = self.rng.random()
        if roll < 0.6:
            fields = ["relname", "relkind", "reltuples", "relpages", "relhasindex", "relnatts"]
            picked = ", ".join(f"c.{f}" for f in self.rng.sample(fields, self.rng.randint(1, 5)))
            schema = s.slot("'public'")
            return (
                f"SELECT {picked} FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
                f"ON n.oid = c.relnamespace WHERE n.nspname = {schema}"
            )
        fields = ["pid", "state", "query", "backend_start", "wait_event", "usename"]
        picked = ", ".join(self.rng.sample(fields, self.rng.randint(1, 5)))
        return f"SELECT {picked} FROM pg_stat_activity WHERE datname = {s.slot(repr(DATABASE))}"

    def _legacy(self, s: _Sql) -> str | None:
        """A statement on a table that was dropped since (still in pg_stat_statements)."""
        name = self.rng.choice(LEGACY_TABLES)
        col = self.rng.choice(("id", "batch", "status"))
        proj = self.rng.choice(("*", "id", "id, payload", "count(*)"))
        return f"SELECT {proj} FROM {name} WHERE {col} = {s.slot('1')}"


_VALUE = re.compile(r"'(?:[^']|'')*'|\$\d+|\b\d+(?:\.\d+)?\b")


def _normal_form(text: str) -> str:
    """Roughly pg_stat_statements' identity: literals and ``$n`` are the same placeholder."""
    return _VALUE.sub("?", text).lower()


# ---------------------------------------------------------------------------------------------
# Recording the workload into pg_stat_statements
# ---------------------------------------------------------------------------------------------


@contextmanager
def _record_schema(dsn: str, specs: Sequence[TableSpec]) -> Iterator[psycopg.Connection[Any]]:
    """Empty, constraint-free copies of the tables (and the legacy ones) first on search_path."""
    conn = psycopg.connect(dsn, autocommit=True)
    rec = sql.Identifier(RECORD_SCHEMA)
    try:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(rec))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(rec))
        for spec in specs:
            conn.execute(
                sql.SQL("CREATE TABLE {} AS SELECT * FROM public.{} WITH NO DATA").format(
                    sql.Identifier(RECORD_SCHEMA, spec.name), sql.Identifier(spec.name)
                )
            )
        for name in LEGACY_TABLES:
            conn.execute(
                sql.SQL(
                    "CREATE TABLE {} (id bigint, batch int, status text, payload jsonb)"
                ).format(sql.Identifier(RECORD_SCHEMA, name))
            )
        conn.execute(sql.SQL("SET search_path = {}, public").format(rec))
        conn.execute("SELECT pg_stat_statements_reset()")
        yield conn
    finally:
        conn.execute("RESET search_path")
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(rec))
        conn.close()


def record_workload(dsn: str, specs: Sequence[TableSpec], statements: Sequence[Statement]) -> int:
    """Execute every statement ``calls`` times so pg_stat_statements holds the workload.

    Returns how many executions failed (0 expected: a failed one is not recorded).
    """
    failed = 0
    with _record_schema(dsn, specs) as conn, psycopg.RawCursor(conn) as cur:
        for st in statements:
            args = [None] * st.params
            for _ in range(st.calls):
                try:
                    cur.execute(st.text.encode(), args or None)
                except psycopg.Error as exc:
                    failed += 1
                    print(f"  ! {st.family}: {exc.diag.message_primary}: {st.text[:120]}")
                    break
    return failed


def recorded_statements(dsn: str) -> int:
    """Distinct entries pg_stat_statements holds for the database (any kind of statement)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
            "WHERE d.datname = current_database() AND s.query ~* '^\\s*(select|insert|update|"
            "delete)' AND s.query NOT LIKE '%pg_stat_statements%'"
        ).fetchone()
    return int(row[0]) if row else 0


# ---------------------------------------------------------------------------------------------
# Timing the audit
# ---------------------------------------------------------------------------------------------


class _TimedOracle:
    """Delegates to the real oracle and adds up the seconds spent inside ``costs``."""

    def __init__(self, inner: WhatIfOracle, after: Callable[[], None]) -> None:
        self._inner = inner
        self._after = after
        self.seconds = 0.0

    def costs(self, requests: Sequence[CostRequest]) -> list[float | None]:
        started = time.perf_counter()
        try:
            return self._inner.costs(requests)
        finally:
            self.seconds += time.perf_counter() - started
            self._after()

    @property
    def calls(self) -> int:
        return self._inner.calls

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@contextmanager
def _timed_oracles(after: Callable[[], None]) -> Iterator[list[_TimedOracle]]:
    """While active, the audit flow's ``make_oracle`` hands out timed wrappers."""
    made: list[_TimedOracle] = []

    def make(target: Target, snapshot: Snapshot, *, allow_build: bool = True) -> _TimedOracle:
        oracle = _TimedOracle(make_oracle(target, snapshot, allow_build=allow_build), after)
        made.append(oracle)
        return oracle

    with patch.object(audit_flow, "make_oracle", make):
        yield made


PHASES = ("snapshot", "workload", "analyse", "candidates", "what-if r1", "greedy")
#: Phase → (wall seconds, seconds inside the oracle, what-if calls).
Phases = dict[str, tuple[float, float, int]]


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a running audit is: the last progress event, and the totals so far."""

    stage: str
    elapsed_s: float
    planner_s: float
    calls: int
    candidates: int


@dataclass(slots=True)
class Clock:
    """Progress callback that stamps when each phase ended (and the oracle's totals then)."""

    tell: Callable[[Progress], None] | None = None
    oracles: list[_TimedOracle] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    marks: dict[str, tuple[float, float, int]] = field(default_factory=dict)
    candidates: int = 0
    stage: str = "connect"
    told: float = 0.0

    def _totals(self) -> tuple[float, int]:
        oracle = self.oracles[-1] if self.oracles else None
        return (oracle.seconds, oracle.calls) if oracle else (0.0, 0)

    def _mark(self, phase: str) -> None:
        self.marks[phase] = (time.perf_counter(), *self._totals())

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage == "collect" and done == 1:
            self._mark("snapshot")
        elif stage == "collect" and done == total:
            self._mark("workload")
        elif stage == "analyse" and done == total:
            self._mark("analyse")
        elif stage == "what-if":
            self._mark("candidates")
            self.candidates = total
        elif stage == "select" and "what-if r1" not in self.marks:
            self._mark("what-if r1")
        self.stage = f"{stage} {done:,}/{total:,}" if stage != "select" else f"select round {done}"
        self.tick(force=True)

    def tick(self, *, force: bool = False) -> None:
        """Tell the parent where the audit is (at most once a second unless ``force``)."""
        now = time.perf_counter()
        if self.tell and (force or now - self.told >= 1.0):
            self.told = now
            planner, calls = self._totals()
            self.tell(Progress(self.stage, now - self.started, planner, calls, self.candidates))

    def finish(self) -> Phases:
        """Close the last phase; phase → (wall s, oracle s, what-if calls) spent in it."""
        self._mark("greedy")
        for phase in PHASES:  # a phase a small workload skips ends where the next one ends
            if phase not in self.marks:
                later = [self.marks[p] for p in PHASES[PHASES.index(phase) :] if p in self.marks]
                self.marks[phase] = later[0]
        out: Phases = {}
        prev = (self.started, 0.0, 0)
        for phase in PHASES:
            mark = self.marks[phase]
            out[phase] = (mark[0] - prev[0], mark[1] - prev[1], mark[2] - prev[2])
            prev = mark
        return out


@dataclass(frozen=True, slots=True)
class Result:
    """One audit's figures (``report`` is None when it was stopped at the time limit)."""

    server: str
    statements: int
    tables: int
    report: Report | None
    candidates: int
    phases: Phases
    total_s: float
    planner_s: float
    calls: int
    stopped_in: str = ""


def run_audit(
    dsn: str,
    server: str,
    statements: int,
    tables: int,
    *,
    profile: bool = False,
    tell: Callable[[Progress], None] | None = None,
) -> Result:
    """Audit the database from pg_stat_statements, timing each phase."""
    clock = Clock(tell)
    with _timed_oracles(clock.tick) as oracles:
        clock.oracles = oracles
        profiler = cProfile.Profile() if profile else None
        if profiler:
            profiler.enable()
        report = audit_target(
            dsn, WorkloadSpec(limit=statements + 100), progress=clock, allow_build=True
        )
        if profiler:
            profiler.disable()
        phases = clock.finish()
    if profiler:
        _print_profile(profiler, f"{server}, {statements:,} statements")
    return Result(
        server=server,
        statements=statements,
        tables=tables,
        report=report,
        candidates=clock.candidates,
        phases=phases,
        total_s=clock.marks["greedy"][0] - clock.started,
        planner_s=oracles[-1].seconds if oracles else 0.0,
        calls=report.whatif_calls,
    )


def _print_profile(profiler: cProfile.Profile, title: str) -> None:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(20)
    stats.sort_stats("cumulative").print_stats(r"/app/", 25)
    print(f"\n--- cProfile: {title} ---\n{out.getvalue()}", flush=True)


def _child(pipe: Connection, dsn: str, server: str, size: int, tables: int, profile: bool) -> None:
    """Run one audit in a forked process, reporting progress and the result on ``pipe``."""
    try:
        result = run_audit(dsn, server, size, tables, profile=profile, tell=pipe.send)
        pipe.send(result)
    except BaseException as exc:
        pipe.send(f"{type(exc).__name__}: {exc}")
        raise


def audit_with_limit(
    dsn: str, server: str, size: int, tables: int, *, limit_s: float, profile: bool
) -> Result:
    """Audit in a child process; stop it (and say where it was) after ``limit_s`` seconds.

    Stopping the child drops its connection, so the server rolls back whatever it was doing.
    """
    ctx = multiprocessing.get_context("fork")
    mine, theirs = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(theirs, dsn, server, size, tables, profile))
    proc.start()
    theirs.close()
    deadline = time.monotonic() + limit_s
    last = Progress("connect", 0.0, 0.0, 0, 0)
    try:
        while mine.poll(max(deadline - time.monotonic(), 0)):
            msg = mine.recv()
            if isinstance(msg, Result):
                return msg
            if isinstance(msg, str):
                raise RuntimeError(f"{server} audit of {size:,} statements failed: {msg}")
            last = msg
        proc.terminate()
        return Result(
            server=server,
            statements=size,
            tables=tables,
            report=None,
            candidates=last.candidates,
            phases={},
            total_s=limit_s,
            planner_s=last.planner_s,
            calls=last.calls,
            stopped_in=last.stage,
        )
    finally:
        proc.join()
        mine.close()


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------

HEADER = (
    "server/oracle",
    "stmts",
    "tables",
    "analysed/skipped",
    "cands",
    "recs new+drop",
    "what-if",
    "collect s",
    "analyse s",
    "cands s",
    "what-if r1 s",
    "greedy s",
    "planner s",
    "total s",
)


def _row(r: Result) -> list[str]:
    head = [r.server, f"{r.statements:,}", str(r.tables)]
    if r.report is None:
        return [
            *head,
            "-",
            f"{r.candidates:,}" if r.candidates else "-",
            "-",
            f"≥ {r.calls:,}",
            *("-" * 5),
            f"≥ {r.planner_s:.1f}",
            f"> {r.total_s:.0f}",
        ]
    rep, p = r.report, r.phases
    new = sum(x.action == "create_index" for x in rep.recommendations)
    return [
        *head,
        f"{len(rep.analyzed):,}/{len(rep.skipped):,}",
        f"{r.candidates:,}",
        f"{new}+{len(rep.recommendations) - new}",
        f"{r.calls:,}",
        f"{p['snapshot'][0] + p['workload'][0]:.2f}",
        f"{p['analyse'][0]:.2f}",
        f"{p['candidates'][0]:.2f}",
        f"{p['what-if r1'][0]:.2f}",
        f"{p['greedy'][0]:.2f}",
        f"{r.planner_s:.2f}",
        f"{r.total_s:.2f}",
    ]


def _ratios(results: Sequence[Result]) -> list[str]:
    """Per statement, per planner second, and each size against the smallest of its server."""
    lines = []
    for server in dict.fromkeys(r.server for r in results):
        done = [r for r in results if r.server == server and r.report is not None]
        for r in done:
            assert r.report is not None
            audited = max(r.report.statements, 1)
            engine = r.total_s - r.planner_s
            line = (
                f"{server} {r.statements:>5,}: {1000 * r.total_s / audited:6.1f} ms/statement, "
                f"{r.calls / audited:5.1f} what-if calls/statement, "
                f"{r.calls / max(r.planner_s, 1e-9):5.0f} calls/s in the oracle, "
                f"engine {engine:5.2f} s ({engine / max(r.total_s, 1e-9):.0%})"
            )
            base = done[0]
            if r is not base:
                line += (
                    f"; {r.statements // base.statements}× statements → "
                    f"{r.total_s / max(base.total_s, 1e-9):.1f}× time, "
                    f"{r.calls / max(base.calls, 1):.1f}× calls"
                )
            lines.append(line)
    return lines


def _index_keys(report: Report) -> set[tuple[str, tuple[str, ...], tuple[str, ...], str | None]]:
    return {
        (x.table, x.columns, x.include, x.where)
        for x in report.recommendations
        if x.action == "create_index"
    }


def _comparisons(results: Sequence[Result]) -> list[str]:
    """The same workload on both servers: time, calls, and how many picks agree."""
    lines = []
    by_key = {(r.server, r.statements): r for r in results}
    servers = list(dict.fromkeys(r.server for r in results))
    for other in servers[1:]:
        for r in results:
            ref = by_key.get((servers[0], r.statements))
            if r.server != other or ref is None or r.report is None or ref.report is None:
                continue
            mine, theirs = _index_keys(r.report), _index_keys(ref.report)
            lines.append(
                f"{other} vs {servers[0]} at {r.statements:,}: "
                f"{r.total_s / max(ref.total_s, 1e-9):.1f}× time, "
                f"{r.calls / max(ref.calls, 1):.2f}× what-if calls, "
                f"{len(mine & theirs)} of {len(mine)} new indexes also chosen there"
            )
    return lines


def _skip_summary(report: Report) -> str:
    reasons: dict[str, int] = {}
    for sk in report.skipped:
        reason = re.sub(r"relation \S+", "relation …", sk.reason.split(":")[0])
        reasons[reason] = reasons.get(reason, 0) + 1
    top = sorted(reasons.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{n} {reason}" for reason, n in top)


def print_table(results: Sequence[Result]) -> None:
    """The figures, one row per audit, then ratio lines against baselines from this run."""
    rows = [list(HEADER), *(_row(r) for r in results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    for n, row in enumerate(rows):
        cells = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    print(
        "\ncollect = connect + snapshot + pg_stat_statements read; cands = candidate generation;"
        "\nwhat-if r1 = baseline costs + first greedy round; greedy = later rounds, prune, final"
        "\ncosts, finding rules; planner = time inside the what-if oracle (all phases).\n"
    )
    for line in [*_ratios(results), *_comparisons(results)]:
        print(line)
    print()
    for r in results:
        if r.report is None:
            print(
                f"{r.server} {r.statements:>5,}: STOPPED after {r.total_s:.0f} s "
                f"in {r.stopped_in} ({r.calls:,} what-if calls, {r.planner_s:.0f} s planning)"
            )
            continue
        rep = r.report
        gain = (
            1 - rep.workload_cost_after / rep.workload_cost_before
            if rep.workload_cost_before
            else 0.0
        )
        print(
            f"{r.server} {r.statements:>5,}: audited {rep.statements:,} (catalog queries "
            f"filtered), estimated weighted cost −{gain:.0%}; skipped: {_skip_summary(rep)}"
        )


def _machine(servers: Sequence[tuple[str, str]]) -> list[str]:
    cpu = "?"
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return [
        f"machine: {os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, sqlglot {importlib.metadata.version('sqlglot')}, "
        f"psycopg {psycopg.__version__}",
        *(f"server:  {name}: {version}" for name, version in servers),
    ]


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def _server_version(dsn: str) -> str:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT version()").fetchone()
    return str(row[0]).split(" on ")[0] if row else "?"


@dataclass(frozen=True, slots=True)
class Plan:
    """What to run on one server."""

    label: str
    sizes: Sequence[int]
    extensions: Sequence[str]
    limit_s: float
    profile: Sequence[int] = ()


def bench_server(
    server: LocalPostgres,
    plan: Plan,
    specs: Sequence[TableSpec],
    workloads: dict[int, list[Statement]],
) -> list[Result]:
    """Load the schema once, then record and audit each workload size."""
    label = plan.label
    dsn = server.create_database(DATABASE, extensions=("pg_stat_statements", *plan.extensions))
    started = time.perf_counter()
    load_schema(dsn, specs)
    rows = sum(s.rows for s in specs)
    elapsed = time.perf_counter() - started
    print(f"{label}: loaded {len(specs)} tables, {rows:,} rows in {elapsed:.1f} s", flush=True)
    results: list[Result] = []
    for size in plan.sizes:
        started = time.perf_counter()
        failed = record_workload(dsn, specs, workloads[size])
        recorded = recorded_statements(dsn)
        executions = sum(s.calls for s in workloads[size])
        print(
            f"{label}: recorded {size:,} statements ({executions:,} executions, {failed} failed; "
            f"pg_stat_statements holds {recorded:,}) in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        result = audit_with_limit(
            dsn,
            label,
            size,
            len(specs),
            limit_s=plan.limit_s,
            profile=size in plan.profile,
        )
        status = f"in {result.total_s:.1f} s" if result.report else "— stopped at the limit"
        print(f"{label}: audited {size:,} statements {status}", flush=True)
        results.append(result)
    return results


def _sizes(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=_sizes, default=[100, 1000, 5000], help="e.g. 100,1000")
    parser.add_argument(
        "--pg18-sizes",
        type=_sizes,
        default=[100, 1000],
        help="sizes audited on PG 18 with rolled-back builds (real CREATE INDEX: slow)",
    )
    parser.add_argument("--skip-pg18", action="store_true", help="PG 15 + HypoPG only")
    parser.add_argument("--tables", type=int, default=56, help="tables in the schema (≥ 50)")
    parser.add_argument("--limit", type=float, default=600, help="seconds per PG 15 audit")
    parser.add_argument("--pg18-limit", type=float, default=300, help="seconds per PG 18 audit")
    parser.add_argument("--profile", type=_sizes, default=[], help="cProfile PG 15 at these sizes")
    return parser.parse_args()


def main() -> None:
    """Generate schema and workloads, run every size on each server, print the figures."""
    args = _arguments()
    configure_logging(level="warning")
    specs = make_schema(args.tables, random.Random(SEED))
    pg18_sizes = [] if args.skip_pg18 else args.pg18_sizes
    all_sizes = sorted({*args.sizes, *pg18_sizes})
    biggest = WorkloadGenerator(specs, random.Random(SEED + 1)).generate(max(all_sizes))
    # Smaller workloads are prefixes of the biggest, so they nest and compare fairly.
    workloads = {n: biggest[:n] for n in all_sizes}
    families: dict[str, int] = {}
    for st in biggest:
        families[st.family] = families.get(st.family, 0) + 1
    print(
        f"schema: {len(specs)} tables, {sum(s.rows for s in specs):,} rows, "
        f"{sum(len(s.columns) + 1 for s in specs)} columns, "
        f"{sum(len(s.indexes) for s in specs)} secondary indexes, "
        f"{sum(len(s.declared_fks) for s in specs)} foreign keys"
    )
    mix = ", ".join(f"{k} {v}" for k, v in sorted(families.items()))
    print(f"statements ({max(all_sizes):,}, smaller sizes are prefixes): {mix}", flush=True)

    plans = [Plan("pg15/hypopg", args.sizes, ("hypopg",), args.limit, args.profile)]
    if pg18_sizes:
        plans.append(Plan("pg18/build", pg18_sizes, (), args.pg18_limit))
    flavours: dict[str, type[LocalPostgres]] = {
        "pg15/hypopg": DebianPostgres,
        "pg18/build": EmbeddedPostgres,
    }
    results: list[Result] = []
    versions: list[tuple[str, str]] = []
    overall = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dbarch-scale-") as base:
        for plan in plans:
            if not plan.sizes:
                continue
            where = Path(base) / plan.label.split("/")[0]
            with flavours[plan.label](where, fast=True, settings=SERVER_SETTINGS) as server:
                versions.append((plan.label, _server_version(server.dsn())))
                results += bench_server(server, plan, specs, workloads)
    print()
    for line in _machine(versions):
        print(line)
    print(f"whole run: {time.perf_counter() - overall:.0f} s\n")
    print_table(results)


if __name__ == "__main__":
    main()
