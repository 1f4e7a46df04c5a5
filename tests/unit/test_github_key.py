"""The App private key check: what is wrong is said, the key never is."""

from __future__ import annotations

import functools

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from app.github_app_file import AppFileError, parse_app
from app.github_key import key_problem
from tests.github_fake import private_key_pem
from tests.manifest_payloads import conversion

_PKCS8 = serialization.PrivateFormat.PKCS8
_TRADITIONAL = serialization.PrivateFormat.TraditionalOpenSSL
_NONE = serialization.NoEncryption()
_PASSPHRASE = serialization.BestAvailableEncryption(b"correct horse")


@functools.cache
def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: object, fmt: serialization.PrivateFormat, enc: object = _NONE) -> str:
    return key.private_bytes(serialization.Encoding.PEM, fmt, enc).decode()  # type: ignore[attr-defined,no-any-return]


def _body_lines(pem: str) -> list[str]:
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


def test_a_real_rsa_key_in_either_format_passes() -> None:
    assert key_problem(private_key_pem()) is None
    assert key_problem(_pem(_rsa(), _TRADITIONAL)) is None  # GitHub's download: BEGIN RSA
    assert key_problem("\n" + _pem(_rsa(), _TRADITIONAL) + "\n\n") is None


def _cases() -> list[tuple[str, str, str]]:
    public = (
        _rsa()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    ssh = _pem(ed25519.Ed25519PrivateKey.generate(), serialization.PrivateFormat.OpenSSH)
    real = _pem(_rsa(), _TRADITIONAL)
    lines = real.splitlines()
    return [
        ("empty", "   ", "is empty"),
        ("garbage", "MIIEowIBAAKCAQEAgarbage/+==", "is not PEM text"),
        ("a path", "/run/secrets/app.private-key.pem", "looks like a file path"),
        ("a relative path", "keys/app.pem", "looks like a file path"),
        ("public", public, "is a public key"),
        ("openssh", ssh, "OpenSSH"),
        ("pkcs8 encrypted", _pem(_rsa(), _PKCS8, _PASSPHRASE), "encrypted with a passphrase"),
        ("legacy encrypted", _pem(_rsa(), _TRADITIONAL, _PASSPHRASE), "encrypted"),
        ("ec", _pem(ec.generate_private_key(ec.SECP256R1()), _PKCS8), "not an RSA key (EC)"),
        ("truncated", "\n".join(lines[:5] + lines[-1:]), "not a readable private key"),
        ("altered", "\n".join([*lines[:3], "A" * 64, *lines[4:]]), "not a readable"),
    ]


@pytest.mark.parametrize(("what", "value", "said"), _cases(), ids=[c[0] for c in _cases()])
def test_each_kind_of_wrong_key_is_named_without_quoting_it(
    what: str, value: str, said: str
) -> None:
    problem = key_problem(value)

    assert problem is not None and said in problem, (what, problem)
    for line in _body_lines(value) or [value.strip()]:
        if len(line) > 8:
            assert line not in problem


def test_the_app_file_from_setup_refuses_a_broken_key() -> None:
    with pytest.raises(AppFileError, match=r"private key \(pem\) in github-app.json is not PEM"):
        parse_app(conversion(pem="not a key"), where="github-app.json", remedy="register again")
