"""The store on a real PostgreSQL 18: migrations both ways, the inbox, installations, audits."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from app.adapters.pgserver import EmbeddedPostgres
from app.adapters.store import (
    MAX_REQUEUES,
    Delivery,
    Store,
    downgrade_store,
    open_store,
    prepare_local_store,
    start_local_store,
    upgrade_store,
)
from app.adapters.store_schema import STORE_DATABASE, local_store, store_revision
from app.cli import main
from app.settings import get_settings

TABLES = {"webhook_inbox", "installations", "repositories", "audits"}
MEMORY_TABLES = {"recommendations", "feedback", "ignores"}  # revision 0002
HEAD = "0005"


def _tables(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {row[0] for row in rows}


def _sql(dsn: str, statement: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(statement, params)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


def test_migrations_upgrade_downgrade_upgrade(fresh_db18: str) -> None:
    assert store_revision(fresh_db18) is None

    upgrade_store(fresh_db18)
    assert store_revision(fresh_db18) == HEAD
    assert _tables(fresh_db18) >= TABLES | MEMORY_TABLES

    downgrade_store(fresh_db18, "base")
    assert store_revision(fresh_db18) is None
    assert not (TABLES | MEMORY_TABLES) & _tables(fresh_db18)

    upgrade_store(fresh_db18)
    assert store_revision(fresh_db18) == HEAD
    assert _tables(fresh_db18) >= TABLES | MEMORY_TABLES


def _indexes(dsn: str, table: str) -> dict[str, str]:
    rows = _sql(dsn, "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", (table,))
    return {str(name): str(definition) for name, definition in rows}


def test_memory_migration_upgrade_downgrade_upgrade(fresh_db18: str) -> None:
    upgrade_store(fresh_db18, "0001")
    _sql(fresh_db18, "INSERT INTO installations (id, account) VALUES (1, 'kept')")

    upgrade_store(fresh_db18, "0002")
    assert store_revision(fresh_db18) == "0002"
    assert _tables(fresh_db18) >= MEMORY_TABLES
    assert _sql(fresh_db18, "SELECT extname FROM pg_extension WHERE extname = 'vector'") == [
        ("vector",)
    ]
    hnsw = _indexes(fresh_db18, "feedback")["feedback_embedding_idx"]
    assert "USING hnsw (embedding vector_cosine_ops)" in hnsw
    column = _sql(
        fresh_db18,
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = 'feedback'::regclass AND attname = 'embedding'",
    )
    assert column == [("vector(384)",)]

    downgrade_store(fresh_db18, "0001")
    assert store_revision(fresh_db18) == "0001"
    assert not MEMORY_TABLES & _tables(fresh_db18)
    assert _tables(fresh_db18) >= TABLES
    assert _sql(fresh_db18, "SELECT account FROM installations") == [("kept",)]

    upgrade_store(fresh_db18, "0002")
    assert store_revision(fresh_db18) == "0002"
    assert _tables(fresh_db18) >= MEMORY_TABLES
    with pytest.raises(psycopg.errors.CheckViolation):
        _sql(
            fresh_db18,
            "INSERT INTO recommendations (repository, fingerprint, rec_id, action, table_name, "
            "state) VALUES ('a/b', 'fp', 'r', 'create_index', 'public.t', 'maybe')",
        )


def _columns(dsn: str, table: str) -> set[str]:
    rows = _sql(
        dsn,
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
        "AND NOT attisdropped",
        (table,),
    )
    return {str(name) for (name,) in rows}


def test_feedback_source_migration_upgrade_downgrade_upgrade(fresh_db18: str) -> None:
    upgrade_store(fresh_db18, "0002")
    insert = "INSERT INTO feedback (repository, source, source_id) VALUES ('a/b', 'review', %s)"
    upgrade_store(fresh_db18)
    assert store_revision(fresh_db18) == HEAD
    assert {"source_id"} <= _columns(fresh_db18, "feedback")
    assert {"descriptor"} <= _columns(fresh_db18, "recommendations")
    _sql(fresh_db18, insert, ("17",))
    with pytest.raises(psycopg.errors.UniqueViolation):
        _sql(fresh_db18, insert, ("17",))

    downgrade_store(fresh_db18, "0002")
    assert "source_id" not in _columns(fresh_db18, "feedback")
    assert "descriptor" not in _columns(fresh_db18, "recommendations")
    assert "feedback_source_key" not in _indexes(fresh_db18, "feedback")

    upgrade_store(fresh_db18)
    assert store_revision(fresh_db18) == HEAD
    _sql(fresh_db18, insert, ("18",))


@pytest.fixture
async def store(fresh_db18: str) -> AsyncIterator[Store]:
    upgrade_store(fresh_db18)
    async with await open_store(fresh_db18, max_size=2) as opened:
        yield opened


def _delivery(
    *, installation_id: int | None = 42, body: bytes = b'{"action": "created"}'
) -> Delivery:
    return Delivery(
        delivery_id=str(uuid.uuid4()),
        event="issue_comment",
        action="created",
        installation_id=installation_id,
        repository="acme/shop",
        sender="alice",
        sender_type="User",
        payload=body,
    )


def _age(dsn: str, delivery_id: str, seconds: float) -> None:
    _sql(
        dsn,
        "UPDATE webhook_inbox SET received_at = now() - make_interval(secs => %s) "
        "WHERE delivery_id = %s",
        (seconds, delivery_id),
    )


async def test_a_delivery_is_recorded_once_with_its_exact_body(store: Store) -> None:
    body = b'{"action":"created",  "weird spacing": "\\u00e9"}'
    delivery = _delivery(body=body)

    assert await store.record_delivery(delivery) is True
    assert await store.record_delivery(delivery) is False
    assert await store.delivery_payload(delivery.delivery_id) == body
    assert await store.delivery_payload("no-such-delivery") is None


async def test_many_deliveries_are_recorded_in_one_statement(store: Store) -> None:
    known, fresh, other = _delivery(), _delivery(), _delivery()
    await store.record_delivery(known)

    new = await store.record_deliveries([fresh, known, fresh, other])

    assert new == [True, False, False, True]
    assert await store.delivery_payload(other.delivery_id) == other.payload
    assert await store.record_deliveries([known]) == [False]


async def test_pending_deliveries_are_due_with_backoff_until_done(
    store: Store, fresh_db18: str
) -> None:
    fresh, due, done = _delivery(), _delivery(), _delivery()
    for delivery in (fresh, due, done):
        await store.record_delivery(delivery)
    _age(fresh_db18, due.delivery_id, 10)
    _age(fresh_db18, done.delivery_id, 10)
    await store.finish_delivery(done.delivery_id, "audit_queued")

    pending = await store.pending_deliveries(older_than_s=5, limit=10)

    assert pending == [due]  # the whole row comes back, payload included

    await store.note_requeued([due.delivery_id])  # due again at 5 s × 2¹ = 10 s of age
    assert await store.pending_deliveries(older_than_s=6, limit=10) == []
    assert await store.pending_deliveries(older_than_s=4, limit=10) == [due]

    _sql(fresh_db18, "UPDATE webhook_inbox SET attempts = %s", (MAX_REQUEUES,))
    assert await store.pending_deliveries(older_than_s=0, limit=10) == []
    outcome = _sql(
        fresh_db18,
        "SELECT outcome, done_at IS NOT NULL FROM webhook_inbox WHERE delivery_id = %s",
        (done.delivery_id,),
    )
    assert outcome == [("audit_queued", True)]


async def test_only_deliveries_done_long_ago_are_pruned(store: Store, fresh_db18: str) -> None:
    old_done, new_done, old_pending = _delivery(), _delivery(), _delivery()
    for delivery in (old_done, new_done, old_pending):
        await store.record_delivery(delivery)
    _age(fresh_db18, old_done.delivery_id, 4 * 86_400)
    _age(fresh_db18, old_pending.delivery_id, 4 * 86_400)
    await store.finish_delivery(new_done.delivery_id, "handled")
    _sql(
        fresh_db18,
        "UPDATE webhook_inbox SET done_at = received_at WHERE delivery_id = %s",
        (old_done.delivery_id,),
    )

    pruned = await store.prune_deliveries(older_than_s=3 * 86_400)

    assert pruned == 1
    left = {row[0] for row in _sql(fresh_db18, "SELECT delivery_id FROM webhook_inbox")}
    assert left == {new_done.delivery_id, old_pending.delivery_id}


async def test_pending_deliveries_come_oldest_first_within_the_limit(
    store: Store, fresh_db18: str
) -> None:
    deliveries = [_delivery() for _ in range(3)]
    for age, delivery in zip((30, 10, 20), deliveries, strict=True):
        await store.record_delivery(delivery)
        _age(fresh_db18, delivery.delivery_id, age)

    pending = await store.pending_deliveries(older_than_s=1, limit=2)

    assert [d.delivery_id for d in pending] == [
        deliveries[0].delivery_id,
        deliveries[2].delivery_id,
    ]


async def test_installation_lifecycle(store: Store, fresh_db18: str) -> None:
    await store.upsert_installation(42, "acme")
    await store.add_repositories(42, [(118, "acme/shop"), (119, "acme/blog")])
    assert not await store.is_paused(42)

    await store.suspend_installation(42, True)
    assert await store.is_paused(42)
    await store.suspend_installation(42, False)
    assert not await store.is_paused(42)

    await store.remove_repositories(42, [119])
    rows = _sql(
        fresh_db18, "SELECT full_name, removed_at IS NOT NULL FROM repositories ORDER BY id"
    )
    assert rows == [("acme/shop", False), ("acme/blog", True)]

    await store.add_repositories(42, [(119, "acme/blog")])  # added back
    await store.upsert_installation(42, None)  # a later event without the account keeps it
    assert _sql(fresh_db18, "SELECT count(*) FROM repositories WHERE removed_at IS NULL") == [(2,)]
    assert _sql(fresh_db18, "SELECT account FROM installations") == [("acme",)]


async def test_events_for_an_unknown_installation_create_it(store: Store, fresh_db18: str) -> None:
    await store.suspend_installation(7, True)
    await store.add_repositories(8, [(200, "other/repo")])

    assert await store.is_paused(7)
    assert not await store.is_paused(8)
    assert not await store.is_paused(9)
    assert _sql(fresh_db18, "SELECT id FROM installations ORDER BY id") == [(7,), (8,)]


async def test_a_repository_name_moves_to_the_new_repository_id(
    store: Store, fresh_db18: str
) -> None:
    await store.add_repositories(42, [(118, "acme/shop")])
    await store.add_repositories(43, [(500, "acme/shop")])  # deleted and recreated elsewhere

    rows = _sql(fresh_db18, "SELECT id, installation_id, full_name FROM repositories")
    assert rows == [(500, 43, "acme/shop")]


async def test_purging_an_installation_forgets_everything_of_it(
    store: Store, fresh_db18: str
) -> None:
    await store.upsert_installation(42, "acme")
    await store.upsert_installation(43, "other")
    await store.add_repositories(42, [(118, "acme/shop")])
    await store.add_repositories(43, [(300, "other/repo")])
    await store.record_delivery(_delivery(installation_id=42))
    kept_delivery = _delivery(installation_id=43)
    await store.record_delivery(kept_delivery)
    await store.start_audit("acme/shop", 42, "comment", "alice", dry_run=False)
    kept_audit = await store.start_audit("other/repo", 43, "dispatch", None, dry_run=True)
    for repo in ("acme/shop", "other/repo"):
        _sql(fresh_db18, "INSERT INTO feedback (repository, source) VALUES (%s, 'review')", (repo,))
        _sql(
            fresh_db18,
            "INSERT INTO recommendations (repository, fingerprint, rec_id, action, table_name, "
            "state) VALUES (%s, 'fp', 'r', 'create_index', 'public.t', 'proposed')",
            (repo,),
        )
        _sql(
            fresh_db18,
            "INSERT INTO ignores (repository, kind, value) VALUES (%s, 'table', 't')",
            (repo,),
        )

    await store.purge_installation(42)

    assert _sql(fresh_db18, "SELECT id FROM installations") == [(43,)]
    assert _sql(fresh_db18, "SELECT id FROM repositories") == [(300,)]
    assert _sql(fresh_db18, "SELECT delivery_id FROM webhook_inbox") == [
        (kept_delivery.delivery_id,)
    ]
    assert _sql(fresh_db18, "SELECT id FROM audits") == [(kept_audit,)]
    for memory in ("feedback", "recommendations", "ignores"):
        assert _sql(fresh_db18, f"SELECT repository FROM {memory}") == [("other/repo",)]


async def test_an_audit_runs_and_finishes(store: Store, fresh_db18: str) -> None:
    audit_id = await store.start_audit("acme/shop", 42, "comment", "alice", dry_run=True)

    row = _sql(fresh_db18, "SELECT status, started_at IS NOT NULL, dry_run FROM audits")
    assert row == [("running", True, True)]

    await store.finish_audit(audit_id, "done", {"opened": 1}, {"version": 1, "recommendations": []})

    row = _sql(fresh_db18, "SELECT status, finished_at IS NOT NULL, summary, report FROM audits")
    assert row == [("done", True, {"opened": 1}, {"version": 1, "recommendations": []})]
    with pytest.raises(ValueError, match="running"):
        await store.finish_audit(audit_id, "running", {}, None)


async def test_an_unreachable_store_fails_fast(pg18: EmbeddedPostgres) -> None:
    dsn = pg18.dsn("no_such_database")

    with pytest.raises(psycopg.OperationalError):
        await open_store(dsn, open_timeout_s=0.5)


def test_the_local_store_is_prepared_once_and_reused(server_dir: Path) -> None:
    with start_local_store(server_dir) as dsn:
        assert dsn.endswith(f"/{STORE_DATABASE}")
        upgrade_store(dsn)
        _sql(dsn, "INSERT INTO installations (id, account) VALUES (1, 'kept')")
        extensions = _sql(dsn, "SELECT extname FROM pg_extension WHERE extname = 'vector'")
        assert extensions == [("vector",)]

    server = local_store(server_dir)
    try:
        dsn = prepare_local_store(server)  # restarted: same data, nothing recreated
        assert _sql(dsn, "SELECT account FROM installations") == [("kept",)]
    finally:
        server.stop()


@pytest.fixture
def env_store(fresh_db18: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("DBARCH_STORE_DSN", fresh_db18)
    get_settings.cache_clear()
    yield fresh_db18
    get_settings.cache_clear()


def test_the_cli_upgrades_and_downgrades_the_store(
    env_store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["store", "upgrade"]) == 0
    assert store_revision(env_store) == HEAD
    assert main(["store", "downgrade", "base"]) == 0
    assert store_revision(env_store) is None
    assert main(["store", "downgrade", "no-such-revision"]) == 2
    assert "no-such-revision" in capsys.readouterr().err


async def test_an_audit_recorded_at_its_end_keeps_its_start(store: Store, fresh_db18: str) -> None:
    began = datetime.now(UTC) - timedelta(seconds=42)
    audit_id = await store.start_audit("acme/shop", 42, "comment", None, False, started_at=began)
    await store.finish_audit(audit_id, "done", {}, None)

    ((seconds,),) = _sql(
        fresh_db18, "SELECT extract(epoch FROM finished_at - started_at)::float8 FROM audits"
    )
    assert 41 < float(seconds) < 60  # type: ignore[arg-type]
