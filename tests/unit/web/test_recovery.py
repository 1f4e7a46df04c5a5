"""The inbox recovery loop and the lazily connecting queue, with fakes (no I/O)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from app.adapters.store import Delivery
from app.web import state
from app.web.recovery import requeue_pending, run_recovery
from app.web.state import DeliveryQueue, QueueUnavailable
from tests.unit.web.fakes import FakeQueue, FakeStore


def _delivery() -> Delivery:
    return Delivery(str(uuid.uuid4()), "issue_comment", "created", 42, "a/b", "x", "User", b"{}")


async def test_pending_deliveries_are_enqueued_and_counted() -> None:
    deliveries = [_delivery() for _ in range(3)]
    store, queue = FakeStore(pending=deliveries), FakeQueue()
    await queue.enqueue(deliveries[0])  # still queued from before

    enqueued = await requeue_pending(store, queue, older_than_s=1)  # type: ignore[arg-type]

    assert enqueued == 2
    assert set(queue.jobs) == {d.delivery_id for d in deliveries}
    assert store.requeued == [d.delivery_id for d in deliveries]


async def test_a_redis_failure_counts_no_attempt() -> None:
    deliveries = [_delivery() for _ in range(3)]
    store, queue = FakeStore(pending=deliveries), FakeQueue(down=True)

    enqueued = await requeue_pending(store, queue, older_than_s=1)  # type: ignore[arg-type]

    assert enqueued == 0
    assert store.requeued == []


async def test_a_turn_with_nothing_due_does_not_touch_redis() -> None:
    store, queue = FakeStore(), FakeQueue()

    assert await requeue_pending(store, queue, older_than_s=1) == 0  # type: ignore[arg-type]
    assert queue.calls == 0


async def test_the_loop_survives_outages_and_stops_when_cancelled() -> None:
    delivery = _delivery()
    store, queue = FakeStore(pending=[delivery], down=True), FakeQueue(down=True)
    loop = asyncio.create_task(run_recovery(store, queue, 0.01))  # type: ignore[arg-type]

    await asyncio.sleep(0.05)
    store.down = False
    await asyncio.sleep(0.05)
    queue.down = False
    await asyncio.sleep(0.05)
    loop.cancel()

    with pytest.raises(asyncio.CancelledError):
        await loop
    assert delivery.delivery_id in queue.jobs
    assert store.calls > 3


async def test_the_queue_retries_a_dead_redis_at_most_once_per_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attempts: list[str] = []

    async def refuse(url: str, **_: object) -> object:
        attempts.append(url)
        raise RedisConnectionError("Connection refused")

    monkeypatch.setattr(state, "open_pool", refuse)
    queue = DeliveryQueue("redis://127.0.0.1:1/0", retry_after_s=60)

    for _ in range(3):
        with pytest.raises(QueueUnavailable):
            await queue.enqueue(_delivery())
    assert not await queue.ping()
    assert len(attempts) == 1

    queue.retry_after_s = 0
    with pytest.raises(QueueUnavailable, match="ConnectionError"):
        await queue.enqueue(_delivery())
    assert len(attempts) == 2
