"""The web process: ``create_app()`` builds the Litestar app (webhooks, health, OpenAPI)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import psycopg
import structlog
from litestar import Litestar, Request, Response
from litestar.exceptions import HTTPException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.openapi import OpenAPIConfig
from litestar.types import Scope

from app.adapters.store import open_store
from app.settings import Settings, get_settings
from app.web.api import API_COMPONENTS, api_router
from app.web.bodies import MAX_BODY_BYTES, BoundedRequest, body_guard
from app.web.health import healthz
from app.web.manifest import github_web_url
from app.web.metrics import metrics
from app.web.recovery import run_recovery
from app.web.setup import SETUP_HANDLERS
from app.web.state import DeliveryQueue, WebState
from app.web.ui import root_redirect, template_config, ui_router
from app.web.webhooks import github_webhook

__all__ = ["create_app"]

log = structlog.get_logger(__name__)


def create_app(settings: Settings | None = None, *, store_dsn: str | None = None) -> Litestar:
    """The ASGI app. Nothing connects until its lifespan starts (under uvicorn).

    Args:
        settings: defaults to :func:`app.settings.get_settings` (the environment).
        store_dsn: the store to use instead of ``settings.store_dsn`` (``dbarchitect run``
            passes the embedded store it started).

    Raises:
        ValueError: no store DSN at all.
    """
    settings = settings or get_settings()
    dsn = store_dsn or (settings.store_dsn.get_secret_value() if settings.store_dsn else None)
    if not dsn:
        raise ValueError(
            "no store database: set DBARCH_STORE_DSN, or use `dbarchitect serve`, which "
            "starts the embedded one"
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with _running(app, settings, dsn):
            yield

    return Litestar(
        route_handlers=[
            github_webhook,
            healthz,
            metrics,
            api_router,
            root_redirect,
            ui_router(),
            *SETUP_HANDLERS,
        ],
        template_config=template_config(github_web_url(settings.github_api_url)),
        lifespan=[lifespan],
        middleware=[body_guard],
        request_class=BoundedRequest,  # every body but the webhook's: small, and there at once
        request_max_body_size=MAX_BODY_BYTES,  # what body_guard lets through anyway
        exception_handlers={RequestEntityTooLarge: _too_large},
        after_exception=[_log_exception],
        logging_config=None,  # app.log configures logging for the whole process
        openapi_config=OpenAPIConfig(
            title="DB Architect", version="0.1.0", components=[API_COMPONENTS]
        ),
    )


@contextlib.asynccontextmanager
async def _running(app: Litestar, settings: Settings, dsn: str) -> AsyncIterator[None]:
    """Open the store pool and the queue, run the recovery loop; undo it all at shutdown.

    Neither an unreachable store nor an unreachable Redis stops the start: each is
    reconnected when it comes back (the store pool in the background, Redis on demand).
    """
    store = await open_store(dsn, wait=False)
    queue = DeliveryQueue(settings.redis_url)
    try:
        await _report_dependencies(store.ping(), queue.ping())
        app.state["web"] = WebState(settings=settings, store=store, queue=queue)
        recovery = asyncio.create_task(
            run_recovery(store, queue, settings.inbox_recovery_seconds), name="inbox-recovery"
        )
        try:
            yield
        finally:
            recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await recovery
    finally:
        await queue.close()
        await store.close()


async def _report_dependencies(store_ping: Awaitable[None], redis_ping: Awaitable[bool]) -> None:
    """Log at startup whether the store and Redis answer (the app starts either way)."""
    store_result, redis_up = await asyncio.gather(store_ping, redis_ping, return_exceptions=True)
    if isinstance(store_result, psycopg.Error):
        log.error("web.store_unreachable", error=type(store_result).__name__)
    elif isinstance(store_result, BaseException):
        raise store_result
    if redis_up is not True:
        log.error("web.redis_unreachable", hint="deliveries are kept in the store until it is back")


def _too_large(request: Request[Any, Any, Any], exc: RequestEntityTooLarge) -> Response[Any]:
    return Response(
        {
            "error": f"the request body is larger than the {MAX_BODY_BYTES // 1024} KiB "
            f"{request.url.path} accepts: send the form or JSON the route expects"
        },
        status_code=exc.status_code,
    )


def _log_exception(exc: Exception, scope: Scope) -> None:
    """Unexpected errors: logged with the path, never with the body."""
    if isinstance(exc, HTTPException):  # 4xx and deliberate errors: the response says it all
        return
    log.error("web.unhandled", path=scope.get("path"), error=type(exc).__name__, exc_info=exc)
