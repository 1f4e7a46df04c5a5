"""The target DSN: parsed, described by its non-secret parts, and failures to use it explained."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import psycopg
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict

from app.adapters.errors import BadDsn, TargetUnavailable

DSN_FORMS = "'postgresql://user@host:port/db' or 'host=… port=… dbname=… user=…'"

#: libpq's complaints about an option's value, raised before any connection is attempted.
#: Only the option name is kept (checked against libpq's keywords): values may be secrets.
_BAD_VALUE = re.compile(
    r'invalid integer value ".*" for connection option "(?P<option>\w+)"'
    r"|invalid (?P<named>\w+) value"
    r"|invalid (?P<port>port) number"
    r'|could not parse network (?P<address>address) "'
)
#: libpq and psycopg refuse host, hostaddr and port lists of different lengths.
_COUNT_MISMATCH = re.compile(r"could not match \d+ [\w ]+ to \d+ ")
_PORT = re.compile(r"\s*\+?\d+\s*")


@dataclass(frozen=True, slots=True)
class Where:
    """The non-secret parts of a DSN, for messages."""

    host: str
    port: str
    database: str
    user: str

    @property
    def address(self) -> str:
        """``host:port`` as the user would write it."""
        return f"{self.host}:{self.port}"


def parse_dsn(dsn: str) -> tuple[dict[str, Any], Where]:
    """The DSN's options and its non-secret parts; :class:`BadDsn` when it is malformed."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error:
        # libpq echoes fragments of a malformed DSN: say nothing of its content.
        raise BadDsn(
            f"the target connection string is malformed and could not be parsed: use {DSN_FORMS}"
        ) from None
    # psycopg resolves host names itself, so a non-numeric port would surface as a confusing
    # name-resolution failure: catch it here as libpq would.
    for port in str(params.get("port") or "").split(","):
        if port.strip() and not (_PORT.fullmatch(port) and 1 <= int(port) <= 65535):
            raise _bad_value("port")
    where = Where(
        host=str(params.get("host") or params.get("hostaddr") or "localhost"),
        port=str(params.get("port") or "5432"),
        database=str(params.get("dbname") or params.get("user") or "(default)"),
        user=str(params.get("user") or "(default)"),
    )
    return params, where


def scrub(text: str, secrets: Sequence[str]) -> str:
    """Remove secrets from a library message; drop it entirely if a secret is too short."""
    for secret in secrets:
        if not secret:
            continue
        if len(secret) < 4:
            return ""
        text = text.replace(secret, "***")
    return text


@cache
def _libpq_keywords() -> frozenset[str]:
    return frozenset(o.keyword.decode() for o in pq.Conninfo.get_defaults())


def _bad_value(option: str | None) -> BadDsn:
    what = f"the value of {option!r} is invalid" if option else "an option value is invalid"
    return BadDsn(f"the target connection string is malformed: {what}")


def _malformed(raw: str) -> BadDsn | None:
    """The libpq / psycopg message rejects the DSN itself (before connecting), else None."""
    if _COUNT_MISMATCH.search(raw):
        return BadDsn(
            "the target connection string is malformed: it lists different numbers of "
            "hosts, host addresses and ports"
        )
    found = _BAD_VALUE.search(raw)
    if found is None:
        return None
    if found["address"]:
        return _bad_value("hostaddr")
    option = found["option"] or found["named"] or found["port"]
    return _bad_value(option if option in _libpq_keywords() else None)


def connect_error(exc: psycopg.Error, where: Where, secrets: Sequence[str]) -> TargetUnavailable:
    """Classify a failed connection attempt into an actionable, DSN-free message."""
    raw = str(exc)
    malformed = _malformed(raw)
    if malformed is not None:
        return malformed
    reason = scrub(raw, secrets).strip().splitlines()
    detail = reason[0] if reason else ""
    detail = re.sub(r"^connection failed:\s*", "", detail)
    lowered = raw.lower()
    if "password authentication failed" in lowered or "authentication failed" in lowered:
        msg = (
            f"authentication failed for user {where.user!r} at {where.address}: "
            "check the user name and password of the target connection"
        )
    elif "no pg_hba.conf entry" in lowered:
        msg = (
            f"the server at {where.address} refused user {where.user!r} for database "
            f"{where.database!r} (no pg_hba.conf entry): ask the DBA to allow this client"
        )
    elif re.search(r'database ".*" does not exist', raw):
        msg = (
            f"database {where.database!r} does not exist at {where.address}: "
            "check the database name of the target connection"
        )
    elif re.search(r'role ".*" does not exist', raw):
        msg = (
            f"role {where.user!r} does not exist at {where.address}: "
            "check the user name of the target connection"
        )
    elif "connection refused" in lowered:
        msg = (
            f"connection refused by {where.address}: check that PostgreSQL is running and "
            "listens on that host and port (listen_addresses, port, firewall)"
        )
    elif "timeout" in lowered or "timed out" in lowered:
        msg = f"timed out connecting to {where.address}: check the host, port and network path"
    elif "resolve host" in lowered or "translate host name" in lowered:
        msg = f"cannot resolve host {where.host!r}: check the host name of the target connection"
    else:
        msg = f"cannot connect to {where.address} as {where.user!r}"
        if detail:
            msg += f": {detail}"
    return TargetUnavailable(msg)
