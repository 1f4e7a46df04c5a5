"""FixDraft revisions run by real Alembic on PostgreSQL 18: upgrade, downgrade, upgrade, squawk."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from alembic import command

from app.adapters.alembic_dir import chain_head, write_drafts
from app.engine.ddl import create_index_sql
from app.engine.draft import FixDraft, draft_revisions
from app.engine.model import Candidate, IndexKey, Recommendation
from tests.alembic_env import offline_sql, scratch_alembic, squawk
from tests.recs import AUDITLOG, create_rec

SEED = """
CREATE TABLE "AuditLog" (
    id bigint PRIMARY KEY, "userId" int NOT NULL, email text NOT NULL,
    "createdAt" timestamptz NOT NULL, payload text, deleted_at timestamptz
);
INSERT INTO "AuditLog"
SELECT g, g % 500, 'User' || g || '@Example.com',
       timestamptz '2025-01-01' + g * interval '1 minute', md5(g::text),
       CASE WHEN g % 10 = 0 THEN timestamptz '2025-06-01' END
FROM generate_series(1, 10000) AS g;
CREATE INDEX "AuditLog_payload_idx" ON "AuditLog" (payload DESC) WHERE deleted_at IS NULL;
CREATE TABLE events (id bigint NOT NULL, tenant_id int NOT NULL, at date NOT NULL)
    PARTITION BY RANGE (at);
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE "Events_2026" PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO events
SELECT g, g % 100, date '2025-01-01' + (g % 700) FROM generate_series(1, 10000) AS g;
ANALYZE;
"""

CATALOG = """
SELECT c.relname, pg_get_indexdef(i.indexrelid), i.indisvalid
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class t ON t.oid = i.indrelid
WHERE n.nspname = 'public' AND t.relname <> 'alembic_version'
ORDER BY 1
"""

CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
CREATE_REC = create_rec(
    AUDITLOG,
    "AuditLog_userId_lower_email_createdAt_idx",
    reasons=('SELECT … WHERE "userId" = $1 AND lower(email) = $2 ORDER BY … 40× faster',),
)
PARTITIONED_REC = Recommendation(
    action="create_index",
    table="public.events",
    columns=("tenant_id", "at"),
    index_name="events_tenant_id_at_idx",
    ddl=create_index_sql(
        Candidate("public.events", (IndexKey("tenant_id"), IndexKey("at"))),
        "events_tenant_id_at_idx",
        concurrently=False,
    ),
    descending=(False, False),
)
PARTITIONS = {"public.events": ("public.events_2025", "public.Events_2026")}

Catalog = list[tuple[str, str, bool]]


def _catalog(dsn: str) -> Catalog:
    with psycopg.connect(dsn) as conn:
        return [(r[0], r[1], r[2]) for r in conn.execute(CATALOG).fetchall()]


def _drop_rec(dsn: str) -> Recommendation:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("""SELECT pg_get_indexdef('public."AuditLog_payload_idx"'::regclass)""")
        definition = row.fetchone()
    assert definition is not None
    return Recommendation(
        action="drop_index",
        table="public.AuditLog",
        columns=("payload",),
        index_name="AuditLog_payload_idx",
        ddl='DROP INDEX CONCURRENTLY IF EXISTS public."AuditLog_payload_idx"',
        where="deleted_at IS NULL",
        descending=(True,),
        definition=definition[0],
        rule="unused_index",
    )


@pytest.fixture
def seeded(fresh_db18: str) -> str:
    with psycopg.connect(fresh_db18, autocommit=True) as conn:
        conn.execute(SEED)
    return fresh_db18


def _drafts(dsn: str, versions: Path) -> tuple[FixDraft, ...]:
    recs = [CREATE_REC, _drop_rec(dsn), PARTITIONED_REC]
    drafts = draft_revisions(
        recs, down_revision=chain_head(versions), created=CREATED, partitions=PARTITIONS
    )
    write_drafts(drafts, versions)
    return drafts


def test_upgrade_downgrade_upgrade_round_trips(seeded: str, tmp_path: Path) -> None:
    config, versions = scratch_alembic(tmp_path, seeded)
    drafts = _drafts(seeded, versions)
    assert drafts[0].down_revision == "0000baseline"
    assert chain_head(versions) == drafts[-1].revision
    before = _catalog(seeded)

    command.upgrade(config, "head")
    after = _catalog(seeded)
    names = {name: (definition, valid) for name, definition, valid in after}
    assert "AuditLog_payload_idx" not in names
    created = names["AuditLog_userId_lower_email_createdAt_idx"]
    assert created == (
        'CREATE INDEX "AuditLog_userId_lower_email_createdAt_idx" ON public."AuditLog" '
        'USING btree ("userId", lower(email), "createdAt" DESC) INCLUDE (payload) '
        "WHERE (deleted_at IS NULL)",
        True,
    )
    assert names["events_tenant_id_at_idx"] == (
        "CREATE INDEX events_tenant_id_at_idx ON ONLY public.events USING btree (tenant_id, at)",
        True,
    )
    partition_indexes = [n for n in names if n.startswith(("events_2025_", "Events_2026_"))]
    assert len(partition_indexes) == 2
    assert all(valid for _, _, valid in after)

    command.downgrade(config, "base")
    assert _catalog(seeded) == before

    command.upgrade(config, "head")
    assert _catalog(seeded) == after


def test_offline_sql_passes_squawk(seeded: str, tmp_path: Path) -> None:
    config, versions = scratch_alembic(tmp_path, seeded)
    _drafts(seeded, versions)
    sql = offline_sql(config)
    assert "CREATE INDEX CONCURRENTLY IF NOT EXISTS" in sql
    assert "DROP INDEX CONCURRENTLY IF EXISTS" in sql
    assert "CREATE TABLE alembic_version" not in sql
    result = squawk(sql, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_upgrade_replaces_an_invalid_leftover_of_a_failed_build(
    seeded: str, tmp_path: Path
) -> None:
    # What a CREATE INDEX CONCURRENTLY cancelled by lock_timeout leaves behind: IF NOT EXISTS
    # alone would keep it and the migration would "succeed" without a usable index.
    with psycopg.connect(seeded, autocommit=True) as conn:
        conn.execute('CREATE INDEX "AuditLog_userId_lower_email_createdAt_idx" ON "AuditLog" (id)')
        conn.execute(
            "UPDATE pg_index SET indisvalid = false "
            """WHERE indexrelid = 'public."AuditLog_userId_lower_email_createdAt_idx"'::regclass"""
        )
    config, versions = scratch_alembic(tmp_path, seeded)
    _drafts(seeded, versions)

    command.upgrade(config, "head")

    names = {name: (definition, valid) for name, definition, valid in _catalog(seeded)}
    definition, valid = names["AuditLog_userId_lower_email_createdAt_idx"]
    assert valid
    assert '("userId", lower(email), "createdAt" DESC)' in definition


#: A project's own revision after ours, in the same `alembic upgrade` run.
PERCENT_REVISION = '''"""The project's next revision: text with a percent sign."""

from alembic import op

revision = "ffffpercent"
down_revision = {parent!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE TABLE public.notes (v text)")
    op.execute("INSERT INTO public.notes VALUES ('50% off')")


def downgrade() -> None:
    op.execute("DROP TABLE public.notes")
'''


def test_later_revisions_in_the_same_run_are_unaffected(seeded: str, tmp_path: Path) -> None:
    # Our _run() executes without parameter processing; that must not stick to the shared
    # connection, or the next revision's '50%' would reach the server as '50%%'.
    config, versions = scratch_alembic(tmp_path, seeded)
    drafts = _drafts(seeded, versions)
    (versions / "ffffpercent_notes.py").write_text(
        PERCENT_REVISION.format(parent=drafts[-1].revision)
    )
    command.upgrade(config, "head")
    with psycopg.connect(seeded) as conn:
        assert conn.execute("SELECT v FROM public.notes").fetchall() == [("50% off",)]
