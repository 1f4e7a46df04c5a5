"""The bytes of webhook bodies the process holds: a cap overall, a share per client, a reserve.

A webhook body's HMAC can only be checked once all of it is there, so a sender without the
secret can make the process hold bodies for as long as the read deadline allows. The budget
bounds what that costs: bytes held overall (so memory is bounded whatever the number of
connections), bytes held per client (an IPv4 address or an IPv6 /64, so one client cannot
take the whole budget), and a part of the budget only *proven* clients may use:
those that sent a correctly signed delivery recently. GitHub sends from a handful of
addresses, which prove themselves with their first delivery; from then on no number of
unproven clients can keep them out. Pure bookkeeping (no I/O; the clock is injectable).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["BudgetLimits", "ByteBudget", "Grant"]

_MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class BudgetLimits:
    """How many bytes of bodies may be held at once, overall and by whom."""

    budget_bytes: int = 96 * _MIB
    """Bytes of bodies held at once, across all requests being read or handled."""
    small_body_bytes: int = 1 * _MIB
    """Bodies up to this size may use the whole budget; larger ones leave ``reserve_bytes``."""
    reserve_bytes: int = 16 * _MIB
    """Kept for small bodies (nearly every real delivery), so big ones cannot starve them."""
    proven_reserve_bytes: int = 32 * _MIB
    """Kept for proven clients: unproven ones together hold at most the rest."""
    client_share_bytes: int = 16 * _MIB
    """Bytes one unproven client may hold at once: hundreds of GitHub's deliveries (tens of
    KB each), so a burst from a fresh address gets through, but a sixth of the budget."""
    proven_for_s: float = 24 * 3600.0
    """How long a correctly signed delivery keeps its sender proven (renewed by each one)."""
    proven_clients: int = 4096
    """Proven clients remembered at most (the least recently proven are forgotten first)."""


@dataclass(frozen=True, slots=True)
class Grant:
    """Bytes a request holds until it gives them back with :meth:`ByteBudget.release`."""

    size: int
    client: str
    unproven: bool
    """Whether they count against the unproven clients' part of the budget."""


@dataclass(slots=True)
class _Holding:
    bytes: int = 0
    bodies: int = 0


class ByteBudget:
    """Bytes of request bodies the process holds; a request that does not fit is refused.

    Callers reserve a body's declared length, under its client's key, before reading any of
    it and release it once the response is sent. Never blocks: a refused request gets a 503.
    """

    def __init__(
        self, limits: BudgetLimits, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits
        self.in_use = 0
        """Bytes held by all clients."""
        self.unproven_in_use = 0
        """Bytes held by clients that are not proven."""
        self._clock = clock
        self._held: dict[str, _Holding] = {}
        self._proven: OrderedDict[str, float] = OrderedDict()

    def reserve(self, size: int, client: str) -> Grant | str:
        """Take ``size`` bytes for ``client`` if they fit; else why they do not."""
        limits = self.limits
        limit = limits.budget_bytes
        if size > limits.small_body_bytes:
            limit -= limits.reserve_bytes
        if self.in_use + size > limit:
            return "too many webhook bodies are being received at once"
        held = self._held.get(client) or _Holding()
        proven = self.is_proven(client)
        if not proven:
            if self.unproven_in_use + size > limits.budget_bytes - limits.proven_reserve_bytes:
                return (
                    "too many webhook bodies from senders that have not yet sent a signed "
                    "delivery are being received at once"
                )
            if size > limits.client_share_bytes:
                return (
                    f"a body over {limits.client_share_bytes // _MIB} MiB is taken only from "
                    "an address that has sent a correctly signed delivery recently"
                )
            if held.bytes + size > limits.client_share_bytes:
                return (
                    "this address has as many bytes of webhook bodies in flight as a sender "
                    "that has not yet sent a signed delivery may have "
                    f"({limits.client_share_bytes // _MIB} MiB)"
                )
            self.unproven_in_use += size
        held.bytes += size
        held.bodies += 1
        self._held[client] = held
        self.in_use += size
        return Grant(size, client, unproven=not proven)

    def release(self, grant: Grant) -> None:
        """Give back what :meth:`reserve` took."""
        self.in_use -= grant.size
        if grant.unproven:
            self.unproven_in_use -= grant.size
        held = self._held[grant.client]
        held.bytes -= grant.size
        held.bodies -= 1
        if not held.bodies:
            del self._held[grant.client]

    def prove(self, client: str) -> None:
        """``client`` just sent a correctly signed delivery: it may use the whole budget."""
        self._proven[client] = self._clock() + self.limits.proven_for_s
        self._proven.move_to_end(client)
        while len(self._proven) > self.limits.proven_clients:
            self._proven.popitem(last=False)

    def is_proven(self, client: str) -> bool:
        """Whether ``client`` sent a correctly signed delivery within ``proven_for_s``."""
        until = self._proven.get(client)
        if until is None:
            return False
        if until < self._clock():
            del self._proven[client]
            return False
        return True
