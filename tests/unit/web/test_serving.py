"""Which peers the per-client connection limit counts: everyone but a believed proxy (no I/O)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import uvicorn
from uvicorn.server import ServerState

from app.settings import Settings
from app.web.serving import GuardedHttpProtocol, uvicorn_config


async def _app(scope: object, receive: object, send: object) -> None:
    """An ASGI app that is never called."""


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _protocol(trusted_proxies: str | None, loop: asyncio.AbstractEventLoop) -> GuardedHttpProtocol:
    config: uvicorn.Config = uvicorn_config(
        _app, Settings(trusted_proxies=trusted_proxies), host="127.0.0.1", port=1
    )
    config.load()
    return GuardedHttpProtocol(config, ServerState(), {}, loop)


@pytest.mark.parametrize(
    ("trusted", "peer", "exempt"),
    [
        (None, "127.0.0.1", False),  # no proxy believed: uvicorn's 127.0.0.1 default is not
        ("10.0.0.0/8", "10.1.2.3", True),
        ("10.0.0.0/8", "192.0.2.1", False),
        ("127.0.0.1, ::1", "::1", True),
        ("127.0.0.1", "not-an-address", False),
    ],
)
def test_only_a_believed_proxy_is_exempt_from_the_connection_limit(
    trusted: str | None, peer: str, exempt: bool, loop: asyncio.AbstractEventLoop
) -> None:
    assert _protocol(trusted, loop)._is_trusted_proxy(peer) is exempt
