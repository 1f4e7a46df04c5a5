"""Name resolution over a Snapshot: search_path lookup, views, system relations, sqlglot schema."""

from __future__ import annotations

from functools import cached_property

from sqlglot import exp
from sqlglot.schema import MappingSchema

from app.engine.model import RelKind, Snapshot, Table
from app.engine.sql import DIALECT, as_postgresql_reads

SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema", "pg_toast"})


def _ident(node: exp.Expr | str | None) -> str:
    """An identifier as PostgreSQL sees it: unquoted names fold to lower case."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node
    if isinstance(node, exp.Identifier):
        return as_postgresql_reads(str(node.this), quoted=bool(node.quoted))
    return str(node.name)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Catalog:
    """Lookup tables derived once per audit from a Snapshot."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.tables: dict[str, Table] = {t.qualified: t for t in snapshot.tables}
        self._by_name: dict[str, list[str]] = {}
        for t in snapshot.tables:
            self._by_name.setdefault(t.name, []).append(t.schema)

    @cached_property
    def schema(self) -> MappingSchema:
        """The catalog in sqlglot's form (quoted names keep their case; types are not needed)."""
        nested: dict[str, dict[str, dict[str, str]]] = {}
        for t in self.snapshot.tables:
            cols = {_q(c.name): "text" for c in t.columns}
            nested.setdefault(_q(t.schema), {})[_q(t.name)] = cols
        mapping: dict[str, object] = dict(nested)
        return MappingSchema(mapping, dialect=DIALECT)

    def resolve_table(self, table: exp.Table, *, cte_names: set[str]) -> str | None:
        """``schema.name`` of the user relation a statement names (search_path if unqualified)."""
        name = _ident(table.this)
        schema = _ident(table.args.get("db"))
        if schema:
            qualified = f"{schema}.{name}"
            return qualified if qualified in self.tables else None
        if name in cte_names:
            return None
        schemas = self._by_name.get(name, [])
        for candidate in self.snapshot.search_path:
            if candidate in schemas:
                return f"{candidate}.{name}"
        return None

    def is_system(self, table: exp.Table) -> bool:
        """The relation lives in a system schema (pg_catalog is searched first, implicitly)."""
        schema = _ident(table.args.get("db"))
        if schema:
            return schema in SYSTEM_SCHEMAS
        name = _ident(table.this)
        return name.startswith("pg_") and name not in self._by_name

    def view_sql(self, qualified: str) -> str | None:
        """The SELECT behind a plain view (materialized views are indexable relations)."""
        t = self.tables.get(qualified)
        if t is None or t.kind is not RelKind.view:
            return None
        return t.view_sql

    def table(self, qualified: str) -> Table | None:
        """The relation with that qualified name."""
        return self.tables.get(qualified)
