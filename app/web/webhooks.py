"""``POST /webhooks/github``: verify, keep in the inbox, enqueue, answer 202 in milliseconds.

A raw ASGI handler rather than a Litestar route, because the body is read here, as a stream:
a request is judged on its headers before any of its body is read, the body is taken only
within a process-wide byte budget and a read deadline, and the HMAC is computed as it
arrives. An early answer says ``Connection: close`` so that uvicorn drops the rest of the
body instead of draining it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
import structlog
from litestar import asgi
from litestar.types import Receive, Scope, Send

from app.web.envelope import (
    BadPayload,
    Delivery,
    accepts,
    check_decodable,
    delivery_from,
    parse_envelope,
)
from app.web.ingress import (
    MAX_BODY_BYTES,
    IngressLimits,
    Refusal,
    SignatureCheck,
    admit_headers,
    signature_refusal,
)
from app.web.state import QueueUnavailable, WebState, web_state
from app.web.streams import TooSlow, receive_within, send_json
from app.web.throttle import client_key

__all__ = [
    "MAX_BODY_BYTES",
    "WEBHOOK_PATH",
    "github_webhook",
    "signature_problem",
    "verify_signature",
]

log = structlog.get_logger(__name__)

WEBHOOK_PATH = "/webhooks/github"

Reply = tuple[int, dict[str, Any]]


def verify_signature(body: bytes, header: str | None, secrets: Sequence[bytes]) -> bool:
    """Whether ``X-Hub-Signature-256`` is the HMAC-SHA256 of ``body`` under any of ``secrets``.

    Every secret is tried (rotation: the old and the new one are accepted meanwhile), each
    compared in constant time. The legacy SHA-1 header is never consulted.
    """
    check = SignatureCheck(secrets, header or "")
    check.update(body)
    return check.matches()


def signature_problem(body: bytes, header: str | None, secrets: Sequence[bytes]) -> str | None:
    """Why a delivery is not authentic (what happened and what to do), or None if it is."""
    headers = {"x-hub-signature-256": header} if header else {}
    refusal = admit_headers("POST", headers, secrets, IngressLimits())
    if isinstance(refusal, Refusal) and refusal.reason == "signature":
        return refusal.error
    if not verify_signature(body, header, secrets):
        return signature_refusal().error
    return None


@asgi(WEBHOOK_PATH, include_in_schema=False, copy_scope=False)
async def github_webhook(scope: Scope, receive: Receive, send: Send) -> None:
    """Receive one GitHub delivery: admit, read within limits, authenticate, keep, enqueue."""
    web = web_state(scope["app"])
    started = time.perf_counter()
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
    method = str(scope.get("method", ""))  # an ASGI handler sees websocket scopes too
    admitted = admit_headers(method, headers, web.secrets, web.limits)
    peer = scope.get("client")  # the forwarded address behind a trusted proxy
    client = client_key(peer[0] if peer else None)
    if isinstance(admitted, Refusal):
        await _refuse_read(web, receive, send, admitted, headers, started)
        return
    grant = web.budget.reserve(admitted, client)
    if isinstance(grant, str):
        await _refuse(web, send, _busy(grant), headers, started)
        return
    try:
        check = SignatureCheck(web.secrets, headers["x-hub-signature-256"])
        body = await _read_body(receive, admitted, check, web.limits)
        if body is None:  # the client went away
            web.metrics.delivery(None, "disconnected", time.perf_counter() - started)
            return
        if isinstance(body, Refusal):
            await _refuse(web, send, body, headers, started)
            return
        if not check.matches():
            await _refuse(web, send, signature_refusal(), headers, started, close=False)
            return
        web.budget.prove(client)  # only GitHub (or whoever has the secret) gets here
        status, content = await _handle(
            web, headers["x-github-delivery"], headers["x-github-event"], body, started
        )
        await send_json(send, status, content, close=False)
    finally:
        web.budget.release(grant)


async def _refuse_read(
    web: WebState,
    receive: Receive,
    send: Send,
    refusal: Refusal,
    headers: dict[str, str],
    started: float,
) -> None:
    """Answer a request refused on its headers; a small body is read and dropped first, so
    that the sender sees the answer (a misconfigured App shows it in its delivery log)
    rather than a reset. Dropping holds no bytes; the connections a client may hold at
    once are bounded by ``serving.MAX_CONNECTIONS_PER_CLIENT``."""
    if refusal.status in (400, 401) and _declared_small(headers, web.limits):
        await _receive_all(receive, web.limits, _drop)
    await _refuse(web, send, refusal, headers, started)


def _busy(reason: str) -> Refusal:
    return Refusal(503, f"{reason}: retry in a few seconds", "busy")


async def _read_body(
    receive: Receive, size: int, check: SignatureCheck, limits: IngressLimits
) -> bytes | Refusal | None:
    """The body (exactly ``size`` bytes, fed to ``check``), a refusal, or None (client gone)."""
    chunks: list[bytes] = []

    def take(chunk: bytes) -> None:
        check.update(chunk)
        chunks.append(chunk)

    outcome = await _receive_all(receive, limits, take)
    if isinstance(outcome, Refusal):
        return outcome
    if not outcome:  # the client went away
        return None
    if sum(map(len, chunks)) != size:
        return Refusal(400, "the body's length differs from its Content-Length", "length")
    return b"".join(chunks)


async def _receive_all(
    receive: Receive, limits: IngressLimits, take: Callable[[bytes], None]
) -> Refusal | bool:
    """Hand each piece of the body to ``take``: True once it is all there, False if the
    client went away, a 408 refusal if it is too slow (in all or between two pieces)."""
    try:
        return await receive_within(receive, limits.read_total_s, limits.read_idle_s, take)
    except TooSlow as slow:
        return Refusal(408, f"{slow}, as GitHub does", "timeout")


def _drop(chunk: bytes) -> None:
    """Read and forget (a refused body that is small enough to be read)."""


def _declared_small(headers: dict[str, str], limits: IngressLimits) -> bool:
    length = headers.get("content-length", "")
    return length.isdigit() and int(length) <= limits.budget.small_body_bytes


async def _handle(
    web: WebState, delivery_id: str, event: str, body: bytes, started: float
) -> Reply:
    """The answer to an authentic delivery: parse, route, keep, enqueue."""
    try:
        envelope = parse_envelope(body)
        delivery = delivery_from(delivery_id, event, envelope, body)
    except BadPayload as err:
        log.warning(
            "webhook.rejected", reason="payload", delivery_id=delivery_id, github_event=event
        )
        web.metrics.delivery(event, "rejected", time.perf_counter() - started)
        return 400, {"error": str(err)}
    (status, content), outcome = await _route(web, delivery)
    emit = log.error if status >= 500 else log.info
    emit(
        "webhook.delivery",
        delivery_id=delivery_id,
        github_event=event,
        action=delivery.action,
        installation_id=delivery.installation_id,
        repository=delivery.repository,
        outcome=outcome,
    )
    web.metrics.delivery(event, outcome, time.perf_counter() - started)
    return status, content


async def _refuse(
    web: WebState,
    send: Send,
    refusal: Refusal,
    headers: dict[str, str],
    started: float,
    *,
    close: bool = True,
) -> None:
    """Answer a refused request (closing the connection unless its body was read whole)."""
    log.warning(
        "webhook.rejected",
        reason=refusal.reason,
        status=refusal.status,
        delivery_id=headers.get("x-github-delivery", "")[:128] or None,
    )
    seconds = time.perf_counter() - started
    if refusal.reason == "signature":
        web.metrics.signature_failure(seconds)
    else:
        web.metrics.delivery(None, "busy" if refusal.status == 503 else "rejected", seconds)
    extra = [(b"retry-after", b"5")] if refusal.status == 503 else []
    if refusal.status == 405:
        extra.append((b"allow", b"POST"))
    await send_json(send, refusal.status, {"error": refusal.error}, close=close, extra=extra)


async def _route(web: WebState, delivery: Delivery) -> tuple[Reply, str]:
    """The reply and the logged outcome for an authentic, well-formed delivery."""
    if delivery.event == "ping":
        return (200, {"status": "pong"}), "pong"
    if delivery.sender == web.bot_login:
        return (202, {"status": "ignored", "reason": "our own event"}), "ignored_own"
    if not accepts(delivery.event, delivery.action):
        return (202, {"status": "ignored"}), "ignored"
    try:
        check_decodable(delivery.payload)  # the worker decodes all of it
    except BadPayload as err:
        return (400, {"error": str(err)}), "rejected"
    return await _accept(web, delivery)


async def _accept(web: WebState, delivery: Delivery) -> tuple[Reply, str]:
    """Inbox first (durable, dedupes redeliveries), then the queue; 503 only if both failed.

    Both go through batchers: deliveries arriving together share one INSERT and one Redis
    round trip, and each still gets its answer only once its own row is committed.
    """
    try:
        stored = await web.inbox.submit(delivery)
    except psycopg.DataError as err:  # this row, not the store: keeping it will never work
        log.warning(
            "webhook.unstorable", delivery_id=delivery.delivery_id, error=type(err).__name__
        )
        return (400, {"error": f"the delivery cannot be stored: {err}"}), "rejected"
    except psycopg.Error as err:
        log.error(
            "webhook.store_failed", delivery_id=delivery.delivery_id, error=type(err).__name__
        )
        stored = None
    if stored is False:
        return await _duplicate(web, delivery)
    try:
        await web.jobs.submit(delivery)
    except QueueUnavailable as err:
        log.warning("webhook.enqueue_failed", delivery_id=delivery.delivery_id, error=str(err))
        if stored is None:
            error = (
                "the store and Redis are both unreachable, so the delivery was not kept: "
                "redeliver it from the App's settings once they are back"
            )
            return (503, {"error": error}), "lost"
        return (202, {"status": "accepted", "queued": False}), "stored"
    if stored is None:
        return (202, {"status": "accepted", "queued": True, "stored": False}), "queued"
    return (202, {"status": "accepted", "queued": True}), "accepted"


async def _duplicate(web: WebState, delivery: Delivery) -> tuple[Reply, str]:
    """A delivery the inbox has: done is done; unfinished is queued again (a person's
    "Redeliver" after a job gave up). The deterministic job id makes that a no-op while the
    first job is still queued or running."""
    try:
        unfinished = await web.store.is_unfinished(delivery.delivery_id)
        if unfinished:
            await web.jobs.submit(delivery)
    except (psycopg.Error, QueueUnavailable) as err:
        log.warning("webhook.requeue_failed", delivery_id=delivery.delivery_id, error=str(err))
        unfinished = False  # the recovery loop will try again
    return (202, {"status": "duplicate", "requeued": unfinished}), "duplicate"
