"""Reviewer memory on a real PostgreSQL 18 with pgvector: recommendations, feedback, ignores."""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import AsyncIterator, Sequence

import psycopg
import pytest
from pgvector import Vector
from pgvector.psycopg import register_vector_async

from app.adapters import memory as memory_module
from app.adapters.memory import COPY_THRESHOLD, FeedbackRow, LedgerEntry, Memory
from app.adapters.store import open_store

DIM = 384
REPO = "acme/shop"
OTHER = "acme/blog"  # same account: its feedback counts, weighted lower
STRANGER = "other/blog"  # another account: never consulted


@pytest.fixture
def store_dsn(fresh_store: str) -> str:
    return fresh_store


@pytest.fixture
async def memory(store_dsn: str) -> AsyncIterator[Memory]:
    async with await open_store(store_dsn, max_size=2) as store:
        yield Memory(store)


def _sql(dsn: str, statement: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(statement)
        return cur.fetchall() if cur.description else []


def _unit(rng: random.Random) -> list[float]:
    values = [rng.gauss(0.0, 1.0) for _ in range(DIM)]
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


def _near(vector: Sequence[float], rng: random.Random, noise: float) -> list[float]:
    return [v + rng.gauss(0.0, noise) for v in vector]


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def _feedback(embedding: Sequence[float] | None, **fields: str) -> FeedbackRow:
    return FeedbackRow(
        repository=fields.get("repository", REPO),
        source=fields.get("source", "review"),
        author="alice",
        body=fields.get("body", "write-heavy table"),
        classification="reject",
        reason="write load",
        table_name="public.events",
        action="create_index",
        embedding=embedding,
    )


async def _stored_vectors(memory: Memory, ids: Sequence[int]) -> dict[int, list[float] | None]:
    async with memory.pool.connection() as conn:
        await register_vector_async(conn)
        cur = await conn.execute("SELECT id, embedding FROM feedback WHERE id = ANY(%s)", (ids,))
        rows = await cur.fetchall()
    return {row[0]: None if row[1] is None else row[1].to_list() for row in rows}


async def _rec(memory: Memory, fingerprint: str = "fp1", **changes: object) -> int:
    fields: dict[str, object] = {
        "repository": REPO,
        "fingerprint": fingerprint,
        "rec_id": "create_index:3f9a1c2b",
        "action": "create_index",
        "table_name": "public.events",
        "state": "proposed",
        "confidence": 0.91,
        "breakdown": {"measured_speedup": 0.6},
        "pr_number": None,
    } | changes
    return await memory.upsert_recommendation(LedgerEntry(**fields))  # type: ignore[arg-type]


# ---------------------------------------------------------------------- recommendations


async def test_upserting_a_recommendation_is_idempotent(memory: Memory, store_dsn: str) -> None:
    first = await _rec(memory)
    again = await _rec(memory)
    other = await _rec(memory, "fp2")

    assert again == first
    assert other != first
    rows = _sql(store_dsn, "SELECT fingerprint, state, confidence, breakdown FROM recommendations")
    assert sorted(rows) == [
        ("fp1", "proposed", pytest.approx(0.91), {"measured_speedup": 0.6}),
        ("fp2", "proposed", pytest.approx(0.91), {"measured_speedup": 0.6}),
    ]


async def test_a_refresh_updates_the_recommendation_and_keeps_its_pr(
    memory: Memory, store_dsn: str
) -> None:
    rec_id = await _rec(memory, state="pr_open", pr_number=12)

    assert await _rec(memory, confidence=0.85, breakdown=None, state="pr_open") == rec_id

    rows = _sql(store_dsn, "SELECT state, confidence, breakdown, pr_number FROM recommendations")
    assert rows == [("pr_open", pytest.approx(0.85), None, 12)]


async def test_a_decision_is_not_undone_by_a_later_proposal(memory: Memory, store_dsn: str) -> None:
    await _rec(memory, "fp1", state="merged", pr_number=3)
    await _rec(memory, "fp2", state="ignored", pr_number=4)
    await _rec(memory, "fp1", state="proposed", descriptor="add index on events (kind)")
    await _rec(memory, "fp2", state="proposed")
    await _rec(memory, "fp2", state="pr_open", pr_number=9)  # reopened: a real change

    rows = _sql(
        store_dsn,
        "SELECT fingerprint, state, pr_number, descriptor FROM recommendations ORDER BY 1",
    )
    assert rows == [("fp1", "merged", 3, "add index on events (kind)"), ("fp2", "pr_open", 9, None)]


async def test_state_changes_are_recorded(memory: Memory, store_dsn: str) -> None:
    await _rec(memory)

    assert await memory.set_state(REPO, "fp1", "pr_open", pr_number=7)
    assert await memory.set_state(REPO, "fp1", "merged")  # the PR number stays
    assert not await memory.set_state(REPO, "unknown", "merged")
    assert not await memory.set_state(OTHER, "fp1", "merged")

    rows = _sql(store_dsn, "SELECT state, pr_number, updated_at > first_seen FROM recommendations")
    assert rows == [("merged", 7, True)]
    with pytest.raises(ValueError, match="state"):
        await memory.set_state(REPO, "fp1", "closed")
    with pytest.raises(ValueError, match="state"):
        await _rec(memory, state="done")


# ---------------------------------------------------------------------- feedback


async def test_a_few_rows_go_through_executemany(
    memory: Memory, store_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_copy(*_: object) -> list[int]:
        raise AssertionError("COPY used for a few rows")

    monkeypatch.setattr(memory_module, "_copy_feedback", no_copy)
    rng = random.Random(1)
    rec_id = await _rec(memory)
    vectors = [_unit(rng), _unit(rng)]
    rows = [
        _feedback(vectors[0]),
        _feedback(None, source="merge", body=""),
        FeedbackRow(
            repository=OTHER, source="comment", recommendation_id=rec_id, embedding=vectors[1]
        ),
    ]

    ids = await memory.add_feedback(rows)

    assert len(set(ids)) == 3
    stored = await _stored_vectors(memory, ids)
    assert stored[ids[0]] == pytest.approx(vectors[0], abs=1e-6)
    assert stored[ids[1]] is None
    assert stored[ids[2]] == pytest.approx(vectors[1], abs=1e-6)
    rows_back = _sql(
        store_dsn,
        "SELECT id, repository, source, recommendation_id, classification "
        "FROM feedback ORDER BY id",
    )
    assert rows_back == [
        (ids[0], REPO, "review", None, "reject"),
        (ids[1], REPO, "merge", None, "reject"),
        (ids[2], OTHER, "comment", rec_id, None),
    ]
    assert await memory.add_feedback([]) == []


async def test_many_rows_go_through_copy(
    memory: Memory, store_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_executemany(*_: object) -> list[int]:
        raise AssertionError("executemany used for many rows")

    monkeypatch.setattr(memory_module, "_insert_feedback", no_executemany)
    rng = random.Random(2)
    vectors = [_unit(rng) for _ in range(COPY_THRESHOLD + 10)]
    rows = [_feedback(v, body=f"comment {i}") for i, v in enumerate(vectors)]
    rows[5] = _feedback(None, body="comment 5")

    ids = await memory.add_feedback(rows)

    assert len(set(ids)) == len(rows)
    stored = await _stored_vectors(memory, ids)
    for i, feedback_id in enumerate(ids):  # each id names its own row
        expected = None if i == 5 else pytest.approx(vectors[i], abs=1e-6)
        assert stored[feedback_id] == expected
    bodies = {row[0]: row[1] for row in _sql(store_dsn, "SELECT id, body FROM feedback")}
    assert [bodies[i] for i in ids] == [f"comment {i}" for i in range(len(rows))]
    # the identity sequence moved past the reserved ids: a later insert does not collide
    monkeypatch.undo()
    (later,) = await memory.add_feedback([_feedback(None)])
    assert later > max(ids)


async def test_bad_feedback_is_refused_before_anything_is_written(
    memory: Memory, store_dsn: str
) -> None:
    with pytest.raises(ValueError, match="source"):
        await memory.add_feedback([_feedback(None), _feedback(None, source="tweet")])
    with pytest.raises(ValueError, match="classification"):
        await memory.add_feedback([FeedbackRow(REPO, "review", classification="meh")])
    assert _sql(store_dsn, "SELECT count(*) FROM feedback") == [(0,)]


async def test_deleting_a_recommendation_keeps_its_feedback(memory: Memory, store_dsn: str) -> None:
    rec_id = await _rec(memory)
    (feedback_id,) = await memory.add_feedback(
        [FeedbackRow(REPO, "close", recommendation_id=rec_id, fingerprint="fp1")]
    )

    _sql(store_dsn, f"DELETE FROM recommendations WHERE id = {rec_id}")

    assert _sql(store_dsn, "SELECT id, recommendation_id, fingerprint FROM feedback") == [
        (feedback_id, None, "fp1")
    ]


async def test_the_nearest_feedback_comes_first_by_cosine(memory: Memory) -> None:
    rng = random.Random(3)
    vectors = [_unit(rng) for _ in range(200)]
    ids = await memory.add_feedback([_feedback(v, repository=OTHER) for v in vectors])
    query = _near(vectors[42], rng, noise=0.02)

    found = await memory.nearest_feedback(query, repository=REPO, k=3)

    assert len(found) == 3
    assert found[0].id == ids[42]
    assert found[0].similarity == pytest.approx(_cosine(query, vectors[42]), abs=1e-4)
    assert found[0].similarity > 0.9 > found[1].similarity
    assert [n.similarity for n in found] == sorted((n.similarity for n in found), reverse=True)
    assert found[0].body == "write-heavy table"
    assert found[0].classification == "reject"


async def test_another_accounts_feedback_is_never_consulted(memory: Memory) -> None:
    rng = random.Random(9)
    shared = _unit(rng)
    strangers = [_feedback(_near(shared, rng, noise=0.01), repository=STRANGER) for _ in range(60)]
    await memory.add_feedback(strangers)
    (ours,) = await memory.add_feedback(
        [_feedback(_near(shared, rng, noise=0.3), repository=OTHER)]
    )

    found = await memory.nearest_feedback(shared, repository=REPO, k=5)

    assert [n.id for n in found] == [ours]  # the 60 closer rows belong to another account
    assert {n.repository for n in await memory.nearest_feedback(shared, repository=STRANGER)} == {
        STRANGER
    }


async def test_the_same_repository_wins_at_equal_similarity(memory: Memory) -> None:
    rng = random.Random(4)
    shared = _unit(rng)
    noise = [_feedback(_unit(rng), repository=OTHER) for _ in range(20)]
    ids = await memory.add_feedback(
        [_feedback(shared, repository=OTHER), _feedback(shared, repository=REPO), *noise]
    )
    other_id, same_id = ids[:2]
    query = _near(shared, rng, noise=0.05)

    here = await memory.nearest_feedback(query, repository=REPO, k=2)
    there = await memory.nearest_feedback(query, repository=OTHER, k=2)

    assert [n.id for n in here] == [same_id, other_id]
    assert [n.id for n in there] == [other_id, same_id]
    assert here[0].similarity == pytest.approx(here[1].similarity, abs=1e-6)
    assert here[0].score > here[1].score == pytest.approx(here[1].similarity)


async def test_the_weight_can_beat_a_slightly_closer_other_repository(memory: Memory) -> None:
    rng = random.Random(5)
    base = _unit(rng)
    closer, farther = _near(base, rng, noise=0.016), _near(base, rng, noise=0.02)
    near_d, far_d = 1 - _cosine(base, closer), 1 - _cosine(base, farther)
    assert near_d < far_d < 2 * near_d  # the set-up: within what a weight of 2 makes up
    other_id, same_id = await memory.add_feedback(
        [_feedback(closer, repository=OTHER), _feedback(farther, repository=REPO)]
    )

    unweighted = await memory.nearest_feedback(base, repository=REPO, k=2, same_repo_weight=1.0)
    weighted = await memory.nearest_feedback(base, repository=REPO, k=2, same_repo_weight=2.0)

    assert [n.id for n in unweighted] == [other_id, same_id]
    assert [n.id for n in weighted] == [same_id, other_id]
    with pytest.raises(ValueError, match="same_repo_weight"):
        await memory.nearest_feedback(base, repository=REPO, same_repo_weight=0.5)
    assert await memory.nearest_feedback(base, repository=REPO, k=0) == []


async def test_the_knn_query_uses_the_hnsw_index(memory: Memory, store_dsn: str) -> None:
    rng = random.Random(6)
    vectors = [_unit(rng) for _ in range(3000)]
    ids = await memory.add_feedback([_feedback(v) for v in vectors])
    _sql(store_dsn, "ANALYZE feedback")
    query = _near(vectors[1234], rng, noise=0.02)

    async with memory.pool.connection() as conn:
        await register_vector_async(conn)
        cur = await conn.execute(
            "EXPLAIN " + memory_module.Q_NEAREST,
            {"v": Vector(query), "limit": 20, "account": "acme/%"},
        )
        plan = "\n".join(str(row[0]) for row in await cur.fetchall())
    # beyond pgvector's default ef_search (40): the query raises it so all 60 come back
    found = await memory.nearest_feedback(query, repository=REPO, k=15)

    assert "Index Scan using feedback_embedding_idx" in plan, plan
    assert len(found) == 15
    assert found[0].id == ids[1234]


# ---------------------------------------------------------------------- ignores


async def test_ignores_round_trip(memory: Memory) -> None:
    await memory.add_ignore(REPO, "table", "public.events", "alice")
    await memory.add_ignore(REPO, "fingerprint", "fp1", "bob")
    await memory.add_ignore(REPO, "fingerprint", "fp1", "carol")  # again: no error, one row
    await memory.add_ignore(OTHER, "table", "public.posts", None)

    assert await memory.ignores(REPO) == [("fingerprint", "fp1"), ("table", "public.events")]
    assert await memory.ignores(OTHER) == [("table", "public.posts")]
    assert await memory.ignores("nobody/here") == []
    with pytest.raises(ValueError, match="kind"):
        await memory.add_ignore(REPO, "rule", "fk_without_index", "alice")


async def test_feedback_stored_without_a_model_is_embedded_later(memory: Memory) -> None:
    rng = random.Random(11)
    (waiting,) = await memory.add_feedback([_feedback(None)])
    (elsewhere,) = await memory.add_feedback([_feedback(None, repository=STRANGER)])
    (done,) = await memory.add_feedback([_feedback(_unit(rng))])

    missing = await memory.unembedded(REPO)
    assert [(m.id, m.classification, m.text) for m in missing] == [
        (waiting, "reject", "write-heavy table")
    ]
    assert missing[0].descriptor == "public.events"  # no recommendation row: the table

    vector = _unit(rng)
    await memory.set_embeddings({waiting: vector})

    assert await memory.unembedded(REPO) == []
    assert [m.id for m in await memory.unembedded(STRANGER)] == [elsewhere]
    found = await memory.nearest_feedback(vector, repository=REPO, k=1)
    assert [n.id for n in found] == [waiting] and done != waiting


async def test_a_stored_review_is_known_by_its_source_id(memory: Memory) -> None:
    row = dataclasses.replace(_feedback(None), source_id="review:80001")
    assert not await memory.has_feedback(REPO, "review", "review:80001")
    assert await memory.add_feedback([row]) != []
    assert await memory.has_feedback(REPO, "review", "review:80001")
    assert not await memory.has_feedback(OTHER, "review", "review:80001")
    assert await memory.add_feedback([row]) == []  # a retried job stores nothing twice
