"""Worker heartbeats on Redis: each worker says it is alive (with a TTL); /healthz counts them."""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from app.adapters.queue import AUDITS_QUEUE, EVENTS_QUEUE

__all__ = [
    "HEARTBEAT_EVERY_S",
    "HEARTBEAT_TTL_S",
    "QUEUES",
    "Activity",
    "Heartbeat",
    "activity",
    "heartbeat_key",
    "live_workers",
]

#: A worker writes its heartbeat this often (from its poll loop, so a stuck loop goes quiet).
HEARTBEAT_EVERY_S = 5.0
#: A heartbeat not renewed for this long is gone: three missed beats.
HEARTBEAT_TTL_S = 15.0
#: The queues a deployment needs a worker on, by short name.
QUEUES = {"events": EVENTS_QUEUE, "audits": AUDITS_QUEUE}
_PREFIX = "dbarch:heartbeat:"


def heartbeat_key(queue: str, host: str, pid: int) -> str:
    """The key of one worker process's heartbeat on ``queue``."""
    return f"{_PREFIX}{queue}:{host}:{pid}"


@dataclass(slots=True)
class Heartbeat:
    """What one worker writes: its queue, host and pid, and how many jobs it is running."""

    queue: str
    host: str
    pid: int

    @classmethod
    def here(cls, queue: str) -> Heartbeat:
        """The heartbeat of a worker on ``queue`` in this process."""
        return cls(queue, socket.gethostname(), os.getpid())

    @property
    def key(self) -> str:
        """Its Redis key."""
        return heartbeat_key(self.queue, self.host, self.pid)

    async def beat(self, redis: Redis, *, running: int) -> None:
        """Say "alive" for the next :data:`HEARTBEAT_TTL_S` seconds."""
        value = {
            "queue": self.queue,
            "host": self.host,
            "pid": self.pid,
            "running": running,
            "at": round(time.time(), 3),
        }
        await redis.set(self.key, json.dumps(value), px=int(HEARTBEAT_TTL_S * 1000))

    async def stop(self, redis: Redis) -> None:
        """Withdraw it (a worker that stops cleanly is gone at once, not after the TTL)."""
        await redis.delete(self.key)


@dataclass(frozen=True, slots=True)
class Activity:
    """Per queue (short name): live workers and queued jobs (due or deferred)."""

    workers: dict[str, int]
    queued: dict[str, int]

    @property
    def served(self) -> bool:
        """Whether every queue has a live worker."""
        return all(self.workers.get(name, 0) > 0 for name in QUEUES)


async def live_workers(redis: Redis) -> list[Heartbeat]:
    """The workers whose heartbeat has not expired (one SCAN over their keys)."""
    found = []
    cursor: Any = 0
    while True:
        cursor, keys = await redis.scan(cursor, match=f"{_PREFIX}*", count=200)
        for key in keys:
            text = key.decode() if isinstance(key, bytes) else str(key)
            queue, host, pid = text[len(_PREFIX) :].rsplit(":", 2)
            if pid.isdigit():
                found.append(Heartbeat(queue, host, int(pid)))
        if not cursor:
            return found


async def activity(redis: Redis) -> Activity:
    """Count the live heartbeats and the queued jobs of each queue (a few round trips)."""
    by_queue = {queue: name for name, queue in QUEUES.items()}
    workers = dict.fromkeys(QUEUES, 0)
    for beat in await live_workers(redis):
        if beat.queue in by_queue:
            workers[by_queue[beat.queue]] += 1
    pipe = redis.pipeline(transaction=False)
    for queue in QUEUES.values():
        pipe.zcard(queue)
    counts = await pipe.execute()
    return Activity(workers, dict(zip(QUEUES, (int(n) for n in counts), strict=True)))
