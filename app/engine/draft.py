"""FixDraft: one recommendation as the source text of an online-safe Alembic revision."""
# Long module: the revision template and its safety checks must be read together.

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from app.engine.ddl import (
    MAX_IDENTIFIER_BYTES,
    drop_index_sql,
    quote_qualified,
    restate_create_index,
)
from app.engine.model import Recommendation, recommendation_id

#: Give up on a lock after this long instead of queueing every other query behind us.
LOCK_TIMEOUT = "5s"
#: Concurrent builds of big indexes legitimately take a while; still bounded, never infinite.
STATEMENT_TIMEOUT = "2h"

_CREATE_INDEX = re.compile(r"^\s*CREATE\s+(UNIQUE\s+)?INDEX\s+", re.IGNORECASE)
_SLUG_MAX = 60
#: Generated lines stay within the usual 100 columns where the SQL allows it.
_LINE_MAX = 100
#: Statements sit in ``def upgrade():`` + ``with ...:``.
_BODY_INDENT = " " * 8


class DraftRefused(ValueError):
    """The recommendation cannot be written as a safe, exactly reversible revision."""


@dataclass(frozen=True)
class FixDraft:
    """The Alembic revision file written for one recommendation."""

    revision: str
    down_revision: str | None
    filename: str
    source: str


def revision_id(rec: Recommendation) -> str:
    """Deterministic 12-hex Alembic revision id derived from ``recommendation_id(rec)``."""
    return hashlib.sha256(recommendation_id(rec).encode()).hexdigest()[:12]


def draft_revisions(
    recs: Sequence[Recommendation],
    *,
    down_revision: str | None,
    created: datetime,
    partitions: Mapping[str, Sequence[str]] | None = None,
) -> tuple[FixDraft, ...]:
    """One revision per recommendation, chained in order onto ``down_revision``."""
    drafts: list[FixDraft] = []
    parent = down_revision
    for rec in recs:
        leaves = (partitions or {}).get(rec.table, ())
        draft = draft_revision(rec, down_revision=parent, created=created, partitions=leaves)
        drafts.append(draft)
        parent = draft.revision
    return tuple(drafts)


def draft_revision(
    rec: Recommendation,
    *,
    down_revision: str | None,
    created: datetime,
    partitions: Sequence[str] = (),
) -> FixDraft:
    """The revision for ``rec``; ``partitions`` lists the leaf partitions of a partitioned table.

    Raises :class:`DraftRefused` when no exact, online-safe revision can be written.
    """
    revision = revision_id(rec)
    if rec.action == "create_index":
        if partitions:
            upgrade, downgrade = _create_partitioned(rec, partitions), _drop_partitioned(rec)
        else:
            upgrade, downgrade = _create(rec), _drop(rec)
    elif rec.action == "drop_index":
        if partitions:
            raise DraftRefused(
                f"{rec.index_name}: dropping an index of a partitioned table cannot be undone "
                "exactly with concurrent builds; drop it by hand"
            )
        upgrade, downgrade = _drop(rec), _recreate(rec)
    elif rec.action == "reindex":
        upgrade = [_execute(f"REINDEX INDEX CONCURRENTLY {_qualified_index(rec)}")]
        downgrade = ["# REINDEX only rebuilds the index: there is nothing to undo."]
    else:
        raise DraftRefused(f"unknown action {rec.action!r}")
    source = _module(rec, revision, down_revision, created, upgrade, downgrade)
    filename = f"{revision}_{_slug(rec)}.py"
    return FixDraft(
        revision=revision, down_revision=down_revision, filename=filename, source=source
    )


# ---------------------------------------------------------------------- statements


def _lit(text: str) -> str:
    """A Python string literal, double-quoted unless that needs escaping and single does not."""
    if '"' in text and "'" not in text:
        return repr(text)
    return json.dumps(text, ensure_ascii=False)  # JSON escapes are valid Python escapes


_BREAKS = re.compile(r"(?=\n| ON | USING | INCLUDE | WHERE | ATTACH PARTITION )")


def _execute(sql: str) -> str:
    """``_run("...")``, wrapped as ruff format would when the line gets long."""
    line = f"_run({_lit(sql)})"
    if len(_BODY_INDENT + line) <= _LINE_MAX:
        return line
    pieces = [_lit(sql)]
    if len(_BODY_INDENT + "    " + pieces[0]) > _LINE_MAX:
        pieces = [_lit(p) for p in _BREAKS.split(sql) if p]
    return "\n".join(["_run(", *(f"    {p}" for p in pieces), ")"])


# op.execute() would read the text as sqlalchemy.text(): ":word" (in a quoted name, or in a
# string constant such as '12:30') would become a bind parameter and "\\:" would lose its
# backslash. _run() hands the statement over untouched, online and in --sql output alike.
_RUN = '''

def _run(statement: str) -> None:
    """Run one SQL statement exactly as written (no bind-parameter or percent processing)."""
    context = op.get_context()
    if context.as_sql:
        context.impl.static_output(statement + context.impl.command_terminator)
    else:
        # Per call: Connection.execution_options() would change the shared connection.
        op.get_bind().exec_driver_sql(statement, execution_options={"no_parameters": True})
'''

_HELPER = '''

def _drop_if_invalid(qualified_index: str) -> None:
    """A failed concurrent build leaves an INVALID index, which IF NOT EXISTS would keep."""
    if op.get_context().as_sql:
        return
    invalid = (
        op.get_bind()
        .execute(
            sa.text("SELECT NOT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:name)"),
            {"name": qualified_index},
        )
        .scalar()
    )
    if invalid:
        _run(f"DROP INDEX CONCURRENTLY IF EXISTS {qualified_index}")
'''


def _drop_if_invalid(qualified_index: str) -> str:
    return f"_drop_if_invalid({_lit(qualified_index)})"


def _split(qualified: str) -> tuple[str, str]:
    schema, _, name = qualified.partition(".")
    return schema, name


def _index_of(table: str, index_name: str) -> str:
    """``schema.index`` unquoted: an index lives in its table's schema."""
    return f"{_split(table)[0]}.{index_name}"


def _qualified_index(rec: Recommendation) -> str:
    """The index's quoted ``schema.name``."""
    return quote_qualified(_index_of(rec.table, rec.index_name))


def _restated(
    rec: Recommendation,
    *,
    concurrently: bool,
    if_not_exists: bool,
    on: tuple[str, str] | None = None,
    only: bool = False,
) -> str:
    """``rec.ddl`` (the statement that was measured) with other options; keys etc. verbatim."""
    try:
        return restate_create_index(
            rec.ddl,
            name=rec.index_name,
            table=rec.table,
            concurrently=concurrently,
            if_not_exists=if_not_exists,
            on=on,
            only=only,
        )
    except ValueError as err:
        raise DraftRefused(f"{rec.index_name}: {err}") from None


def _create(rec: Recommendation) -> list[str]:
    """The measured statement, concurrently and idempotently, after an invalid leftover goes."""
    return [
        _drop_if_invalid(_qualified_index(rec)),
        _execute(_restated(rec, concurrently=True, if_not_exists=True)),
    ]


def partition_index_name(index_name: str, partition: str) -> str:
    """Deterministic name (≤ 63 bytes) of the index built on one partition.

    >>> partition_index_name("events_tenant_id_idx", "public.events_2025")
    'events_2025_events_tenant_id_idx_6800e720'
    """
    digest = hashlib.sha256(f"{partition}|{index_name}".encode()).hexdigest()[:8]
    stem = f"{_split(partition)[1]}_{index_name}"
    room = MAX_IDENTIFIER_BYTES - len(digest) - 1
    stem = stem.encode()[:room].decode(errors="ignore").rstrip("_")
    return f"{stem}_{digest}"


def _create_partitioned(rec: Recommendation, partitions: Sequence[str]) -> list[str]:
    """``ON ONLY`` parent (catalog only), concurrent build per partition, then attach each."""
    parent = _qualified_index(rec)
    lines = [
        "# ON ONLY creates the parent index without building it (an instant catalog change);",
        "# it becomes valid once every partition's index is attached. Partitioned tables",
        "# cannot be indexed CONCURRENTLY, hence the squawk-ignore.",
        _execute(
            "-- squawk-ignore require-concurrent-index-creation\n"
            + _restated(rec, concurrently=False, if_not_exists=True, only=True)
        ),
    ]
    for partition in partitions:
        child = partition_index_name(rec.index_name, partition)
        child_qualified = quote_qualified(_index_of(partition, child))
        built = _restated(rec, on=(child, partition), concurrently=True, if_not_exists=True)
        lines.append(_drop_if_invalid(child_qualified))
        lines.append(_execute(built))
        lines.append(_execute(f"ALTER INDEX {parent} ATTACH PARTITION {child_qualified}"))
    return lines


def _drop(rec: Recommendation) -> list[str]:
    return [_execute(drop_index_sql(_index_of(rec.table, rec.index_name)))]


def _drop_partitioned(rec: Recommendation) -> list[str]:
    return [
        "# Dropping the parent index drops the partitions' attached indexes with it;",
        "# a partitioned index cannot be dropped CONCURRENTLY, hence the squawk-ignore.",
        _execute(
            "-- squawk-ignore require-concurrent-index-deletion\n"
            + drop_index_sql(_index_of(rec.table, rec.index_name), concurrently=False)
        ),
    ]


_NAME = re.compile(r'"(?:[^"]|"")*"|[^\s"]+')


def _definition_parts(definition: str) -> tuple[str, str, str, str]:
    """``pg_get_indexdef`` text as (``"UNIQUE "`` or ``""``, index name, the text from the
    name on, the text after the name).

    The name is read as a token (quoted with ``""`` escapes, or bare), so nothing a quoted
    name holds — ``ON ONLY``, ``;``, ``--`` — is mistaken for part of the statement.
    """
    match = _CREATE_INDEX.match(definition)
    name = _NAME.match(definition, match.end()) if match else None
    if match is None or name is None:
        raise DraftRefused(f"not a CREATE INDEX statement: {definition[:80]!r}")
    token = name.group()
    unquoted = token[1:-1].replace('""', '"') if token.startswith('"') else token
    unique = "UNIQUE " if match.group(1) else ""
    return unique, unquoted, definition[name.start() :], definition[name.end() :]


def partitioned_definition(definition: str) -> bool:
    """The definition is a partitioned table's index (``… ON ONLY …``, after the name)."""
    after_name = _definition_parts(definition)[3]
    return bool(re.match(r"\s+ON\s+ONLY\s", after_name, re.IGNORECASE))


def concurrent_definition(definition: str, *, index_name: str | None = None) -> str:
    """``pg_get_indexdef`` text rewritten as ``CREATE [UNIQUE] INDEX CONCURRENTLY IF NOT EXISTS``.

    Only the leading keywords change; the name and all after it are kept verbatim.
    ``index_name``, when given, must be the name the definition creates.

    >>> concurrent_definition("CREATE UNIQUE INDEX a_idx ON public.a USING btree (x)")
    'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS a_idx ON public.a USING btree (x)'
    """
    unique, name, rest, _ = _definition_parts(definition)
    if index_name is not None and name != index_name:
        raise DraftRefused(f"{index_name}: its recorded definition creates {name!r} instead")
    return f"CREATE {unique}INDEX CONCURRENTLY IF NOT EXISTS {rest}"


def _recreate(rec: Recommendation) -> list[str]:
    if not rec.definition:
        raise DraftRefused(f"{rec.index_name}: no definition, so a downgrade could not recreate it")
    if partitioned_definition(rec.definition):
        raise DraftRefused(f"{rec.index_name}: an index of a partitioned table; drop it by hand")
    return [
        "# Recreates the index exactly as pg_get_indexdef described it.",
        _drop_if_invalid(_qualified_index(rec)),
        _execute(concurrent_definition(rec.definition, index_name=rec.index_name)),
    ]


# ---------------------------------------------------------------------- module


def _timed(body: list[str]) -> list[str]:
    """Statements inside an autocommit block, with short lock / bounded statement timeouts."""
    return [
        "with op.get_context().autocommit_block():",
        "    " + _execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'"),
        "    " + _execute(f"SET statement_timeout = '{STATEMENT_TIMEOUT}'"),
        *(_indent(line) for line in body),
        f"    {_execute('RESET statement_timeout')}",
        f"    {_execute('RESET lock_timeout')}",
    ]


def _function(name: str, body: list[str], *, timed: bool) -> list[str]:
    lines = _timed(body) if timed else body
    return [f"def {name}() -> None:", *(_indent(line) for line in lines)]


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" if line else "" for line in text.split("\n"))


def _slug(rec: Recommendation) -> str:
    verb = {"create_index": "add_index", "drop_index": "drop_index"}.get(rec.action, rec.action)
    if rec.action == "create_index":
        subject = [_split(rec.table)[1], *rec.columns]
    else:
        subject = [rec.index_name]
    text = re.sub(r"[^a-z0-9]+", "_", "_".join([verb, *subject]).lower()).strip("_")
    return text[:_SLUG_MAX].rstrip("_")


def _docstring_body(text: str) -> str:
    """Text that reads back as itself inside a triple-quoted docstring, whatever it holds.

    Backslashes are escaped, so no escape sequence can form; so are double quotes next to
    another one, so no closing quotes can form; so is every character that is invisible or
    could be taken for a line break.
    """
    out = []
    for i, char in enumerate(text):
        if char == "\\":
            out.append("\\\\")
        elif char == '"' and '"' in text[max(i - 1, 0) : i] + text[i + 1 : i + 2]:
            out.append('\\"')
        elif char != "\n" and (not char.isprintable() or char in "\u2028\u2029"):
            out.append(repr(char)[1:-1] if ord(char) > 0xFF else f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return "".join(out)


def _docstring(rec: Recommendation, revision: str, down: str | None, created: datetime) -> str:
    what = {
        "create_index": f"Add index {rec.index_name} on {rec.table}",
        "drop_index": f"Drop index {rec.index_name} on {rec.table}",
        "reindex": f"Rebuild index {rec.index_name} on {rec.table}",
    }[rec.action]
    lines = [
        what,
        "",
        f"Recommendation: {recommendation_id(rec)} (rule {rec.rule})",
        f"DDL: {rec.ddl}",
    ]
    if rec.definition:
        lines.append(f"Original definition: {rec.definition}")
    if rec.reasons:
        lines += ["", "Why:", *(f"- {reason}" for reason in rec.reasons)]
    lines += ["", f"Revision ID: {revision}", f"Revises: {down}" if down else "Revises:"]
    lines.append(f"Create Date: {created.isoformat(sep=' ')}")
    body = _docstring_body("\n".join(lines))
    return f'"""{body}\n"""'


def _module(
    rec: Recommendation,
    revision: str,
    down: str | None,
    created: datetime,
    upgrade: list[str],
    downgrade: list[str],
) -> str:
    comments_only = all(line.startswith("#") for line in downgrade)
    helper = any(line.startswith("_drop_if_invalid(") for line in upgrade + downgrade)
    lines = [
        _docstring(rec, revision, down, created),
        "",
        "from __future__ import annotations",
        "",
    ]
    if helper:
        lines.append("import sqlalchemy as sa")
    lines += [
        "from alembic import op",
        "",
        "# revision identifiers, used by Alembic.",
        f"revision = {_lit(revision)}",
        f"down_revision = {_lit(down) if down is not None else 'None'}",
        "branch_labels = None",
        "depends_on = None",
        "",
        "",
        _RUN.strip("\n"),
        "",
        "",
        *([_HELPER.strip("\n"), "", ""] if helper else []),
        *_function("upgrade", upgrade, timed=True),
        "",
        "",
        *_function("downgrade", downgrade, timed=not comments_only),
    ]
    if comments_only:
        lines.append("    pass")
    return "\n".join(lines) + "\n"
