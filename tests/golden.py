"""Golden advisor cases: read a fixture file, build its snapshot from DDL, render the audit."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import sqlglot
from sqlglot import exp

from app.engine.advisor.audit import audit
from app.engine.model import (
    Column,
    ColumnStats,
    ForeignKey,
    Index,
    Query,
    Recommendation,
    Snapshot,
    Table,
)
from app.engine.report import Report
from tests.fakes import NOW, FakeOracle

SECTIONS = ("schema", "workload", "expect")
#: Optional: SQL that fills the tables with data, for the run against real PostgreSQL.
SEED = "seed"
_HEADER = re.compile(r"^-- (schema|workload|seed|expect):\s*$")
_HINT = re.compile(r"^-- (table|column|index) (.+?): (.*)$")
_RESET = re.compile(r"^-- stats reset: (\d{4}-\d{2}-\d{2})\s*$")
_CALLS = re.compile(r"^-- calls: (\d+)\s*$")
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*(bytes|kB|MB|GB)?$")
_UNITS = {None: 1, "bytes": 1, "kB": 1024, "MB": 1024**2, "GB": 1024**3}
#: sqlglot's spelling of a type → PostgreSQL's format_type spelling (what the catalog reports).
_TYPES = {
    "int": "integer",
    "serial": "integer",
    "bigserial": "bigint",
    "timestamptz": "timestamp with time zone",
    "timestamp": "timestamp without time zone",
}
_NO_BTREE = frozenset({"json", "xml", "point", "polygon", "box", "circle", "line", "lseg", "path"})


class FixtureError(ValueError):
    """A fixture file that does not follow the format in tests/fixtures/advisor/README.md."""


@dataclass(frozen=True, slots=True)
class Case:
    """One fixture file split into its sections."""

    path: Path
    #: Everything up to and including the ``-- expect:`` line, kept verbatim on update.
    head: str
    schema: str
    workload: str
    expect: str
    #: Data for the real-PostgreSQL run ("" when the case is checked on the toy planner only).
    seed: str = ""


def read_case(path: Path) -> Case:
    """Split a fixture into its ``-- schema:``, ``-- workload:`` and ``-- expect:`` sections."""
    text = path.read_text()
    parts: dict[str, list[str]] = {}
    current: str | None = None
    head: list[str] = []
    for line in text.splitlines():
        match = _HEADER.match(line)
        if match:
            current = match.group(1)
            if current in parts:
                raise FixtureError(f"{path.name}: section -- {current}: appears twice")
            parts[current] = []
            head.append(line)
            continue
        if current != "expect":
            head.append(line)
        if current is not None:
            parts[current].append(line)
    missing = [s for s in SECTIONS if s not in parts]
    if missing:
        raise FixtureError(f"{path.name}: missing section(s) {', '.join(missing)}")
    return Case(
        path=path,
        head="\n".join(head) + "\n",
        schema="\n".join(parts["schema"]),
        workload="\n".join(parts["workload"]),
        expect="\n".join(parts["expect"]).strip("\n"),
        seed="\n".join(parts.get(SEED, [])).strip("\n"),
    )


def _statements(text: str) -> list[tuple[list[str], str]]:
    """``(comment lines before it, statement)`` per statement; one ends with a line ending ``;``."""
    out: list[tuple[list[str], str]] = []
    comments: list[str] = []
    body: list[str] = []
    for line in text.splitlines():
        if not body and line.startswith("--"):
            comments.append(line)
            continue
        if not body and not line.strip():
            continue
        body.append(line)
        if line.rstrip().endswith(";"):
            out.append((comments, "\n".join(body).rstrip().removesuffix(";").strip()))
            comments, body = [], []
    if body:
        out.append((comments, "\n".join(body).strip()))
    elif comments:
        out.append((comments, ""))
    return out


#: A statement is written into the workload file at most this many times (its calls, capped).
MAX_FILE_CALLS = 100


def workload_text(case: Case) -> str:
    """The workload as a ``;``-separated file, as a log sample holds it: each statement
    repeated once per call, at most :data:`MAX_FILE_CALLS` times (the file reader counts them).
    """
    return "".join(f"{q.text};\n" * min(q.calls, MAX_FILE_CALLS) for q in queries(case))


def queries(case: Case) -> list[Query]:
    """The workload: each statement with the ``-- calls: N`` just before it (1 if none)."""
    found = []
    for comments, sql in _statements(case.workload):
        if not sql:
            continue
        calls = 1
        for line in comments:
            match = _CALLS.match(line)
            if match:
                calls = int(match.group(1))
        found.append(Query(sql, calls=calls))
    return found


# ------------------------------------------------------------------ schema → snapshot


def _name(node: exp.Expression | None) -> str:
    """An identifier as PostgreSQL stores it: unquoted names fold to lower case."""
    if isinstance(node, exp.Identifier):
        return str(node.this) if node.quoted else str(node.this).lower()
    if isinstance(node, exp.Column | exp.Table):
        return _name(node.this)
    raise FixtureError(f"expected a name, got {node!r}")


def _qualified(table: exp.Table) -> str:
    schema = table.args.get("db")
    return f"{_name(schema) if schema else 'public'}.{_name(table.this)}"


def _type(kind: exp.DataType | None) -> str:
    text = kind.sql("postgres").lower() if kind is not None else "text"
    if text.startswith("varchar"):
        return "character varying" + text.removeprefix("varchar")
    if text.startswith("decimal"):
        return "numeric" + text.removeprefix("decimal").replace(", ", ",")
    return _TYPES.get(text, text)


@dataclass
class _Schema:
    tables: dict[str, Table]
    indexes: list[Index]
    fks: list[ForeignKey]


def _create_table(node: exp.Create, schema: _Schema) -> None:
    target = node.this
    assert isinstance(target, exp.Schema) and isinstance(target.this, exp.Table)
    qualified = _qualified(target.this)
    short = qualified.partition(".")[2]
    columns: list[Column] = []
    for item in target.expressions:
        if isinstance(item, exp.ColumnDef):
            name, type_ = _name(item.this), _type(item.args.get("kind"))
            kinds = [c.args.get("kind") for c in item.args.get("constraints") or []]
            not_null = any(isinstance(k, exp.NotNullColumnConstraint) for k in kinds)
            for kind in kinds:
                if isinstance(kind, exp.PrimaryKeyColumnConstraint):
                    not_null = True
                    _key_index(schema, qualified, f"{short}_pkey", (name,), primary=True)
                elif isinstance(kind, exp.UniqueColumnConstraint):
                    _key_index(schema, qualified, f"{short}_{name}_key", (name,))
                elif isinstance(kind, exp.Reference):
                    _foreign_key(schema, qualified, f"{short}_{name}_fkey", [name], kind)
            columns.append(Column(name, type_, not_null, btree=type_ not in _NO_BTREE))
        elif isinstance(item, exp.PrimaryKey):
            keys = tuple(_name(c) for c in item.expressions)
            _key_index(schema, qualified, f"{short}_pkey", keys, primary=True)
        elif isinstance(item, exp.ForeignKey):
            refs = [_name(c) for c in item.expressions]
            name = f"{short}_{'_'.join(refs)}_fkey"
            _foreign_key(schema, qualified, name, refs, item.args["reference"])
        else:
            raise FixtureError(f"unsupported table element: {item.sql('postgres')}")
    schema.tables[qualified] = Table(qualified.partition(".")[0], short, columns=tuple(columns))


def _key_index(
    schema: _Schema, table: str, name: str, cols: tuple[str, ...], *, primary: bool = False
) -> None:
    keys = ", ".join(cols)
    schema.indexes.append(
        Index(
            table.partition(".")[0],
            name,
            table,
            cols,
            descending=(False,) * len(cols),
            unique=True,
            primary=primary,
            constraint=name,
            definition=f"CREATE UNIQUE INDEX {name} ON {table} USING btree ({keys})",
        )
    )


def _foreign_key(
    schema: _Schema, table: str, name: str, cols: list[str], ref: exp.Reference
) -> None:
    target = ref.this
    assert isinstance(target, exp.Schema) and isinstance(target.this, exp.Table)
    ref_cols = tuple(_name(c) for c in target.expressions)
    schema.fks.append(ForeignKey(name, table, tuple(cols), _qualified(target.this), ref_cols))


def _create_index(node: exp.Create, schema: _Schema) -> None:
    index = node.this
    assert isinstance(index, exp.Index)
    table = _qualified(index.args["table"])
    params = index.args["params"]
    using = str(params.args["using"].this).lower() if params.args.get("using") else "btree"
    keys: list[str] = []
    desc: list[bool] = []
    for item in params.args.get("columns") or []:
        inner = item.this if isinstance(item, exp.Ordered) else item
        keys.append(_name(inner) if isinstance(inner, exp.Column) else inner.sql("postgres"))
        desc.append(bool(isinstance(item, exp.Ordered) and item.args.get("desc")))
    include = tuple(_name(c) for c in params.args.get("include") or [])
    where_node = params.args.get("where")
    where = where_node.this.sql("postgres") if where_node else None
    name = _name(index.this)
    text = ", ".join(k + (" DESC" if d else "") for k, d in zip(keys, desc, strict=True))
    definition = (
        f"CREATE {'UNIQUE ' if node.args.get('unique') else ''}INDEX {name} ON {table} "
        f"USING {using} ({text})"
        + (f" INCLUDE ({', '.join(include)})" if include else "")
        + (f" WHERE ({where})" if where else "")
    )
    schema.indexes.append(
        Index(
            table.partition(".")[0],
            name,
            table,
            tuple(keys),
            descending=tuple(desc),
            include=include,
            where=where,
            using=using,
            unique=bool(node.args.get("unique")),
            definition=definition,
        )
    )


def _alter(node: exp.Alter, schema: _Schema) -> None:
    table = _qualified(node.this)
    for action in node.args.get("actions") or []:
        for constraint in action.expressions if isinstance(action, exp.AddConstraint) else []:
            for fk in constraint.expressions:
                if not isinstance(fk, exp.ForeignKey):
                    raise FixtureError(f"unsupported ALTER TABLE: {node.sql('postgres')}")
                cols = [_name(c) for c in fk.expressions]
                _foreign_key(schema, table, _name(constraint.this), cols, fk.args["reference"])


def _size(text: str) -> int:
    match = _SIZE.match(text)
    if not match:
        raise FixtureError(f"not a size: {text!r} (write e.g. 4MB, 300kB, 8192)")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def _pairs(text: str) -> dict[str, str]:
    out = {}
    for word in text.split():
        key, eq, value = word.partition("=")
        if not eq:
            raise FixtureError(f"expected key=value, got {word!r}")
        out[key] = value
    return out


def _unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name.lower()


def _split_dotted(text: str) -> list[str]:
    return [_unquote(p) for p in re.findall(r'"(?:[^"]|"")*"|[^."]+', text)]


_TABLE_KEYS = {
    "rows": "rows",
    "inserts": "n_tup_ins",
    "updates": "n_tup_upd",
    "hot_updates": "n_tup_hot_upd",
    "deletes": "n_tup_del",
    "seq_scans": "seq_scan",
    "idx_scans": "idx_scan",
}


def _table_hint(table: Table, values: dict[str, str]) -> Table:
    changes: dict[str, object] = {}
    for key, value in values.items():
        if key == "size":
            changes["size_bytes"] = _size(value)
        elif key in _TABLE_KEYS:
            field = _TABLE_KEYS[key]
            changes[field] = float(value) if field == "rows" else int(float(value))
        else:
            raise FixtureError(
                f"unknown table hint {key!r} (known: size, {', '.join(_TABLE_KEYS)})"
            )
    return replace(table, **changes)  # type: ignore[arg-type]


def _column_stats(values: dict[str, str]) -> ColumnStats:
    stats = ColumnStats()
    for key, value in values.items():
        if key == "distinct":
            stats = replace(stats, n_distinct=float(value))
        elif key == "null_frac":
            stats = replace(stats, null_frac=float(value))
        elif key == "width":
            stats = replace(stats, avg_width=int(value))
        elif key == "common":
            pairs = [p.rsplit(":", 1) for p in value.split(",")]
            stats = replace(
                stats,
                most_common_vals=tuple(v for v, _ in pairs),
                most_common_freqs=tuple(float(f) for _, f in pairs),
            )
        else:
            raise FixtureError(
                f"unknown column hint {key!r} (known: distinct, null_frac, width, common)"
            )
    return stats


def _apply_hint(kind: str, target: str, values: dict[str, str], schema: _Schema) -> None:
    parts = _split_dotted(target)
    if kind == "index":
        for pos, index in enumerate(schema.indexes):
            if index.name == parts[-1]:
                changes: dict[str, object] = {}
                for key, value in values.items():
                    if key == "scans":
                        changes["scans"] = int(value)
                    elif key == "size":
                        changes["size_bytes"] = _size(value)
                    elif key == "valid":
                        changes["valid"] = value == "true"
                    else:
                        raise FixtureError(
                            f"unknown index hint {key!r} (known: scans, size, valid)"
                        )
                schema.indexes[pos] = replace(index, **changes)  # type: ignore[arg-type]
                return
        raise FixtureError(f"hint for unknown index {target}")
    table_parts = parts if kind == "table" else parts[:-1]
    qualified = ".".join(table_parts) if len(table_parts) == 2 else f"public.{table_parts[0]}"
    table = schema.tables.get(qualified)
    if table is None:
        raise FixtureError(f"hint for unknown table {qualified}")
    if kind == "table":
        schema.tables[qualified] = _table_hint(table, values)
        return
    col = table.column(parts[-1])
    if col is None:
        raise FixtureError(f"hint for unknown column {parts[-1]} of {qualified}")
    cols = tuple(replace(c, stats=_column_stats(values)) if c is col else c for c in table.columns)
    schema.tables[qualified] = replace(table, columns=cols)


def snapshot(case: Case) -> Snapshot:
    """A PostgreSQL 15 snapshot (taken at ``tests.fakes.NOW``) of the schema section."""
    schema = _Schema({}, [], [])
    hints: list[tuple[str, str, dict[str, str]]] = []
    reset: datetime | None = None
    for comments, sql in _statements(case.schema):
        for line in comments:
            hint, reset_match = _HINT.match(line), _RESET.match(line)
            if hint:
                hints.append((hint.group(1), hint.group(2), _pairs(hint.group(3))))
            elif reset_match:
                reset = datetime.fromisoformat(reset_match.group(1)).replace(tzinfo=UTC)
        if not sql:
            continue
        node = sqlglot.parse_one(sql, read="postgres")
        if isinstance(node, exp.Create) and node.kind == "TABLE":
            _create_table(node, schema)
        elif isinstance(node, exp.Create) and node.kind == "INDEX":
            _create_index(node, schema)
        elif isinstance(node, exp.Alter):
            _alter(node, schema)
        else:
            raise FixtureError(f"{case.path.name}: unsupported schema statement: {sql}")
    for kind, target, values in hints:
        _apply_hint(kind, target, values, schema)
    return Snapshot(
        "15.8",
        150008,
        "golden",
        NOW,
        tables=tuple(schema.tables.values()),
        indexes=tuple(schema.indexes),
        foreign_keys=tuple(schema.fks),
        hypopg=True,
        stats_reset=reset,
    )


# ------------------------------------------------------------------ report → expect text


def run(case: Case) -> Report:
    """The pure audit of the case on the toy planner in ``tests.fakes``."""
    snap = snapshot(case)
    return audit(snap, queries(case), FakeOracle(snap), now=NOW)


def _one_line(sql: str) -> str:
    return " ".join(sql.split())


def header(rec: Recommendation) -> str:
    flags = rec.descending or (False,) * len(rec.columns)
    keys = ", ".join(c + (" DESC" if d else "") for c, d in zip(rec.columns, flags, strict=False))
    text = f"{rec.action} {rec.table} ({keys})"
    if rec.include:
        text += f" INCLUDE ({', '.join(rec.include)})"
    if rec.where:
        text += f" WHERE {rec.where}"
    return f"{text} [{rec.rule}]"


def render(report: Report) -> str:
    """The expect section: recommendations, rejected candidates, skipped statements, cost."""
    lines: list[str] = []
    for rec in report.recommendations:
        lines.append(header(rec))
        lines.append(f"  ddl: {rec.ddl}")
        lines.extend(f"  reason: {r}" for r in rec.reasons)
        for effect in rec.effects:
            lines.append(
                f"  cost {effect.cost_before:,.1f} -> {effect.cost_after:,.1f} "
                f"x{effect.query.calls}: {_one_line(effect.query.text)}"
            )
    if not report.recommendations:
        lines.append("no recommendations")
    for rej in sorted(report.rejected, key=lambda r: r.candidate):
        lines.append(f"rejected {rej.candidate}")
        lines.append(f"  reason: {rej.reason}")
    for skip in report.skipped:
        lines.append(f"skipped {_one_line(skip.query.text)}")
        lines.append(f"  reason: {skip.reason}")
    lines.append(
        f"workload cost {report.workload_cost_before:,.1f} -> {report.workload_cost_after:,.1f}"
    )
    return "\n".join("-- " + line for line in lines)


def check(path: Path, *, update: bool) -> str | None:
    """Compare a fixture's expect section with the audit; a unified diff when they differ.

    With ``update`` the expect section is rewritten from the audit instead (the rest of the
    file is kept byte for byte) and None is returned.
    """
    case = read_case(path)
    actual = render(run(case))
    if update:
        path.write_text(case.head + actual + "\n")
        return None
    if actual == case.expect:
        return None
    diff = difflib.unified_diff(
        case.expect.splitlines(),
        actual.splitlines(),
        fromfile=f"{path.name} (expected)",
        tofile=f"{path.name} (actual)",
        lineterm="",
    )
    return "\n".join(diff)
