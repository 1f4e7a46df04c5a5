"""Natural batching: what arrives during a flush goes out together, failures reach every caller."""

from __future__ import annotations

import asyncio

import pytest

from app.web.batch import Batcher


class Recorder:
    """A flush that records its batches and can be held open."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail: Exception | None = None

    async def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(items)
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return [item * 10 for item in items]


async def test_one_caller_alone_is_flushed_at_once() -> None:
    flush = Recorder()

    assert await Batcher(flush).submit(1) == 10
    assert flush.batches == [[1]]


async def test_what_arrives_during_a_flush_goes_out_together() -> None:
    flush = Recorder()
    flush.gate.clear()
    batcher: Batcher[int, int] = Batcher(flush, max_in_flight=1)

    first = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(batcher.submit(n)) for n in (2, 3, 4)]
    await asyncio.sleep(0)
    flush.gate.set()

    assert await first == 10
    assert await asyncio.gather(*rest) == [20, 30, 40]
    assert flush.batches == [[1], [2, 3, 4]]


async def test_batches_are_capped() -> None:
    flush = Recorder()
    flush.gate.clear()
    batcher: Batcher[int, int] = Batcher(flush, max_batch=2, max_in_flight=1)

    calls = [asyncio.create_task(batcher.submit(n)) for n in range(5)]
    await asyncio.sleep(0)
    flush.gate.set()

    assert await asyncio.gather(*calls) == [0, 10, 20, 30, 40]
    assert flush.batches == [[0, 1], [2, 3], [4]]


async def test_a_failed_flush_fails_its_callers_only() -> None:
    flush = Recorder()
    flush.gate.clear()
    flush.fail = ConnectionError("down")
    batcher: Batcher[int, int] = Batcher(flush, max_in_flight=1)

    failing = [asyncio.create_task(batcher.submit(n)) for n in (1, 2)]
    await asyncio.sleep(0)
    flush.gate.set()
    results = await asyncio.gather(*failing, return_exceptions=True)
    flush.fail = None

    assert all(isinstance(r, ConnectionError) for r in results)
    assert await batcher.submit(3) == 30


async def test_a_flush_with_the_wrong_number_of_results_is_an_error() -> None:
    async def short(items: list[int]) -> list[int]:
        return items[:-1]

    batcher: Batcher[int, int] = Batcher(short)

    with pytest.raises(RuntimeError, match="0 results for 1 items"):
        await batcher.submit(1)


@pytest.mark.parametrize("max_in_flight", [1, 2])
async def test_an_item_submitted_as_a_runner_finishes_is_not_stranded(max_in_flight: int) -> None:
    flush = Recorder()
    batcher: Batcher[int, int] = Batcher(flush, max_in_flight=max_in_flight)

    async with asyncio.timeout(5):
        for n in range(200):  # the caller wakes, and submits again, before the runner task ends
            assert await batcher.submit(n) == n * 10

    assert sum(len(b) for b in flush.batches) == 200


class RejectsBad:
    """A flush that fails, as one statement does, when any item in it is bad."""

    def __init__(self, bad: set[int]) -> None:
        self.bad = bad
        self.calls = 0

    async def __call__(self, items: list[int]) -> list[int]:
        self.calls += 1
        await asyncio.sleep(0)
        if self.bad & set(items):
            raise ValueError(f"bad row among {len(items)}")
        return [item * 10 for item in items]


async def test_a_batch_that_fails_is_split_so_only_the_bad_items_fail() -> None:
    flush = RejectsBad({7, 40, 41})
    batcher: Batcher[int, int] = Batcher(flush, max_in_flight=1)

    gate = asyncio.create_task(batcher.submit(0))  # holds the slot: the rest go out together
    results = await asyncio.gather(
        *(batcher.submit(n) for n in range(1, 150)), return_exceptions=True
    )
    await gate

    failed = [n for n, r in zip(range(1, 150), results, strict=True) if isinstance(r, Exception)]
    assert failed == [7, 40, 41]
    assert all(r == n * 10 for n, r in zip(range(1, 150), results, strict=True) if n not in failed)
    assert flush.calls < 60  # bisected, not retried one by one


async def test_an_outage_fails_the_whole_batch_without_splitting() -> None:
    flush = Recorder()
    flush.gate.clear()
    flush.fail = ConnectionError("down")
    batcher: Batcher[int, int] = Batcher(flush, max_in_flight=1, outage=(ConnectionError,))

    calls = [asyncio.create_task(batcher.submit(n)) for n in range(6)]
    await asyncio.sleep(0)
    flush.gate.set()
    results = await asyncio.gather(*calls, return_exceptions=True)

    assert all(isinstance(r, ConnectionError) for r in results)
    assert flush.batches == [[0, 1, 2, 3, 4, 5]]
