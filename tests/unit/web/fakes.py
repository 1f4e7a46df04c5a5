"""In-memory stand-ins for the store and the queue of the web process (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg

from app.adapters.heartbeats import Activity
from app.adapters.store import Delivery
from app.web.state import QueueUnavailable


@dataclass
class FakeStore:
    down: bool = False
    deliveries: dict[str, Delivery] = field(default_factory=dict)
    requeued: list[str] = field(default_factory=list)
    pending: list[Delivery] = field(default_factory=list)
    finished: set[str] = field(default_factory=set)
    calls: int = 0

    def _check(self) -> None:
        self.calls += 1
        if self.down:
            raise psycopg.OperationalError("connection refused")

    async def record_delivery(self, delivery: Delivery) -> bool:
        self._check()
        if delivery.delivery_id in self.deliveries:
            return False
        self.deliveries[delivery.delivery_id] = delivery
        return True

    async def record_deliveries(self, deliveries: list[Delivery]) -> list[bool]:
        return [await self.record_delivery(d) for d in deliveries]

    async def is_unfinished(self, delivery_id: str) -> bool:
        self._check()
        return delivery_id in self.deliveries and delivery_id not in self.finished

    async def ping(self) -> None:
        self._check()

    async def pending_deliveries(self, older_than_s: float, limit: int) -> list[Delivery]:
        self._check()
        return self.pending[:limit]

    async def note_requeued(self, delivery_ids: list[str]) -> None:
        self._check()
        self.requeued.extend(delivery_ids)


@dataclass
class FakeQueue:
    down: bool = False
    jobs: dict[str, dict[str, object]] = field(default_factory=dict)

    calls: int = 0

    async def enqueue(self, delivery: Delivery) -> bool:
        [created] = await self.enqueue_many([delivery])
        return created

    async def enqueue_many(self, deliveries: list[Delivery]) -> list[bool]:
        self.calls += 1
        if self.down:
            raise QueueUnavailable("enqueue failed: ConnectionError")
        created = [d.delivery_id not in self.jobs for d in deliveries]
        for delivery in deliveries:
            self.jobs.setdefault(delivery.delivery_id, delivery.to_job())
        return created

    #: Live workers per queue that ``activity`` reports.
    workers: dict[str, int] = field(default_factory=lambda: {"events": 1, "audits": 1})

    async def ping(self) -> bool:
        return not self.down

    async def activity(self) -> Activity | None:
        if self.down:
            return None
        return Activity(dict(self.workers), {"events": len(self.jobs), "audits": 0})
