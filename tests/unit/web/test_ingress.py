"""Admission before the body is read, the byte budget and the streamed HMAC (no I/O)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from app.web.ingress import (
    ByteBudget,
    IngressLimits,
    Refusal,
    SignatureCheck,
    admit_headers,
)

SECRETS = (b"new", b"old")
BODY = b'{"action": "created"}' * 1000
LIMITS = IngressLimits()


def _signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def _headers(**changes: str | None) -> dict[str, str]:
    headers: dict[str, str | None] = {
        "x-hub-signature-256": _signature(b"new", BODY),
        "x-github-event": "issue_comment",
        "x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "content-length": str(len(BODY)),
    }
    headers.update(changes)
    return {name: value for name, value in headers.items() if value is not None}


def test_a_well_formed_request_is_admitted_with_its_length() -> None:
    assert admit_headers("POST", _headers(), SECRETS, LIMITS) == len(BODY)


@pytest.mark.parametrize(
    ("method", "changes", "status", "reason"),
    [
        ("GET", {}, 405, "method"),
        ("POST", {"x-hub-signature-256": None}, 401, "signature"),
        ("POST", {"x-hub-signature-256": "sha256=" + "0" * 63}, 401, "signature"),
        ("POST", {"x-hub-signature-256": "sha1=" + "0" * 40}, 401, "signature"),
        ("POST", {"x-hub-signature-256": "SHA256=" + "0" * 64}, 401, "signature"),
        ("POST", {"x-github-event": None}, 400, "headers"),
        ("POST", {"x-github-event": "Issue Comment"}, 400, "headers"),
        ("POST", {"x-github-delivery": None}, 400, "headers"),
        ("POST", {"x-github-delivery": "../../etc"}, 400, "headers"),
        ("POST", {"x-github-delivery": "a" * 129}, 400, "headers"),
        ("POST", {"content-length": None}, 411, "length"),
        ("POST", {"transfer-encoding": "chunked"}, 411, "length"),
        ("POST", {"content-length": "-1"}, 400, "length"),
        ("POST", {"content-length": "1e3"}, 400, "length"),
        ("POST", {"content-length": "9" * 40}, 400, "length"),
        ("POST", {"content-length": str(25 * 1024 * 1024 + 1)}, 413, "size"),
    ],
)
def test_a_request_is_refused_on_its_headers_alone(
    method: str, changes: dict[str, str | None], status: int, reason: str
) -> None:
    refusal = admit_headers(method, _headers(**changes), SECRETS, LIMITS)

    assert isinstance(refusal, Refusal)
    assert (refusal.status, refusal.reason) == (status, reason)


def test_without_secrets_every_request_is_refused_and_the_setting_named() -> None:
    refusal = admit_headers("POST", _headers(), (), LIMITS)

    assert isinstance(refusal, Refusal) and refusal.status == 401
    assert "DBARCH_GITHUB_WEBHOOK_SECRET" in refusal.error


@pytest.mark.parametrize("secret", SECRETS)
def test_the_signature_verifies_chunk_by_chunk_under_any_secret(secret: bytes) -> None:
    check = SignatureCheck(SECRETS, _signature(secret, BODY))
    for start in range(0, len(BODY), 997):
        check.update(BODY[start : start + 997])

    assert check.matches()


def test_a_changed_body_or_another_secret_does_not_verify() -> None:
    changed = SignatureCheck(SECRETS, _signature(b"new", BODY))
    changed.update(BODY + b" ")
    retired = SignatureCheck(SECRETS, _signature(b"retired", BODY))
    retired.update(BODY)
    malformed = SignatureCheck(SECRETS, "sha256=xyz")
    malformed.update(BODY)

    assert not changed.matches()
    assert not retired.matches()
    assert not malformed.matches()
    assert not SignatureCheck((), _signature(b"new", b"")).matches()


def test_the_budget_caps_bytes_held_and_keeps_a_reserve_for_small_bodies() -> None:
    limits = IngressLimits(budget_bytes=100, small_body_bytes=10, reserve_bytes=20)
    budget = ByteBudget(limits)

    assert budget.reserve(50)
    assert budget.reserve(30)
    assert not budget.reserve(11)  # big bodies stop at 80
    assert budget.reserve(10) and budget.reserve(10)  # small ones use the reserve
    assert not budget.reserve(1)
    budget.release(50)
    assert budget.in_use == 50
    assert budget.reserve(30)
