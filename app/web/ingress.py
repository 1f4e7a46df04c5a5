"""Admission of a webhook request before and while its body is read: headers, budget, HMAC."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from app.web.budget import BudgetLimits

__all__ = [
    "MAX_BODY_BYTES",
    "BudgetLimits",
    "IngressLimits",
    "Refusal",
    "SignatureCheck",
    "admit_headers",
]

#: GitHub caps payloads at 25 MB (and sends none larger).
MAX_BODY_BYTES = 25 * 1024 * 1024
_SIGNATURE = re.compile(r"sha256=([0-9a-f]{64})")
# GitHub sends a GUID; anything else is refused before it becomes a key in the store and Redis.
_DELIVERY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
# Event names are lowercase words joined by underscores (``issue_comment``).
_EVENT = re.compile(r"[a-z][a-z0-9_]{0,63}")


@dataclass(frozen=True, slots=True)
class IngressLimits:
    """How much a webhook request may take from the process, and for how long."""

    max_body_bytes: int = MAX_BODY_BYTES
    read_total_s: float = 10.0
    """The whole body must arrive within this (GitHub sends a delivery in well under 1 s)."""
    read_idle_s: float = 5.0
    """...and no gap between two pieces of it may be longer than this."""
    budget: BudgetLimits = field(default_factory=BudgetLimits)
    """Bytes of bodies held at once: overall, per client, and kept for proven senders."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """An answer given without (or instead of) reading the rest of the body."""

    status: int
    error: str
    reason: str
    """A short word for the log and the metrics (``signature``, ``headers``, ``size``...)."""


class SignatureCheck:
    """``X-Hub-Signature-256`` verified as the body streams in: one HMAC per secret, fed
    chunk by chunk, so no body has to be held whole to be found unauthentic."""

    def __init__(self, secrets: Sequence[bytes], header: str) -> None:
        match = _SIGNATURE.fullmatch(header)
        self._given = match.group(1).encode() if match else b""
        self._macs = [hmac.new(secret, digestmod=hashlib.sha256) for secret in secrets]

    def update(self, chunk: bytes) -> None:
        """Feed the next piece of the body."""
        for mac in self._macs:
            mac.update(chunk)

    def matches(self) -> bool:
        """Whether the body fed so far is signed by any secret (each compared in constant
        time, all of them every time: rotation accepts the old and the new one)."""
        matched = False
        for mac in self._macs:
            matched |= hmac.compare_digest(mac.hexdigest().encode(), self._given)
        return matched and bool(self._given)


def admit_headers(
    method: str,
    headers: Mapping[str, str],
    secrets: Sequence[bytes],
    limits: IngressLimits,
) -> Refusal | int:
    """The body length to read, or why the request is refused before any of it is read.

    Everything that can be judged from the request line and headers is judged here: a
    request without a well-formed signature, event or delivery id, or with a body of
    unknown or excessive length, never gets its body read.
    """
    if method != "POST":
        return Refusal(405, "webhook deliveries are POSTs", "method")
    if not secrets:
        return Refusal(
            401,
            "DBARCH_GITHUB_WEBHOOK_SECRET is unset, so no delivery can be verified: set it to "
            "the webhook secret of the GitHub App",
            "signature",
        )
    signature = headers.get("x-hub-signature-256")
    if not signature:
        return Refusal(
            401,
            "X-Hub-Signature-256 is missing: give the GitHub App a webhook secret (GitHub "
            "signs deliveries only then) and set the same one in DBARCH_GITHUB_WEBHOOK_SECRET",
            "signature",
        )
    if not _SIGNATURE.fullmatch(signature):
        return Refusal(
            401,
            "X-Hub-Signature-256 is not `sha256=` and 64 lowercase hex digits, as GitHub sends it",
            "signature",
        )
    event, delivery_id = headers.get("x-github-event"), headers.get("x-github-delivery")
    if not (
        event and _EVENT.fullmatch(event) and delivery_id and _DELIVERY_ID.fullmatch(delivery_id)
    ):
        return Refusal(
            400,
            "X-GitHub-Event (an event name) and X-GitHub-Delivery (a GUID) are required, as "
            "GitHub sends them",
            "headers",
        )
    length = headers.get("content-length")
    if length is None or "transfer-encoding" in headers:
        return Refusal(411, "a Content-Length is required (GitHub always sends one)", "length")
    if not length.isdigit() or len(length) > 12:
        return Refusal(400, "Content-Length is not a number of bytes", "length")
    size = int(length)
    if size > limits.max_body_bytes:
        return Refusal(
            413,
            f"the body is larger than the {limits.max_body_bytes // (1024 * 1024)} MiB a "
            "webhook delivery may be (GitHub sends none larger)",
            "size",
        )
    return size


def signature_refusal() -> Refusal:
    """The answer to a body whose HMAC matches none of the secrets."""
    return Refusal(
        401,
        "X-Hub-Signature-256 does not match the body: the GitHub App's webhook secret "
        "differs from DBARCH_GITHUB_WEBHOOK_SECRET (list old and new, comma-separated, "
        "while rotating)",
        "signature",
    )
