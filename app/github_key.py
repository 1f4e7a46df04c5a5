"""Whether a GitHub App private key can sign: PEM, RSA, unencrypted; never echoes the key."""

from __future__ import annotations

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

__all__ = ["key_problem"]

_NEW_KEY = (
    "generate a new private key on the App's settings page on GitHub (Private keys → "
    "Generate a private key) and use the downloaded .pem file's text"
)
_WRONG_BLOCKS = {
    "PUBLIC KEY": "is a public key, not the App's private key",
    "RSA PUBLIC KEY": "is a public key, not the App's private key",
    "CERTIFICATE": "is a certificate, not the App's private key",
    "OPENSSH PRIVATE KEY": "is an OpenSSH key (ssh-keygen), not a GitHub App key",
    "ENCRYPTED PRIVATE KEY": "is encrypted with a passphrase, which DB Architect cannot use",
}


def key_problem(text: str) -> str | None:
    """What is wrong with ``text`` as the App's private key, or None when it can sign.

    The answer describes the value (a path, a public key, encrypted, not RSA…) and what to
    do, and never quotes any of it.
    """
    stripped = text.strip()
    if not stripped:
        return f"is empty; {_NEW_KEY}"
    if "-----BEGIN " not in stripped:
        if _looks_like_path(stripped):
            return (
                "looks like a file path, but it takes the key's PEM text itself, e.g. "
                'DBARCH_GITHUB_PRIVATE_KEY="$(cat app.private-key.pem)"'
            )
        return (
            "is not PEM text (no -----BEGIN … PRIVATE KEY----- line); use the whole .pem "
            "file's text, newlines kept or written as \\n"
        )
    label = stripped.partition("-----BEGIN ")[2].partition("-----")[0].strip()
    if label in _WRONG_BLOCKS:
        return f"{_WRONG_BLOCKS[label]}; {_NEW_KEY}"
    if "Proc-Type: 4,ENCRYPTED" in stripped:
        return f"{_WRONG_BLOCKS['ENCRYPTED PRIVATE KEY']}; {_NEW_KEY}"
    try:
        key = load_pem_private_key(stripped.encode(), password=None)
    except TypeError:  # cryptography's word for "encrypted, and no password given"
        return f"{_WRONG_BLOCKS['ENCRYPTED PRIVATE KEY']}; {_NEW_KEY}"
    except (ValueError, UnsupportedAlgorithm):
        return (
            f"is PEM ({label or 'no label'}) but not a readable private key: truncated, "
            f"altered, or its newlines lost; {_NEW_KEY}"
        )
    if not isinstance(key, RSAPrivateKey):
        kind = type(key).__name__.removesuffix("PrivateKey")
        return f"is not an RSA key ({kind}); GitHub Apps sign with RSA: {_NEW_KEY}"
    return None


def _looks_like_path(value: str) -> bool:
    return "\n" not in value and (
        value.startswith(("/", "~", "./", "../")) or value.lower().endswith((".pem", ".key"))
    )
