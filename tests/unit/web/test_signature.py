"""X-Hub-Signature-256 verification: GitHub's documented test vector, rotation, refusals."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from app.web.webhooks import signature_problem, verify_signature

# From GitHub's "Validating webhook deliveries" page.
DOC_SECRET = b"It's a Secret to Everybody"
DOC_PAYLOAD = b"Hello, World!"
DOC_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def _sign(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def test_githubs_documented_test_vector_verifies() -> None:
    assert verify_signature(DOC_PAYLOAD, DOC_SIGNATURE, [DOC_SECRET])


def test_any_of_the_rotating_secrets_verifies() -> None:
    secrets = [b"new", DOC_SECRET]

    assert verify_signature(DOC_PAYLOAD, DOC_SIGNATURE, secrets)
    assert verify_signature(DOC_PAYLOAD, _sign(b"new", DOC_PAYLOAD), secrets)
    assert not verify_signature(DOC_PAYLOAD, _sign(b"retired", DOC_PAYLOAD), secrets)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        DOC_SIGNATURE.removeprefix("sha256="),  # no scheme
        DOC_SIGNATURE.replace("sha256=", "sha1="),  # the legacy header's scheme is not accepted
        DOC_SIGNATURE.upper(),
        DOC_SIGNATURE[:-1],
        DOC_SIGNATURE + "0",
        "sha256=ünïcode",
    ],
)
def test_anything_but_the_exact_signature_is_refused(header: str | None) -> None:
    assert not verify_signature(DOC_PAYLOAD, header, [DOC_SECRET])


def test_a_changed_body_is_refused() -> None:
    assert not verify_signature(DOC_PAYLOAD + b" ", DOC_SIGNATURE, [DOC_SECRET])


def test_without_secrets_nothing_verifies_and_the_problem_names_the_setting() -> None:
    assert not verify_signature(DOC_PAYLOAD, DOC_SIGNATURE, [])

    problem = signature_problem(DOC_PAYLOAD, DOC_SIGNATURE, ())

    assert problem is not None and "DBARCH_GITHUB_WEBHOOK_SECRET is unset" in problem


def test_problems_say_what_happened() -> None:
    secrets = [DOC_SECRET]

    assert signature_problem(DOC_PAYLOAD, DOC_SIGNATURE, secrets) is None
    missing = signature_problem(DOC_PAYLOAD, None, secrets)
    wrong = signature_problem(DOC_PAYLOAD, _sign(b"x", DOC_PAYLOAD), secrets)
    assert missing is not None and "missing" in missing
    assert wrong is not None and "does not match" in wrong
