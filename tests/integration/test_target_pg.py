"""The target gate against real servers: session safety, snapshot, workload, error messages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from structlog.testing import capture_logs

from app.adapters import target_pg
from app.adapters.errors import BadDsn, MissingPrerequisite, TargetQueryError, TargetUnavailable
from app.adapters.pgserver import EmbeddedPostgres, PgServer
from app.adapters.whatif import RolledBackBuildOracle
from app.engine.advisor.whatif import CostRequest
from app.engine.model import Candidate, Index, IndexKey, QuerySource, RelKind, Snapshot, Table

SCHEMA = """
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE DOMAIN email AS text;
CREATE DOMAIN work_email AS email;
CREATE TABLE "UserAccounts" (
    id bigint PRIMARY KEY,
    "Email" work_email NOT NULL,
    name varchar(40),
    profile json,
    settings jsonb,
    location point,
    doc xml,
    tags text[],
    blobs json[],
    feeling mood,
    during tsrange,
    addr inet,
    created_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
CREATE UNIQUE INDEX useraccounts_email_key ON "UserAccounts" (lower("Email"));
CREATE INDEX useraccounts_recent ON "UserAccounts" (created_at DESC, id)
    INCLUDE (name) WHERE deleted_at IS NULL;
CREATE TABLE posts (
    id serial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES "UserAccounts" (id),
    title text NOT NULL,
    CONSTRAINT posts_user_title UNIQUE (user_id, title)
);
CREATE TABLE post_tags (
    title text,
    user_id bigint,
    tag text,
    CONSTRAINT post_tags_post_fk FOREIGN KEY (title, user_id) REFERENCES posts (title, user_id)
);
ALTER TABLE posts ADD CONSTRAINT posts_title_user UNIQUE (title, user_id);
CREATE VIEW active_users AS
    SELECT id, "Email" FROM "UserAccounts" WHERE deleted_at IS NULL;
CREATE MATERIALIZED VIEW post_counts AS
    SELECT user_id, count(*) AS n FROM posts GROUP BY user_id;
CREATE TABLE events (id bigint, at date NOT NULL, kind text) PARTITION BY RANGE (at);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE INDEX events_at_idx ON events (at);
CREATE SCHEMA audit;
CREATE TABLE audit.log (id int, note text);
INSERT INTO "UserAccounts" (id, "Email", name, created_at, deleted_at)
    SELECT g, 'u' || g || '@example.com', 'name ' || (g % 10), now(),
           CASE WHEN g % 4 = 0 THEN now() END
    FROM generate_series(1, 2000) AS g;
INSERT INTO posts (user_id, title)
    SELECT g % 2000 + 1, 'post ' || g FROM generate_series(1, 3000) g;
INSERT INTO events SELECT g, DATE '2024-06-01' + (g % 400), 'k' || (g % 3)
    FROM generate_series(1, 4000) g;
REFRESH MATERIALIZED VIEW post_counts;
CREATE EXTENSION pg_stat_statements;
ANALYZE;
"""


NONE: frozenset[Candidate] = frozenset()


def _seed(dsn: str, script: str = SCHEMA) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(script)


@pytest.fixture
def seeded18(fresh_db18: str) -> str:
    _seed(fresh_db18)
    return fresh_db18


@pytest.fixture
def target18(seeded18: str) -> Iterator[target_pg.Target]:
    with target_pg.connect(seeded18) as target:
        yield target


def _table(snapshot: Snapshot, name: str) -> Table:
    table = snapshot.table(name)
    assert table is not None, name
    return table


def _index(snapshot: Snapshot, name: str) -> Index:
    found = [i for i in snapshot.indexes if i.name == name]
    assert len(found) == 1, name
    return found[0]


# ------------------------------------------------------------------------------- session


def test_session_is_read_only_tagged_and_time_limited(seeded18: str) -> None:
    with target_pg.connect(seeded18, statement_timeout_ms=1234, lock_timeout_ms=567) as target:
        row = target.one(
            "SELECT current_setting('application_name') AS app,"
            " current_setting('statement_timeout') AS st,"
            " current_setting('lock_timeout') AS lt,"
            " current_setting('default_transaction_read_only') AS ro,"
            " current_setting('idle_in_transaction_session_timeout') AS idle"
        )
        assert row == {
            "app": "dbarchitect",
            "st": "1234ms",
            "lt": "567ms",
            "ro": "on",
            "idle": "1min",
        }
        with pytest.raises(TargetQueryError) as caught:
            target.rows("CREATE TABLE sneaky (a int)")
        assert caught.value.sqlstate == "25006"  # read_only_sql_transaction
        with pytest.raises(TargetQueryError):
            target.rows("INSERT INTO audit.log VALUES (1, 'x')")
        # The session stays usable after a refused statement.
        assert target.one("SELECT 1 AS one") == {"one": 1}
        # The rolled-back write path is the only one that can write, and it never commits.
        with target.read_write_transaction(lock_timeout_ms=100, statement_timeout_ms=1000):
            target.rows("INSERT INTO audit.log VALUES (1, 'x')")
        assert target.one("SELECT count(*) AS n FROM audit.log") == {"n": 0}
        assert not target.in_transaction


def test_statement_timeout_becomes_our_error(seeded18: str) -> None:
    with target_pg.connect(seeded18, statement_timeout_ms=50) as target:
        with pytest.raises(TargetQueryError) as caught:
            target.rows("SELECT pg_sleep(1)")
        assert caught.value.timed_out
        assert "statement_timeout" in str(caught.value)


def test_own_statements_carry_the_tag(seeded18: str) -> None:
    with target_pg.connect(seeded18) as target:
        row = target.one("SELECT current_query() AS q")
    assert row["q"].startswith(target_pg.TAG)
    assert row["q"].rstrip().endswith(target_pg.TAG)


# ------------------------------------------------------------------------------- errors


def test_unreachable_port_is_target_unavailable_without_secrets() -> None:
    dsn = "postgresql://auditor:Sup3rSecretPw@127.0.0.1:1/app"
    with pytest.raises(TargetUnavailable) as caught:
        target_pg.connect(dsn, connect_timeout_s=2)
    message = str(caught.value)
    assert "Sup3rSecretPw" not in message
    assert dsn not in message
    assert "127.0.0.1:1" in message
    assert "refused" in message
    assert not isinstance(caught.value, BadDsn)


def test_connect_failure_is_logged_at_info_for_the_caller_to_report() -> None:
    """The CLI prints the error itself: a warning-level log line doubled it on the terminal."""
    with capture_logs() as events, pytest.raises(TargetUnavailable):
        target_pg.connect("postgresql://auditor:Sup3rSecretPw@127.0.0.1:1/app", connect_timeout_s=2)
    (failed,) = [e for e in events if e["event"] == "target.connect_failed"]
    assert failed["log_level"] == "info"
    assert "Sup3rSecretPw" not in str(failed)


def test_unknown_database_and_role_say_what_to_check(pg18: PgServer) -> None:
    dsn = pg18.dsn("no_such_db")
    with pytest.raises(TargetUnavailable) as caught:
        target_pg.connect(dsn)
    assert "'no_such_db' does not exist" in str(caught.value)
    assert str(conninfo_to_dict(dsn)["password"]) not in str(caught.value)
    dsn = make_conninfo(pg18.dsn(), user="nobody_here", password="Sup3rSecretPw")
    with pytest.raises(TargetUnavailable) as caught:
        target_pg.connect(dsn)
    # The server asks every user for a password: it never says whether the role exists.
    assert "authentication failed for user 'nobody_here'" in str(caught.value)
    assert "Sup3rSecretPw" not in str(caught.value)


def test_malformed_dsn_echoes_nothing() -> None:
    with pytest.raises(BadDsn) as caught:
        target_pg.connect("host=127.0.0.1 password=Sup3rSecretPw dbname")
    assert "Sup3rSecretPw" not in str(caught.value)
    assert "could not be parsed" in str(caught.value)


@pytest.mark.parametrize(
    ("dsn", "named"),
    [
        ("host=127.0.0.1 port=notanumber password=Sup3rSecretPw", "'port'"),
        # psycopg resolves host names itself: a bad port must not look like a DNS failure.
        ("host=localhost port=notanumber password=Sup3rSecretPw", "'port'"),
        ("postgresql://auditor:Sup3rSecretPw@127.0.0.1:99999/app", "'port'"),
        # libpq quotes the rejected value: it must not reach the message.
        ("host=127.0.0.1 port=1 sslmode=Sup3rSecretPw", "'sslmode'"),
        ("host=127.0.0.1 port=1 target_session_attrs=Sup3rSecretPw", "'target_session_attrs'"),
        ("hostaddr=Sup3rSecretPw port=1", "'hostaddr'"),
        ("host=127.0.0.1,127.0.0.2 port=1,2,3 password=Sup3rSecretPw", "hosts"),
    ],
)
def test_malformed_dsn_is_bad_dsn_naming_the_option(dsn: str, named: str) -> None:
    """libpq rejects these before connecting: bad usage (CLI exit 2), not an unreachable target."""
    with pytest.raises(BadDsn) as caught:
        target_pg.connect(dsn, connect_timeout_s=2)
    message = str(caught.value)
    assert isinstance(caught.value, TargetUnavailable)
    assert message.startswith("the target connection string is malformed")
    assert named in message
    assert "Sup3rSecretPw" not in message


def test_pg_stat_statements_not_installed(fresh_db18: str) -> None:
    with target_pg.connect(fresh_db18) as target, pytest.raises(MissingPrerequisite) as caught:
        target.workload()
    assert "CREATE EXTENSION pg_stat_statements;" in str(caught.value)


def test_pg_stat_statements_not_loaded(server_dir: Path) -> None:
    with EmbeddedPostgres(server_dir, fast=True, preload=()) as server:
        dsn = server.create_database("plain", extensions=["pg_stat_statements"])
        with target_pg.connect(dsn) as target:
            with pytest.raises(MissingPrerequisite) as caught:
                target.workload()
            assert target.stat_statements_reset_time() is None
    message = str(caught.value)
    assert "shared_preload_libraries = 'pg_stat_statements'" in message
    assert "restart" in message


def test_hidden_statement_text_asks_for_pg_read_all_stats(seeded18: str) -> None:
    with psycopg.connect(seeded18, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS dba_auditor")
        conn.execute("CREATE ROLE dba_auditor LOGIN PASSWORD 'auditor-pw'")
        conn.execute("SELECT count(*) FROM posts WHERE user_id = 7")
    try:
        auditor = make_conninfo(seeded18, user="dba_auditor", password="auditor-pw")
        with target_pg.connect(auditor) as target, pytest.raises(MissingPrerequisite) as caught:
            target.workload()
        assert "GRANT pg_read_all_stats TO dba_auditor;" in str(caught.value)
    finally:
        with psycopg.connect(seeded18, autocommit=True) as conn:
            conn.execute("DROP OWNED BY dba_auditor")
            conn.execute("DROP ROLE dba_auditor")


# ------------------------------------------------------------------------------- snapshot


def test_snapshot_tables_and_kinds(target18: target_pg.Target) -> None:
    snap = target18.snapshot()
    assert snap.server_version_num >= 180000
    assert snap.server_version.startswith("18")
    assert snap.database == target18.database
    assert snap.search_path == ("public",)
    assert snap.stats_reset is None or snap.stats_reset.tzinfo is not None
    assert snap.taken_at.tzinfo is not None
    # The embedded PostgreSQL 18 ships no HypoPG.
    assert (snap.hypopg, snap.hypopg_available) == (False, False)

    names = {t.qualified for t in snap.tables}
    assert {
        "public.UserAccounts",
        "public.posts",
        "public.post_tags",
        "public.active_users",
        "public.post_counts",
        "public.events",
        "public.events_2024",
        "public.events_2025",
        "audit.log",
    } <= names
    # Extension-owned views (pg_stat_statements) and system catalogs stay out.
    assert not any(n.startswith(("pg_catalog.", "information_schema.")) for n in names)
    assert "public.pg_stat_statements" not in names
    assert "public.pg_stat_statements_info" not in names

    users = _table(snap, "public.UserAccounts")
    assert users.kind is RelKind.table
    assert users.rows == 2000
    assert users.size_bytes > 0
    assert users.total_bytes > users.size_bytes
    assert users.last_analyze is not None
    assert users.n_tup_ins == 2000

    view = _table(snap, "public.active_users")
    assert view.kind is RelKind.view
    assert view.view_sql is not None and "deleted_at IS NULL" in view.view_sql
    assert [c.name for c in view.columns] == ["id", "Email"]
    matview = _table(snap, "public.post_counts")
    assert matview.kind is RelKind.matview
    assert matview.view_sql is not None and "count(*)" in matview.view_sql

    parent = _table(snap, "public.events")
    assert parent.kind is RelKind.partitioned
    assert parent.rows == 4000  # summed over the leaf partitions
    assert parent.size_bytes > 0
    part = _table(snap, "public.events_2024")
    assert part.partition_of == "public.events"
    assert 0 < part.rows < 4000
    assert _table(snap, "audit.log").rows == 0  # never vacuumed: reltuples -1 → 0


def test_snapshot_columns_types_btree_and_stats(target18: target_pg.Target) -> None:
    snap = target18.snapshot()
    users = _table(snap, "public.UserAccounts")
    types = {c.name: c.type for c in users.columns}
    assert types["name"] == "character varying(40)"
    assert types["Email"] == "work_email"
    assert types["created_at"] == "timestamp with time zone"
    btree = {c.name: c.btree for c in users.columns}
    assert btree == {
        "id": True,
        "Email": True,  # domain over a domain over text
        "name": True,  # varchar: text_ops through a binary-coercible cast
        "profile": False,  # json
        "settings": True,  # jsonb has a btree opclass
        "location": False,  # point
        "doc": False,  # xml
        "tags": True,  # text[]
        "blobs": False,  # json[]: the element type has no ordering
        "feeling": True,  # enum
        "during": True,  # range
        "addr": True,
        "created_at": True,
        "deleted_at": True,
    }
    email = users.column("Email")
    assert email is not None and email.not_null
    name = users.column("name")
    assert name is not None and not name.not_null
    assert name.stats is not None
    assert name.stats.n_distinct == 10
    assert len(name.stats.most_common_vals) == 10
    assert all(v.startswith("name ") for v in name.stats.most_common_vals)
    assert len(name.stats.most_common_freqs) == 10
    assert abs(sum(name.stats.most_common_freqs) - 1.0) < 0.01
    deleted = users.column("deleted_at")
    assert deleted is not None and deleted.stats is not None
    assert abs(deleted.stats.null_frac - 0.75) < 0.01
    ident = users.column("id")
    assert ident is not None and ident.stats is not None
    assert ident.stats.n_distinct == -1
    assert len(ident.stats.histogram_bounds) > 10
    assert ident.stats.correlation is not None and ident.stats.correlation > 0.9
    profile = users.column("profile")
    assert profile is not None and profile.stats is not None
    assert profile.stats.null_frac == 1.0

    # A partitioned parent's statistics are the inherited ones.
    kind = _table(snap, "public.events").column("kind")
    assert kind is not None and kind.stats is not None
    assert set(kind.stats.most_common_vals) == {"k0", "k1", "k2"}


def test_snapshot_indexes(target18: target_pg.Target) -> None:
    snap = target18.snapshot()
    pk = _index(snap, "UserAccounts_pkey")
    assert (pk.table, pk.columns, pk.primary, pk.unique) == (
        "public.UserAccounts",
        ("id",),
        True,
        True,
    )
    assert pk.constraint == "UserAccounts_pkey"
    assert pk.descending == (False,)
    assert pk.using == "btree"
    assert pk.valid and pk.size_bytes > 0
    assert pk.definition.startswith('CREATE UNIQUE INDEX "UserAccounts_pkey"')

    expr = _index(snap, "useraccounts_email_key")
    assert expr.unique and not expr.primary and expr.constraint is None
    assert len(expr.columns) == 1 and expr.columns[0].startswith("lower(")

    partial = _index(snap, "useraccounts_recent")
    assert partial.columns == ("created_at", "id")
    assert partial.descending == (True, False)
    assert partial.include == ("name",)
    assert partial.where == "deleted_at IS NULL"

    unique = _index(snap, "posts_user_title")
    assert unique.columns == ("user_id", "title") and unique.constraint == "posts_user_title"
    # posts_title_user backs the composite FK of post_tags; it must not be read as that FK's.
    assert _index(snap, "posts_title_user").constraint == "posts_title_user"

    on_parent = _index(snap, "events_at_idx")
    assert on_parent.table == "public.events" and on_parent.columns == ("at",)
    assert len(snap.indexes_on("public.events_2024")) == 1


def test_snapshot_foreign_keys(target18: target_pg.Target) -> None:
    snap = target18.snapshot()
    fks = {fk.name: fk for fk in snap.foreign_keys}
    simple = fks["posts_user_id_fkey"]
    assert (simple.table, simple.columns) == ("public.posts", ("user_id",))
    assert (simple.ref_table, simple.ref_columns) == ("public.UserAccounts", ("id",))
    composite = fks["post_tags_post_fk"]
    assert composite.columns == ("title", "user_id")
    assert composite.ref_columns == ("title", "user_id")


def test_snapshot_hypopg_available_but_not_installed(fresh_db15: str) -> None:
    with target_pg.connect(fresh_db15) as target:
        snap = target.snapshot()
    assert snap.server_version_num // 10000 == 15
    assert (snap.hypopg, snap.hypopg_available) == (False, True)
    with psycopg.connect(fresh_db15, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION hypopg")
    with target_pg.connect(fresh_db15) as target:
        snap = target.snapshot()
    assert snap.hypopg
    assert not any(t.name.startswith("hypopg") for t in snap.tables)


# ------------------------------------------------------------------------------- workload


def test_workload_reads_pg_stat_statements(target18: target_pg.Target, seeded18: str) -> None:
    with psycopg.connect(seeded18, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")
        for user_id in (1, 2, 3):
            conn.execute("SELECT * FROM posts WHERE user_id = %s", (user_id,))
        conn.execute('SELECT * FROM "UserAccounts" WHERE lower("Email") = \'u5@example.com\'')
        conn.execute("UPDATE posts SET title = title WHERE id = 1")
        conn.execute("BEGIN")
        conn.execute("COMMIT")
        conn.execute("SET work_mem = '8MB'")
        conn.execute("SELECT relname FROM pg_class WHERE relname = 'posts'")
        conn.execute("VACUUM audit.log")
        conn.execute("/* dbarchitect */ SELECT * FROM audit.log WHERE id = 42 /* dbarchitect */")
    # Our own catalog reading and what-if planning must not show up as workload.
    target18.snapshot()
    oracle = RolledBackBuildOracle(target18)
    note = Candidate("audit.log", (IndexKey("note"),))
    probe = "SELECT * FROM audit.log WHERE note = $1"
    costs = oracle.costs([CostRequest(probe, 1, NONE), CostRequest(probe, 1, frozenset({note}))])
    assert None not in costs
    queries = target18.workload()
    texts = [q.text for q in queries]
    posts = [q for q in queries if q.text == "SELECT * FROM posts WHERE user_id = $1"]
    assert len(posts) == 1
    assert posts[0].calls == 3
    assert posts[0].rows > 0 and posts[0].total_ms > 0
    assert posts[0].source is QuerySource.pg_stat_statements
    assert posts[0].queryid
    assert any(t.startswith("UPDATE posts") for t in texts)
    assert any('lower("Email")' in t for t in texts)
    assert not any(t.lower().startswith("select pg_catalog.set_config") for t in texts)
    assert not any("pg_stat_statements_reset" in t for t in texts)
    for text in texts:
        assert target_pg.TAG not in text
        assert "audit.log" not in text
        assert "pg_class" not in text
        assert not text.upper().startswith(("BEGIN", "COMMIT", "SET", "VACUUM", "EXPLAIN"))
    # Ordered by total time, and thresholds apply.
    assert [q.total_ms for q in queries] == sorted((q.total_ms for q in queries), reverse=True)
    assert [q.text for q in target18.workload(min_calls=3)] == [posts[0].text]
    assert len(target18.workload(limit=1)) == 1
    assert target18.stat_statements_reset_time() is not None
