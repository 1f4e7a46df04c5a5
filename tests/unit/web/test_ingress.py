"""Admission before the body is read, the byte budget and the streamed HMAC (no I/O)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from app.web.budget import BudgetLimits, ByteBudget, Grant
from app.web.ingress import (
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
    limits = BudgetLimits(
        budget_bytes=100, small_body_bytes=10, reserve_bytes=20, proven_reserve_bytes=0
    )
    budget = ByteBudget(limits)
    budget.prove("github")

    first = budget.reserve(50, "github")
    assert isinstance(first, Grant)
    assert isinstance(budget.reserve(30, "github"), Grant)
    assert isinstance(budget.reserve(11, "github"), str)  # big bodies stop at 80
    assert isinstance(budget.reserve(10, "github"), Grant)  # small ones use the reserve
    assert isinstance(budget.reserve(10, "github"), Grant)
    assert isinstance(budget.reserve(1, "github"), str)
    budget.release(first)
    assert budget.in_use == 50
    assert isinstance(budget.reserve(30, "github"), Grant)


def test_an_unproven_client_holds_at_most_its_share_and_never_the_proven_reserve() -> None:
    limits = BudgetLimits(
        budget_bytes=100,
        small_body_bytes=100,
        reserve_bytes=0,
        proven_reserve_bytes=40,
        client_share_bytes=25,
    )
    budget = ByteBudget(limits)

    held = [budget.reserve(10, "attacker"), budget.reserve(10, "attacker")]
    assert all(isinstance(g, Grant) and g.unproven for g in held)
    assert "as many bytes of webhook bodies" in str(budget.reserve(10, "attacker"))  # 30 > 25
    assert "is taken only from" in str(budget.reserve(26, "stranger"))
    assert isinstance(budget.reserve(5, "attacker"), Grant)  # 25: its whole share
    for n in range(3):  # unproven clients share 60 at most
        assert isinstance(budget.reserve(10, f"other-{n}"), Grant)
    assert "not yet sent a signed delivery" in str(budget.reserve(10, "other-9"))
    budget.prove("github")
    proven = [budget.reserve(20, "github"), budget.reserve(20, "github")]
    assert all(isinstance(g, Grant) and not g.unproven for g in proven)  # the kept 40
    assert budget.in_use == 95 and budget.unproven_in_use == 55
    for grant in held:
        assert isinstance(grant, Grant)
        budget.release(grant)
    assert budget.unproven_in_use == 35
    assert isinstance(budget.reserve(20, "attacker"), Grant)  # 5 + 20: its share again
    assert isinstance(budget.reserve(1, "attacker"), str)


def test_a_proof_expires_and_only_so_many_clients_are_remembered() -> None:
    now = [0.0]
    limits = BudgetLimits(proven_for_s=60.0, proven_clients=2)
    budget = ByteBudget(limits, clock=lambda: now[0])

    budget.prove("a")
    budget.prove("b")
    now[0] = 59.0
    assert budget.is_proven("a") and budget.is_proven("b")
    budget.prove("a")  # renewed
    budget.prove("c")  # b, the least recently proven, is forgotten
    assert not budget.is_proven("b")
    now[0] = 61.0
    assert budget.is_proven("a") and budget.is_proven("c")
    now[0] = 120.0
    assert not budget.is_proven("c")
