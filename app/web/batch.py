"""Natural batching: concurrent calls that arrive while a batch is in flight go out together."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["Batcher"]

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """Turns many concurrent ``submit(item)`` calls into few ``flush(items)`` calls.

    Nothing waits for a batch to fill: an item goes out at once when a flush slot is free,
    and items that arrive while ``max_in_flight`` flushes are running go out together in
    the next one. Under light load every batch holds one item (no added latency); after a
    hiccup the backlog drains in a few round trips instead of one per item.

    ``flush`` returns one result per item, in order. If it raises one of ``outage`` (the
    other end is down: every item would fail), every caller of that batch gets the
    exception. Any other error may be one item's fault, so the batch is split in halves and
    each flushed again, down to single items: only the callers of the items that fail on
    their own get the exception; the rest get their results.
    """

    def __init__(
        self,
        flush: Callable[[list[T]], Awaitable[Sequence[R]]],
        *,
        max_batch: int = 256,
        max_in_flight: int = 2,
        outage: tuple[type[Exception], ...] = (),
    ) -> None:
        self._flush = flush
        self._outage = outage
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        # Counted by the runners themselves, not by task done-callbacks: a runner that has
        # seen an empty queue must stop counting at once, or an item submitted before its
        # callback runs would find every slot "busy" and wait forever.
        self._active = 0
        self._runners: set[asyncio.Task[None]] = set()  # strong references only

    async def submit(self, item: T) -> R:
        """Hand ``item`` to the next batch and wait for its result."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._active < self._max_in_flight:
            self._active += 1
            runner = asyncio.create_task(self._run())
            self._runners.add(runner)
            runner.add_done_callback(self._runners.discard)
        return await future

    async def _run(self) -> None:
        try:
            await self._drain()
        finally:
            self._active -= 1  # no await between the empty check in _drain and this

    async def _drain(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            try:
                outcomes = await self._settle([item for item, _ in batch])
            except asyncio.CancelledError:
                for _, future in batch:
                    future.cancel()
                raise
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if isinstance(outcome, _Failed):
                    future.set_exception(outcome.error)
                else:
                    future.set_result(outcome)

    async def _settle(self, items: list[T]) -> list[R | _Failed]:
        """One outcome per item: flush them together, bisecting a batch that fails."""
        try:
            results = await self._flush(items)
            if len(results) != len(items):
                raise RuntimeError(f"{len(results)} results for {len(items)} items")
        except asyncio.CancelledError:
            raise
        except Exception as err:
            if len(items) == 1 or isinstance(err, self._outage):
                return [_Failed(err)] * len(items)
            half = len(items) // 2
            return await self._settle(items[:half]) + await self._settle(items[half:])
        return list(results)


class _Failed:
    """The exception one item's flush raised (a result may itself be an exception)."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error
