"""Request bodies of every route but the webhook: small, and there at once, before the app runs.

Litestar reads a body when a handler asks for it, up to 10 MB by default and with no deadline,
so a login form posted at a byte a minute would hold its connection (and what it sent so far)
forever. :func:`body_guard` reads the body first, within :data:`MAX_BODY_BYTES` and the same
deadlines as webhook bodies, answers 413 or 408 itself if it is too big or too slow, and
otherwise hands the app the whole body at once. The forms and JSON the app takes are a few
hundred bytes; the webhook receiver streams its own (larger) bodies within its byte budget.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.enums import ScopeType
from litestar.exceptions import ClientException
from litestar.types import ASGIApp, HTTPRequestEvent, Receive, ReceiveMessage, Scope, Send

from app.web.streams import TooSlow, receive_within, send_json
from app.web.webhooks import WEBHOOK_PATH

__all__ = ["MAX_BODY_BYTES", "READ_IDLE_S", "READ_TOTAL_S", "BoundedRequest", "body_guard"]

MAX_BODY_BYTES = 64 * 1024
"""The largest body a route other than the webhook takes (a login form is ~100 bytes)."""
READ_TOTAL_S = 10.0
"""The whole body must arrive within this..."""
READ_IDLE_S = 5.0
"""...and no gap between two pieces of it may be longer than this."""


class BoundedRequest(Request[Any, Any, Any]):
    """Litestar's request, whose JSON body nested too deeply for the decoder is a 400.

    msgspec raises RecursionError for JSON nested about a thousand deep (``[[[[...``, a few
    KB), which Litestar would pass on as a 500.
    """

    async def json(self) -> Any:
        try:
            return await super().json()
        except RecursionError:
            raise ClientException(
                "the JSON body is nested too deeply to decode: send the document the route "
                "expects (see /schema)"
            ) from None


class _Refused(Exception):
    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


def body_guard(app: ASGIApp) -> ASGIApp:
    """Litestar middleware: the body read whole, within limits, before ``app`` sees it."""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["path"] == WEBHOOK_PATH or not _has_body(scope):
            await app(scope, receive, send)
            return
        try:
            body = await _read(scope, receive)
        except _Refused as refused:
            await _refuse(send, refused)
            return
        if body is None:  # the client went away
            return
        await app(scope, _replay(body, receive), send)

    return guarded


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            return True
    return False


async def _read(scope: Scope, receive: Receive) -> bytes | None:
    """The whole body, None if the client went away; :class:`_Refused` if too big or slow."""
    for name, value in scope["headers"]:
        if name == b"content-length" and (not value.isdigit() or int(value) > MAX_BODY_BYTES):
            raise _too_big()
    chunks: list[bytes] = []

    def take(chunk: bytes) -> None:
        chunks.append(chunk)
        if sum(map(len, chunks)) > MAX_BODY_BYTES:
            raise _too_big()

    try:
        complete = await receive_within(receive, READ_TOTAL_S, READ_IDLE_S, take)
    except TooSlow as slow:
        raise _Refused(408, f"the request {slow}") from None
    return b"".join(chunks) if complete else None


def _too_big() -> _Refused:
    return _Refused(
        413,
        f"the request body is larger than the {MAX_BODY_BYTES // 1024} KiB this route takes "
        "(or its Content-Length is not a number): send the form or JSON the route expects",
    )


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive channel that gives ``body`` once, then whatever the client sends next."""
    pending = [body]

    async def replayed() -> ReceiveMessage:
        if pending:
            whole: HTTPRequestEvent = {
                "type": "http.request",
                "body": pending.pop(),
                "more_body": False,
            }
            return whole
        return await receive()

    return replayed


async def _refuse(send: Send, refused: _Refused) -> None:
    await send_json(send, refused.status, {"error": refused.error}, close=True)
