"""``POST /webhooks/github``: verify, keep in the inbox, enqueue, answer 202 in milliseconds."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Sequence
from typing import Any

import psycopg
import structlog
from litestar import Request, Response, post

from app.web.envelope import BadPayload, Delivery, accepts, delivery_from, parse_envelope
from app.web.state import QueueUnavailable, WebState, web_state

__all__ = [
    "MAX_BODY_BYTES",
    "WEBHOOK_PATH",
    "github_webhook",
    "signature_problem",
    "verify_signature",
]

log = structlog.get_logger(__name__)

WEBHOOK_PATH = "/webhooks/github"
#: GitHub caps payloads at 25 MB (and sends none larger); Litestar's default is 10 MB.
MAX_BODY_BYTES = 25 * 1024 * 1024
_SIGNATURE_PREFIX = "sha256="
# GitHub sends a GUID; anything else is refused before it becomes a key in the store and Redis.
_DELIVERY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")

Reply = tuple[int, dict[str, Any]]


def verify_signature(body: bytes, header: str | None, secrets: Sequence[bytes]) -> bool:
    """Whether ``X-Hub-Signature-256`` is the HMAC-SHA256 of ``body`` under any of ``secrets``.

    Every secret is tried (rotation: the old and the new one are accepted meanwhile), each
    compared in constant time. The legacy SHA-1 header is never consulted.
    """
    if not header or not header.startswith(_SIGNATURE_PREFIX):
        return False
    given = header[len(_SIGNATURE_PREFIX) :].encode("utf-8", "replace")
    matched = False
    for secret in secrets:
        expected = hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
        matched |= hmac.compare_digest(expected, given)
    return matched


def signature_problem(body: bytes, header: str | None, secrets: Sequence[bytes]) -> str | None:
    """Why a delivery is not authentic (what happened and what to do), or None if it is."""
    if not secrets:
        return (
            "DBARCH_GITHUB_WEBHOOK_SECRET is unset, so no delivery can be verified: set it to "
            "the webhook secret of the GitHub App"
        )
    if not header:
        return (
            "X-Hub-Signature-256 is missing: give the GitHub App a webhook secret (GitHub "
            "signs deliveries only then) and set the same one in DBARCH_GITHUB_WEBHOOK_SECRET"
        )
    if not verify_signature(body, header, secrets):
        return (
            "X-Hub-Signature-256 does not match the body: the GitHub App's webhook secret "
            "differs from DBARCH_GITHUB_WEBHOOK_SECRET (list old and new, comma-separated, "
            "while rotating)"
        )
    return None


@post(
    WEBHOOK_PATH,
    request_max_body_size=MAX_BODY_BYTES,
    include_in_schema=False,
    status_code=202,
)
async def github_webhook(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """Receive one GitHub delivery: authenticate, filter, keep in the inbox, enqueue."""
    web = web_state(request.app)
    started = time.perf_counter()
    body = await request.body()
    headers = request.headers
    problem = signature_problem(body, headers.get("x-hub-signature-256"), web.secrets)
    if problem is not None:
        log.warning(
            "webhook.rejected", reason="signature", delivery_id=headers.get("x-github-delivery")
        )
        web.metrics.signature_failure(time.perf_counter() - started)
        return _reply(401, {"error": problem})
    event = headers.get("x-github-event")
    delivery_id = headers.get("x-github-delivery")
    if not event or not delivery_id or not _DELIVERY_ID.fullmatch(delivery_id):
        log.warning(
            "webhook.rejected", reason="headers", delivery_id=delivery_id, github_event=event
        )
        web.metrics.delivery(event, "rejected", time.perf_counter() - started)
        return _reply(400, {"error": "X-GitHub-Event and a GUID in X-GitHub-Delivery are required"})
    try:
        envelope = parse_envelope(body)
    except BadPayload as err:
        log.warning(
            "webhook.rejected", reason="payload", delivery_id=delivery_id, github_event=event
        )
        web.metrics.delivery(event, "rejected", time.perf_counter() - started)
        return _reply(400, {"error": str(err)})
    delivery = delivery_from(delivery_id, event, envelope, body)
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
    return _reply(status, content)


async def _route(web: WebState, delivery: Delivery) -> tuple[Reply, str]:
    """The reply and the logged outcome for an authentic, well-formed delivery."""
    if delivery.event == "ping":
        return (200, {"status": "pong"}), "pong"
    if delivery.sender == web.bot_login:
        return (202, {"status": "ignored", "reason": "our own event"}), "ignored_own"
    if not accepts(delivery.event, delivery.action):
        return (202, {"status": "ignored"}), "ignored"
    return await _accept(web, delivery)


async def _accept(web: WebState, delivery: Delivery) -> tuple[Reply, str]:
    """Inbox first (durable, dedupes redeliveries), then the queue; 503 only if both failed.

    Both go through batchers: deliveries arriving together share one INSERT and one Redis
    round trip, and each still gets its answer only once its own row is committed.
    """
    try:
        stored = await web.inbox.submit(delivery)
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


def _reply(status: int, content: dict[str, Any]) -> Response[dict[str, Any]]:
    return Response(content, status_code=status)
