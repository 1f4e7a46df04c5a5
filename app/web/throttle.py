"""How often wrong admin tokens may be tried: per client with growing lockouts, and overall.

Pure bookkeeping (no I/O; the clock is injectable). Each client (an IPv4 address, or an IPv6
/64, which one machine can fill with addresses) has a bucket of :data:`PER_CLIENT` wrong
tokens that refills over :data:`WINDOW_S`; an empty bucket locks the client out for
``WINDOW_S × 2^(n-1)`` (at most :data:`MAX_LOCK_S`) the n-th time. A right token clears the
client's record. Across all clients, :data:`GLOBAL_FAILURES` wrong tokens per window are
allowed; past that, only clients with no wrong token on record get a try, so that many
addresses guessing together slow down while the operator, whose address has not failed, still
gets in. The state lives in the web process (one ``serve``): several web processes each count
on their own.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "GLOBAL_FAILURES",
    "MAX_LOCK_S",
    "PER_CLIENT",
    "WINDOW_S",
    "LoginThrottle",
    "client_key",
]

PER_CLIENT = 5
"""Wrong tokens a client may send per window before it is locked out."""
WINDOW_S = 60.0
"""The window (seconds) over which a client's and the global allowance refill."""
MAX_LOCK_S = 3600.0
"""The longest lockout; a client quiet this long starts afresh."""
GLOBAL_FAILURES = 200
"""Wrong tokens per window from all clients together before suspects must wait."""
MAX_CLIENTS = 10_000
"""Clients remembered at most (the least recently seen are forgotten first)."""


def client_key(host: str | None) -> str:
    """Who a connection's peer address counts as: the IPv4 address, or its IPv6 /64."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # a unix socket path or a test client's name
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float
    locked_until: float = 0.0
    lockouts: int = 0

    def refill(self, now: float, capacity: float, per_s: float) -> None:
        self.tokens = min(capacity, self.tokens + (now - self.updated) * per_s)
        self.updated = now


class LoginThrottle:
    """Counts wrong admin tokens; says how long a client must wait before the next check."""

    def __init__(
        self,
        *,
        per_client: int = PER_CLIENT,
        window_s: float = WINDOW_S,
        max_lock_s: float = MAX_LOCK_S,
        global_failures: int = GLOBAL_FAILURES,
        max_clients: int = MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._per_client = float(per_client)
        self._window_s = window_s
        self._max_lock_s = max_lock_s
        self._global_cap = float(global_failures)
        self._max_clients = max_clients
        self._clock = clock
        self._clients: OrderedDict[str, _Bucket] = OrderedDict()
        self._global = _Bucket(tokens=self._global_cap, updated=clock())

    def retry_after(self, client: str) -> float | None:
        """Seconds ``client`` must wait before a token it sends is checked; None: go ahead."""
        now = self._clock()
        bucket = self._known(client, now)
        if bucket is None:
            return None  # never failed (or long ago): always one try, even under a flood
        if bucket.locked_until > now:
            return _whole(bucket.locked_until - now)
        self._global.refill(now, self._global_cap, self._global_cap / self._window_s)
        if self._global.tokens < 1.0:
            return _whole((1.0 - self._global.tokens) * self._window_s / self._global_cap)
        return None

    def failed(self, client: str) -> float | None:
        """Count a wrong token from ``client``; the lockout it now has, in seconds, or None."""
        now = self._clock()
        self._global.refill(now, self._global_cap, self._global_cap / self._window_s)
        self._global.tokens = max(self._global.tokens - 1.0, -self._global_cap)
        bucket = self._known(client, now)
        if bucket is None:
            bucket = self._clients[client] = _Bucket(tokens=self._per_client, updated=now)
            self._forget_oldest()
        bucket.refill(now, self._per_client, self._per_client / self._window_s)
        bucket.tokens -= 1.0
        if bucket.tokens >= 1.0:
            return None
        bucket.lockouts += 1
        lock_s = min(self._max_lock_s, self._window_s * 2.0 ** (bucket.lockouts - 1))
        bucket.locked_until = now + lock_s
        return lock_s

    def succeeded(self, client: str) -> None:
        """A right token: ``client``'s record is cleared."""
        self._clients.pop(client, None)

    def _known(self, client: str, now: float) -> _Bucket | None:
        bucket = self._clients.get(client)
        if bucket is None:
            return None
        if now - max(bucket.updated, bucket.locked_until) > self._max_lock_s:
            del self._clients[client]  # quiet for the longest lockout: a fresh start
            return None
        self._clients.move_to_end(client)
        return bucket

    def _forget_oldest(self) -> None:
        while len(self._clients) > self._max_clients:
            self._clients.popitem(last=False)


def _whole(seconds: float) -> float:
    """Whole seconds, at least one (``Retry-After`` takes an integer)."""
    return float(max(1, math.ceil(seconds)))
