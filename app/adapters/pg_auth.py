"""Password authentication for the PostgreSQL servers we start: a SCRAM verifier and pg_hba."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = ["HBA_SCRAM_ONLY", "new_password", "scram_verifier"]

#: Every connection, over TCP or the unix socket, must prove the password (SCRAM-SHA-256):
#: no ``trust`` for whoever else can reach 127.0.0.1 or the socket on this machine.
HBA_SCRAM_ONLY = """\
# Written by DB Architect: every connection needs a password (SCRAM-SHA-256).
# TYPE  DATABASE     USER  ADDRESS       METHOD
local   all          all                 scram-sha-256
host    all          all   127.0.0.1/32  scram-sha-256
host    all          all   ::1/128       scram-sha-256
local   replication  all                 scram-sha-256
host    replication  all   127.0.0.1/32  scram-sha-256
host    replication  all   ::1/128       scram-sha-256
"""
_ITERATIONS = 4096  # PostgreSQL's default scram_iterations


def new_password() -> str:
    """A random password (32 URL-safe characters: no quoting needed in a libpq URL)."""
    return secrets.token_urlsafe(24)


def scram_verifier(password: str, *, salt: bytes | None = None) -> str:
    """The ``SCRAM-SHA-256$…`` verifier PostgreSQL stores for ``password`` (RFC 5802/7677).

    ``ALTER ROLE … PASSWORD '<verifier>'`` sets the password without the server ever seeing
    it in clear. ``password`` must be ASCII (SASLprep leaves it unchanged then).
    """
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"
