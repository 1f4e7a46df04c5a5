"""Hostile identifiers end to end: audit → drafted revision → Alembic (online and --sql + psql).

Each table, column or schema name below is one a hostile (or just unusual) schema can hold.
The audit runs as a person runs it (the ``dbarchitect`` process, a ``--queries`` workload,
validation so every statement is measured), writes its revisions into a scratch Alembic
project, and the revisions must build exactly the measured indexes, undo them, and leave
the canary table alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from alembic import command
from psycopg import sql

from app.adapters.alembic_dir import write_drafts
from app.adapters.pgserver import DebianPostgres
from app.adapters.target_pg import Session
from app.adapters.target_pg.snapshot import read_snapshot
from app.adapters.whatif import leaf_partitions
from app.engine.advisor.rules.common import drop_recommendation
from app.engine.advisor.rules.config import RuleConfig
from app.engine.advisor.rules.fk_without_index import fk_without_index
from app.engine.advisor.rules.invalid_index import invalid_index
from app.engine.draft import draft_revisions
from tests.alembic_env import BASELINE_REVISION, offline_sql, scratch_alembic, squawk

ROWS = 20_000
CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
INJECTION = "id)); DROP TABLE public.x; --"
#: 71 bytes; PostgreSQL keeps the first 63 (the 32nd "é" would straddle byte 63).
LONG_COLUMN = "a" + "é" * 35
#: 81 bytes; PostgreSQL keeps "T" and 31 "ü".
LONG_TABLE = "T" + "ü" * 40


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class Case:
    """One hostile relation: its schema, table, key column, and the statement that reads it."""

    label: str
    schema: str
    table: str
    column: str
    #: The key as the workload writes it ({c} is the quoted column).
    key: str = "{c}"
    #: Key values are text (for an expression key).
    text: bool = False
    #: The workload writes the names unquoted (PostgreSQL folds only ASCII letters).
    bare: bool = False

    @property
    def create(self) -> str:
        kind = "text" if self.text else "int"
        return (
            f"CREATE TABLE {q(self.schema)}.{q(self.table)} "
            f"({q(self.column)} {kind} NOT NULL, pad text NOT NULL);\n"
            f"INSERT INTO {q(self.schema)}.{q(self.table)} SELECT "
            + ("'user' || g || '@example.com'" if self.text else "g")
            + f", md5(g::text) FROM generate_series(1, {ROWS}) AS g;\n"
        )

    @property
    def query(self) -> str:
        value = "'user5@example.com'" if self.text else "5"
        name = (lambda n: n) if self.bare else q
        key = self.key.format(c=name(self.column))
        return f"SELECT pad FROM {name(self.schema)}.{name(self.table)} WHERE {key} = {value};"


CASES = (
    Case("injection", "public", "inj", INJECTION),
    Case("quotes", "public", 'Tab "Q"', 'Col With "Quote"'),
    Case("semicolon and dollars", "public", "semi;$$t", "a;b$$c"),
    Case("backslashes, colons, percent", "public", "back\\slash", "b\\:x :y %s \\N{BULLET}"),
    Case("parenthesis and dashes", "public", "paren)t", ") -- ("),
    Case("unicode", "public", "ünïcødé_列", "ünïcødé_列"),
    Case("unquoted non-ASCII capitals", "public", "Ünï_列", "Äpfel", bare=True),
    Case("63 bytes", "public", "é" * 31 + "t", "é" * 31 + "x"),
    Case("longer than 63 bytes", "public", LONG_TABLE, LONG_COLUMN),
    Case("reserved words", "public", "order", "user"),
    Case("schema with a space", "my schema", "my table", "select"),
    Case("expression key", "public", "emails", "Em ail", key="lower({c})", text=True),
)

CANARY = "CREATE TABLE public.x (keep int); INSERT INTO public.x VALUES (1);\n"

INDEXES = """
SELECT n.nspname, c.relname, pg_get_indexdef(i.indexrelid), i.indisvalid
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname IN ('public', 'my schema') AND i.indrelid <> 'public.alembic_version'::regclass
ORDER BY 1, 2
"""


def _indexes(dsn: str) -> dict[tuple[str, str], tuple[str, bool]]:
    with psycopg.connect(dsn) as conn:
        return {(r[0], r[1]): (r[2], r[3]) for r in conn.execute(INDEXES).fetchall()}


def _canary(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT to_regclass('public.x') IS NOT NULL").fetchone()
    return bool(row and row[0])


def _measured(dsn: str, rec: dict[str, object]) -> tuple[str, str]:
    """pg_get_indexdef of the index rec.ddl makes (built in a transaction, rolled back)."""
    ddl = str(rec["ddl"])
    assert ddl.startswith("CREATE INDEX CONCURRENTLY ")
    schema = str(rec["table"]).partition(".")[0]
    name = str(rec["index_name"])
    with psycopg.connect(dsn) as conn:
        conn.execute(("CREATE INDEX " + ddl.removeprefix("CREATE INDEX CONCURRENTLY ")).encode())
        row = conn.execute(
            "SELECT pg_get_indexdef(to_regclass(%s))",
            (f"{q(schema)}.{q(name)}",),
        ).fetchone()
        conn.rollback()
    assert row is not None and row[0] is not None
    return schema, row[0]


def _leave_invalid_leftovers(dsn: str, recs: list[dict[str, object]]) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for rec in recs:
            schema, _, table = str(rec["table"]).partition(".")
            index = sql.Identifier(schema, str(rec["index_name"]))
            conn.execute(
                sql.SQL("CREATE INDEX {} ON {} (pad)").format(
                    sql.Identifier(str(rec["index_name"])), sql.Identifier(schema, table)
                )
            )
            conn.execute(
                sql.SQL(
                    "UPDATE pg_index SET indisvalid = false WHERE indexrelid = {}::regclass"
                ).format(sql.Literal(index.as_string(conn)))
            )


@pytest.fixture
def target(fresh_db15: str) -> str:
    with psycopg.connect(fresh_db15, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION hypopg")
        conn.execute('CREATE SCHEMA "my schema"')
        script = CANARY + "".join(case.create for case in CASES) + "ANALYZE;"
        conn.execute(script.encode())
    return fresh_db15


def _audit(dsn: str, workload: Path, versions: Path) -> list[dict[str, object]]:
    done = subprocess.run(
        [
            sys.executable, "-m", "app.cli", "audit", "--dsn", dsn, "--queries", str(workload),
            "--validate-dsn", dsn, "--format", "json", "--out", str(versions),
            "--migrations-dir", str(versions), "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    recs: list[dict[str, object]] = report["recommendations"]
    return recs


def _psql(dsn: str, script: str, *, stop: bool = True) -> subprocess.CompletedProcess[str]:
    psql = DebianPostgres.find_bin_dir() / "psql"
    on_error = ["-v", "ON_ERROR_STOP=1"] if stop else []
    return subprocess.run(
        [str(psql), "-X", "-q", *on_error, "-d", dsn, "-f", "-"],
        input=script,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.timeout(240)
def test_hostile_names_draft_revisions_that_build_exactly_the_measured_indexes(
    target: str, tmp_path: Path
) -> None:
    workload = tmp_path / "workload.sql"
    workload.write_text("\n".join(case.query for case in CASES) + "\n")
    config, versions = scratch_alembic(tmp_path, target)
    command.stamp(config, BASELINE_REVISION)
    before = _indexes(target)

    recs = _audit(target, workload, versions)

    tables = {str(rec["table"]) for rec in recs}
    wanted = {f"{case.schema}.{case.table.encode()[:63].decode(errors='ignore')}" for case in CASES}
    assert tables == wanted, sorted(tables ^ wanted)
    assert all(rec["eligible"] for rec in recs), [rec["confidence_breakdown"] for rec in recs]
    assert all(
        isinstance(rec["validation"], dict) and rec["validation"]["skipped"] is None for rec in recs
    )
    expected = {}
    for rec in recs:
        schema, definition = _measured(target, rec)
        expected[(schema, str(rec["index_name"]))] = (definition, True)
    revisions = sorted(versions.glob("*.py"))
    assert len(revisions) == len(recs) + 1  # and the baseline
    for revision in revisions:
        compile(revision.read_text(), str(revision), "exec")

    # What a cancelled concurrent build leaves: an INVALID index of the same name, which
    # _drop_if_invalid (to_regclass of the quoted name, a bound parameter) must find.
    _leave_invalid_leftovers(target, recs)

    # (a) online, (c) exactly the measured indexes, (d) down and up again, (f) canary.
    command.upgrade(config, "head")
    assert _indexes(target) == {**before, **expected}
    assert _canary(target)
    command.downgrade(config, BASELINE_REVISION)
    assert _indexes(target) == before
    command.upgrade(config, "head")
    assert _indexes(target) == {**before, **expected}
    command.downgrade(config, BASELINE_REVISION)
    assert _canary(target)

    # (b) the --sql output through psql, (e) squawk-clean.
    script = offline_sql(config)
    linted = squawk(script, tmp_path, pg_version="15.0")
    assert linted.returncode == 0, linted.stdout + linted.stderr
    ran = _psql(target, script)
    assert ran.returncode == 0, ran.stderr
    assert _indexes(target) == {**before, **expected}
    assert _canary(target)


def test_the_injection_name_alone_reproduces_issue_13(target: str, tmp_path: Path) -> None:
    """The reported case: the drafted --sql, run by psql (which goes on after an error by
    default), used to drop public.x; now it builds the index and nothing else."""
    case = CASES[0]
    workload = tmp_path / "workload.sql"
    workload.write_text(case.query + "\n")
    config, versions = scratch_alembic(tmp_path, target)
    command.stamp(config, BASELINE_REVISION)
    (rec,) = _audit(target, workload, versions)
    assert rec["table"] == "public.inj"
    script = offline_sql(config)
    ran = _psql(target, script, stop=False)
    assert _canary(target)
    assert ran.returncode == 0 and "ERROR" not in ran.stderr, ran.stderr
    with psycopg.connect(target) as conn:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM pg_indexes WHERE indexdef LIKE {}").format(
                sql.Literal(f"%{q(INJECTION)}%")
            )
        ).fetchone()
    assert row == (1,)


HOSTILE_INDEX = 'drop :y \\: %s "q" ;--'
INVALID_INDEX = 'reindex "me" :z $$'
ENGINE_SEED = f"""
CREATE TABLE public.x (keep int);
CREATE SCHEMA "my schema";
CREATE TABLE public."order" ("user" int PRIMARY KEY, pad text NOT NULL);
INSERT INTO public."order" SELECT g, md5(g::text) FROM generate_series(1, 3000) AS g;
CREATE UNIQUE INDEX {q(HOSTILE_INDEX)} ON public."order" (("user" + 1)) INCLUDE (pad)
    WHERE pad <> 'a :b \\: %s';
CREATE INDEX {q(INVALID_INDEX)} ON public."order" (pad);
UPDATE pg_index SET indisvalid = false WHERE indexrelid = {sql_literal(q(INVALID_INDEX))}::regclass;
CREATE TABLE "my schema"."Part;$$" (
    "tenant id" int NOT NULL REFERENCES public."order" ("user"), at int NOT NULL
) PARTITION BY RANGE (at);
CREATE TABLE "my schema"."p1 -- x" PARTITION OF "my schema"."Part;$$"
    FOR VALUES FROM (0) TO (1500);
CREATE TABLE "my schema"."p:2 \\:y" PARTITION OF "my schema"."Part;$$"
    FOR VALUES FROM (1500) TO (3001);
INSERT INTO "my schema"."Part;$$" SELECT g, g FROM generate_series(1, 3000) AS g;
ANALYZE;
"""


def test_engine_drops_and_partitioned_builds_of_hostile_names_round_trip(
    fresh_db18: str, tmp_path: Path
) -> None:
    with psycopg.connect(fresh_db18, autocommit=True) as conn:
        conn.execute(ENGINE_SEED.encode())
    session = Session.open(fresh_db18)
    try:
        snapshot = read_snapshot(session)
    finally:
        session.close()
    (index,) = [i for i in snapshot.indexes if i.name == HOSTILE_INDEX]
    drop = drop_recommendation(snapshot, index, rule="unused_index", reasons=("unused",))
    (fk,) = fk_without_index(snapshot, now=CREATED, config=RuleConfig())
    assert fk.table == "my schema.Part;$$"
    (reindex,) = invalid_index(snapshot, now=CREATED, config=RuleConfig())
    assert reindex.action == "reindex" and reindex.index_name == INVALID_INDEX
    config, versions = scratch_alembic(tmp_path, fresh_db18)
    command.stamp(config, BASELINE_REVISION)
    drafts = draft_revisions(
        [drop, fk, reindex],
        down_revision=BASELINE_REVISION,
        created=CREATED,
        partitions=leaf_partitions(snapshot),
    )
    write_drafts(drafts, versions)
    before = _indexes(fresh_db18)

    rebuilt = ("public", INVALID_INDEX)
    assert before[rebuilt][1] is False

    command.upgrade(config, "head")
    after = _indexes(fresh_db18)
    assert after[rebuilt] == (before[rebuilt][0], True)
    before[rebuilt] = after[rebuilt]  # REINDEX has nothing to undo
    assert ("public", HOSTILE_INDEX) not in after
    built = {key: value for key, value in after.items() if key[0] == "my schema"}
    assert len(built) == 3 and all(valid for _, valid in built.values())  # parent + 2 leaves
    assert built[("my schema", fk.index_name)][0] == (
        f'CREATE INDEX {fk.index_name} ON ONLY "my schema"."Part;$$" USING btree ("tenant id")'
    )
    command.downgrade(config, BASELINE_REVISION)
    assert _indexes(fresh_db18) == before  # the drop's downgrade recreated it exactly
    command.upgrade(config, "head")
    assert _indexes(fresh_db18) == after
    command.downgrade(config, BASELINE_REVISION)

    script = offline_sql(config)
    linted = squawk(script, tmp_path)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    ran = _psql(fresh_db18, script)
    assert ran.returncode == 0, ran.stderr
    assert _indexes(fresh_db18) == after
    assert _canary(fresh_db18)


def test_a_schema_whose_name_holds_a_dot_is_left_out_of_the_snapshot(fresh_db18: str) -> None:
    with psycopg.connect(fresh_db18, autocommit=True) as conn:
        conn.execute(
            'CREATE SCHEMA "my.app"; CREATE TABLE "my.app".t (a int);'
            'CREATE SCHEMA my; CREATE TABLE my."app.t" (b int);'
        )
    session = Session.open(fresh_db18)
    try:
        snapshot = read_snapshot(session)
    finally:
        session.close()
    # Both would be keyed "my.app.t"; only the one the key's first dot splits right is kept.
    assert [(t.schema, t.name) for t in snapshot.tables if t.qualified == "my.app.t"] == [
        ("my", "app.t")
    ]
