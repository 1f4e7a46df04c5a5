"""``GET /healthz``: can deliveries be kept (store), handed on (Redis) and worked off (workers)?"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import msgspec
import psycopg
from litestar import Request, Response, get

from app.adapters.store import Store
from app.web.state import web_state

__all__ = ["Health", "healthz"]

Up = Literal["ok", "down"]


class Health(msgspec.Struct):
    """Health of the web process, the two services a delivery needs and the workers."""

    status: Literal["ok", "degraded", "down"]
    """``degraded``: deliveries are still accepted, but the store or Redis is down, or a queue
    has no live worker (nothing is worked off); ``down``: store and Redis are both down."""
    store: Up
    redis: Up
    workers: dict[str, int] | None = None
    """Per queue (``events``, ``audits``): workers whose heartbeat is fresh (None: Redis down)."""
    queued: dict[str, int] | None = None
    """Per queue: jobs waiting, due or deferred (None: Redis down)."""


@get("/healthz", summary="Liveness and dependencies", tags=["operations"])
async def healthz(request: Request[Any, Any, Any]) -> Response[Health]:
    """200 while deliveries can be accepted (store or Redis up), 503 when both are down.

    A liveness check: restarting the web process cures none of what ``degraded`` reports
    (a missing worker, a dependency down), so it stays 200 and names the cause instead.
    """
    web = web_state(request.app)
    store_ok, seen = await asyncio.gather(_store_up(web.store), web.queue.activity())
    store: Up = "ok" if store_ok else "down"
    redis: Up = "ok" if seen is not None else "down"
    workers = seen.workers if seen is not None else None
    queued = seen.queued if seen is not None else None
    if not store_ok and seen is None:
        return Response(Health("down", store, redis, workers, queued), status_code=503)
    status: Literal["ok", "degraded"] = (
        "ok" if store_ok and seen is not None and seen.served else "degraded"
    )
    return Response(Health(status, store, redis, workers, queued), status_code=200)


async def _store_up(store: Store) -> bool:
    try:
        await store.ping()
    except psycopg.Error:
        return False
    return True
