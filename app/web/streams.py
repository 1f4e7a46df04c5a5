"""A request body read at the ASGI level against deadlines, and a JSON answer sent there."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
from litestar.types import Receive, Send

__all__ = ["TooSlow", "receive_within", "send_json"]

_ENCODER = msgspec.json.Encoder()


class TooSlow(Exception):
    """The body did not arrive in time; the message says so (for a 408)."""


async def receive_within(
    receive: Receive, total_s: float, idle_s: float, take: Callable[[bytes], None]
) -> bool:
    """Hand each piece of the body to ``take``: True once it is all there, False if the
    client went away.

    Raises:
        TooSlow: the body took longer than ``total_s`` in all, or paused for ``idle_s``.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + total_s
    more = True
    while more:
        try:
            async with asyncio.timeout(max(0.0, min(idle_s, deadline - loop.time()))):
                message = await receive()
        except TimeoutError:
            raise TooSlow(
                f"the body did not arrive within {total_s:g} s (or paused for {idle_s:g} s): "
                "send it at once"
            ) from None
        if message["type"] != "http.request":
            return False
        take(message.get("body", b""))
        more = message.get("more_body", False)
    return True


async def send_json(
    send: Send,
    status: int,
    content: dict[str, Any],
    *,
    close: bool,
    extra: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    """Answer with ``content`` as JSON; ``close`` makes uvicorn close the connection rather
    than drain a body nobody read."""
    body = _ENCODER.encode(content)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
