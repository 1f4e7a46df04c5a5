"""``GET /healthz``: can this web process keep (store) and hand on (Redis) a delivery now?"""

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
    """Health of the web process and the two services a delivery needs."""

    status: Literal["ok", "degraded", "down"]
    """``degraded``: one of them is down and deliveries are still accepted; ``down``: none are."""
    store: Up
    redis: Up


@get("/healthz", summary="Liveness and dependencies", tags=["operations"])
async def healthz(request: Request[Any, Any, Any]) -> Response[Health]:
    """200 while deliveries can be accepted (store or Redis up), 503 when both are down."""
    web = web_state(request.app)
    store_ok, redis_ok = await asyncio.gather(_store_up(web.store), web.queue.ping())
    store: Up = "ok" if store_ok else "down"
    redis: Up = "ok" if redis_ok else "down"
    if store_ok and redis_ok:
        return Response(Health("ok", store, redis), status_code=200)
    if store_ok or redis_ok:
        return Response(Health("degraded", store, redis), status_code=200)
    return Response(Health("down", store, redis), status_code=503)


async def _store_up(store: Store) -> bool:
    try:
        await store.ping()
    except psycopg.Error:
        return False
    return True
