"""The real all-MiniLM-L6-v2 model through Embedder: meaning, shape, batching, off the loop."""

from __future__ import annotations

import asyncio
import math
import socket
import time
from pathlib import Path

import pytest

from app.adapters.embed import DIMENSION, Embedder, ModelMissing


@pytest.fixture(scope="module")
def embedder(model_dir: Path) -> Embedder:
    embedder = Embedder(model_dir)
    embedder.load()
    return embedder


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.hypot(*a) * math.hypot(*b))


async def test_a_paraphrase_is_much_closer_than_an_unrelated_sentence(embedder: Embedder) -> None:
    anchor, paraphrase, unrelated = await embedder.embed(
        [
            "the orders table is write-heavy",
            "the orders table gets a lot of inserts and updates",
            "my cat sleeps on the warm windowsill all afternoon",
        ]
    )
    close, far = _cosine(anchor, paraphrase), _cosine(anchor, unrelated)
    assert close > 0.6
    assert far < 0.2
    assert close - far > 0.4


async def test_vectors_are_384_floats_of_unit_length(embedder: Embedder) -> None:
    vectors = await embedder.embed(["CREATE INDEX on events (created_at)", "too slow", ""])
    assert embedder.dimension == DIMENSION == 384
    for vector in vectors:
        assert len(vector) == DIMENSION
        assert all(isinstance(x, float) for x in vector)
        assert math.hypot(*vector) == pytest.approx(1.0, abs=1e-4)


async def test_two_hundred_texts_come_back_in_order(embedder: Embedder) -> None:
    texts = [
        f"review comment number {i} about index {i % 7} on table t{i % 13}" for i in range(200)
    ]
    vectors = await embedder.embed(texts)
    assert len(vectors) == 200
    for i in (0, 63, 64, 127, 128, 199):  # either side of every 64-text batch boundary
        (alone,) = await embedder.embed([texts[i]])
        assert vectors[i] == pytest.approx(alone, abs=1e-5)
    assert await embedder.embed([]) == []


async def test_the_event_loop_keeps_running_while_it_embeds(embedder: Embedder) -> None:
    texts = [f"the {i}th table has a missing index on its foreign key column" for i in range(384)]
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    started = time.perf_counter()
    await embedder.embed(texts)
    elapsed = time.perf_counter() - started
    done.set()
    await tick
    # On the loop, the ticker would stall for the whole run: one gap as long as the embedding.
    assert len(gaps) >= 5
    assert max(gaps) < elapsed / 2


async def test_it_never_touches_the_network(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_sockets(*args: object, **kwargs: object) -> socket.socket:
        raise AssertionError("the embedder opened a socket")

    monkeypatch.setattr(socket, "socket", no_sockets)
    monkeypatch.setattr(socket, "create_connection", no_sockets)
    (vector,) = await Embedder(model_dir).embed(["loaded from the local dir only"])
    assert len(vector) == DIMENSION


async def test_an_empty_dir_says_how_to_provision(tmp_path: Path) -> None:
    with pytest.raises(ModelMissing, match=r"run `dbarchitect model provision`"):
        await Embedder(tmp_path).embed(["anything"])
