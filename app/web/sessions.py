"""Dashboard sessions: random ids in a cookie, kept in Redis with idle and absolute expiry.

The cookie holds only a random id (``secrets.token_urlsafe``); Redis keeps, under the id's
SHA-256 (a copy of Redis yields no usable cookie), when the session began and a fingerprint of
the admin token it was opened with. A session ends when it has been idle for :data:`IDLE_S`
(Redis' TTL, renewed on each use), :data:`ABSOLUTE_S` after login whatever its use, at logout,
and, for all sessions at once, when the admin token changes (the fingerprint no longer
matches). While Redis is unreachable nobody can log in to the dashboard; the admin API,
which takes the bearer token on every request, keeps working.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from redis.exceptions import RedisError

from app.web.state import QueueUnavailable

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "ABSOLUTE_S",
    "IDLE_S",
    "KEY_PREFIX",
    "SessionStore",
    "SessionsUnavailable",
    "session_live",
    "token_fingerprint",
]

IDLE_S = 12 * 3600
"""A session unused this long is gone."""
ABSOLUTE_S = 7 * 24 * 3600
"""A session is gone this long after login, however much it is used."""
KEY_PREFIX = "dbarch:session:"
"""Redis keys of sessions: the prefix, then the SHA-256 of the session id."""
_CONTEXT = b"db-architect dashboard session v2"
_TIMEOUT_S = 2.0
_ERRORS = (RedisError, OSError, TimeoutError)
T = TypeVar("T")


class SessionsUnavailable(Exception):
    """Redis, where sessions live, is unreachable: nobody can log in to the dashboard now."""


def token_fingerprint(token: str) -> str:
    """An HMAC keyed by the admin token: equal for the same token, unrelated for another."""
    return hmac.new(token.encode(), _CONTEXT, hashlib.sha256).hexdigest()


def session_live(record: bytes | str | None, *, fingerprint: str, now: float) -> bool:
    """Whether a stored session record still counts (token unchanged, not past its age)."""
    if record is None:
        return False
    try:
        data = json.loads(record)
        created = float(data["created"])
        opened_with = str(data["token"])
    except (ValueError, KeyError, TypeError):
        return False
    return hmac.compare_digest(opened_with, fingerprint) and 0 <= now - created < ABSOLUTE_S


def _key(session_id: str) -> str:
    return KEY_PREFIX + hashlib.sha256(session_id.encode()).hexdigest()


class SessionStore:
    """Sessions in Redis; ``connect`` gives the client (the web's queue pool)."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[Redis]],
        *,
        idle_s: int = IDLE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._connect = connect
        self._idle_s = idle_s
        self._clock = clock

    async def open(self, token: str) -> str:
        """A new session for whoever presented ``token``; its id, for the cookie.

        Raises:
            SessionsUnavailable: Redis is unreachable.
        """
        session_id = secrets.token_urlsafe(32)
        record = json.dumps({"created": self._clock(), "token": token_fingerprint(token)})
        await self._run(lambda redis: redis.set(_key(session_id), record, ex=self._idle_s))
        return session_id

    async def check(self, session_id: str, token: str) -> bool:
        """Whether the session is live for the current ``token``; renews its idle time.

        Raises:
            SessionsUnavailable: Redis is unreachable.
        """
        key = _key(session_id)
        record = await self._run(lambda redis: redis.getex(key, ex=self._idle_s))
        if session_live(record, fingerprint=token_fingerprint(token), now=self._clock()):
            return True
        if record is not None:  # expired by age or opened with an older token: gone for good
            await self._run(lambda redis: redis.delete(key))
        return False

    async def close(self, session_id: str) -> None:
        """End the session (logout): its cookie is refused from now on.

        Raises:
            SessionsUnavailable: Redis is unreachable.
        """
        await self._run(lambda redis: redis.delete(_key(session_id)))

    async def _run(self, command: Callable[[Redis], Awaitable[T]]) -> T:
        try:
            async with asyncio.timeout(_TIMEOUT_S):
                return await command(await self._connect())
        except (QueueUnavailable, *_ERRORS) as err:
            raise SessionsUnavailable(
                f"dashboard sessions are kept in Redis, which is not reachable "
                f"({type(err).__name__}); the admin API (bearer token) still works"
            ) from err
