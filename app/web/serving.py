"""How uvicorn serves the web app: connection limits, and a request head that must be quick."""

from __future__ import annotations

import asyncio
import ipaddress
import weakref
from collections import Counter
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from app.settings import Settings
from app.web.throttle import client_key

__all__ = [
    "HEAD_TIMEOUT_S",
    "KEEP_ALIVE_S",
    "MAX_CONNECTIONS",
    "MAX_CONNECTIONS_PER_CLIENT",
    "MAX_HEAD_BYTES",
    "GuardedHttpProtocol",
    "uvicorn_config",
]

#: The request line and headers must arrive within this (slowloris on headers).
HEAD_TIMEOUT_S = 10.0
#: ...and be at most this long (httptools itself would buffer a header of any size).
MAX_HEAD_BYTES = 64 * 1024
#: An idle keep-alive connection is closed after this.
KEEP_ALIVE_S = 5.0
#: Beyond this many open connections, new requests get 503 (uvicorn's limit_concurrency).
MAX_CONNECTIONS = 1000
#: Connections one client (an IPv4 address or IPv6 /64) may hold open at once; the next is
#: closed at once, so that one client cannot take every one of :data:`MAX_CONNECTIONS`.
MAX_CONNECTIONS_PER_CLIENT = MAX_CONNECTIONS // 4

_HEAD_TOO_SLOW = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\ncontent-length: 42\r\n"
    b"connection: close\r\n\r\nthe request headers did not arrive in time"
)
_TOO_MANY = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 45\r\n"
    b"retry-after: 5\r\nconnection: close\r\n\r\ntoo many connections from this client at once"
)
# Open connections per client, per server (the protocols of one server share its state).
_OPEN: weakref.WeakKeyDictionary[ServerState, Counter[str]] = weakref.WeakKeyDictionary()
_HEAD_TOO_BIG = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain\r\n"
    b"content-length: 32\r\nconnection: close\r\n\r\nthe request headers are too long"
)


class _HeadTooBig(Exception):
    """Raised from a parser callback to stop parsing a request refused for its head."""


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the two limits it lacks on a request's head.

    uvicorn times out idle keep-alive connections but not a request whose headers trickle
    in, and httptools buffers headers of any length. Here each head (request line and
    headers) must be complete within :data:`HEAD_TIMEOUT_S` of the connection or of the
    request's first byte, and within :data:`MAX_HEAD_BYTES`: counted per read while the head
    is incomplete (so that an endless header is cut before it is all buffered), and as parsed
    once it is complete (so that one read carrying a whole long head is caught too, and one
    carrying a short head and some body is not mistaken for a long head).
    """

    _head_timer: asyncio.TimerHandle | None = None
    _in_head = False
    _head_bytes = 0
    _head_parsed = 0
    _counted_as: str | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        peer = self.client[0] if self.client else None
        if peer is not None and not self._is_trusted_proxy(peer):
            key = client_key(peer)
            open_now = _OPEN.setdefault(self.server_state, Counter())
            if open_now[key] >= MAX_CONNECTIONS_PER_CLIENT:
                transport.write(_TOO_MANY)
                transport.close()
                return
            open_now[key] += 1
            self._counted_as = key
        self._start_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head()
        if self._counted_as is not None:
            open_now = _OPEN[self.server_state]
            open_now[self._counted_as] -= 1
            if not open_now[self._counted_as]:
                del open_now[self._counted_as]
        super().connection_lost(exc)

    def _is_trusted_proxy(self, peer: str) -> bool:
        """Whether ``peer`` is a proxy uvicorn believes (its clients are told apart later,
        by the forwarded address; the proxy itself holds every connection)."""
        if not self.config.proxy_headers:
            return False
        trusted = self.config.forwarded_allow_ips
        entries = trusted.split(",") if isinstance(trusted, str) else trusted
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        for entry in (e.strip() for e in entries):
            if entry == "*":
                return True
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
        return False

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._in_head and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse(_HEAD_TOO_BIG)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._in_head:  # the first request's clock started with the connection
            self._start_head()

    def on_url(self, url: bytes) -> None:
        self._head_parsed += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_parsed += len(name) + len(value) + 4  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._stop_head()
        if self._head_parsed > MAX_HEAD_BYTES:
            self._refuse(_HEAD_TOO_BIG)
            # Stops the parser: the request never reaches the app (uvicorn's own 400 for a
            # parser error finds the connection closed already).
            raise _HeadTooBig
        super().on_headers_complete()

    def _start_head(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        self._head_parsed = 0
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(HEAD_TIMEOUT_S, self._refuse, _HEAD_TOO_SLOW)

    def _stop_head(self) -> None:
        self._in_head = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _refuse(self, response: bytes) -> None:
        self._stop_head()
        if not self.transport.is_closing():
            self.transport.write(response)
            self.transport.close()


def uvicorn_config(
    app: Any,
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    **options: Any,
) -> uvicorn.Config:
    """The uvicorn configuration every way of serving the app uses (``serve``, ``run``, tests).

    Forwarded headers are believed only from ``DBARCH_TRUSTED_PROXIES``: uvicorn believes
    ``X-Forwarded-For`` from 127.0.0.1 unless told otherwise, so anything on this machine could
    pose as any client (and dodge the login throttle).
    """
    proxies = [p.strip() for p in (settings.trusted_proxies or "").split(",") if p.strip()]
    return uvicorn.Config(
        app,
        host=settings.web_host if host is None else host,
        port=settings.web_port if port is None else port,
        http=GuardedHttpProtocol,
        timeout_keep_alive=int(KEEP_ALIVE_S),
        limit_concurrency=MAX_CONNECTIONS,
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None,
        log_config=None,  # app.log routes uvicorn's records
        access_log=False,  # the receiver logs one structured line per delivery
        **options,
    )
