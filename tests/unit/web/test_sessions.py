"""Dashboard sessions: random ids, idle and absolute expiry, logout, a new token ends them all."""

from __future__ import annotations

import json
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from app.web.sessions import (
    ABSOLUTE_S,
    IDLE_S,
    KEY_PREFIX,
    SessionStore,
    SessionsUnavailable,
    session_live,
    token_fingerprint,
)

TOKEN = "the-operator-token-0123456789"
NEW_TOKEN = "a-rotated-operator-token-987654"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class FakeRedis:
    """SET EX, GETEX EX and DEL with expiry on the same clock (no I/O)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.data: dict[str, tuple[str, float]] = {}
        self.down = False

    def _live(self, key: str) -> str | None:
        if self.down:
            raise RedisConnectionError("Connection refused")
        value = self.data.get(key)
        if value is None or value[1] <= self.clock.now:
            self.data.pop(key, None)
            return None
        return value[0]

    async def set(self, key: str, value: str, ex: int) -> bool:
        self._live(key)
        self.data[key] = (value, self.clock.now + ex)
        return True

    async def getex(self, key: str, ex: int) -> bytes | None:
        value = self._live(key)
        if value is None:
            return None
        self.data[key] = (value, self.clock.now + ex)
        return value.encode()

    async def delete(self, key: str) -> int:
        return 0 if self._live(key) is None else int(self.data.pop(key) is not None)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def redis(clock: Clock) -> FakeRedis:
    return FakeRedis(clock)


@pytest.fixture
def sessions(redis: FakeRedis, clock: Clock) -> SessionStore:
    async def connect() -> Any:
        return redis

    return SessionStore(connect, clock=clock)


async def test_a_session_is_random_and_stored_under_its_hash(
    sessions: SessionStore, redis: FakeRedis
) -> None:
    first, second = await sessions.open(TOKEN), await sessions.open(TOKEN)

    assert first != second and len(first) >= 43  # 32 random bytes, base64url
    assert all(key.startswith(KEY_PREFIX) for key in redis.data)
    stored = " ".join(key + value for key, (value, _) in redis.data.items())
    assert first not in stored and second not in stored and TOKEN not in stored
    assert await sessions.check(first, TOKEN) and await sessions.check(second, TOKEN)


async def test_an_unknown_or_closed_session_is_refused(sessions: SessionStore) -> None:
    session_id = await sessions.open(TOKEN)
    assert not await sessions.check("made-up", TOKEN)

    await sessions.close(session_id)

    assert not await sessions.check(session_id, TOKEN)


async def test_idle_sessions_end_and_use_keeps_them_alive(
    sessions: SessionStore, clock: Clock
) -> None:
    used, idle = await sessions.open(TOKEN), await sessions.open(TOKEN)
    for _ in range(3):
        clock.now += IDLE_S - 60
        assert await sessions.check(used, TOKEN)

    assert not await sessions.check(idle, TOKEN)


async def test_a_session_ends_at_its_absolute_age_however_used(
    sessions: SessionStore, clock: Clock, redis: FakeRedis
) -> None:
    session_id = await sessions.open(TOKEN)
    while clock.now + 3600 < 1_800_000_000.0 + ABSOLUTE_S:
        clock.now += 3600
        assert await sessions.check(session_id, TOKEN)
    clock.now += 3600

    assert not await sessions.check(session_id, TOKEN)
    assert not redis.data  # deleted, not left to idle out


async def test_a_new_admin_token_ends_every_session(
    sessions: SessionStore, redis: FakeRedis
) -> None:
    session_ids = [await sessions.open(TOKEN) for _ in range(3)]

    assert not any([await sessions.check(s, NEW_TOKEN) for s in session_ids])
    assert not redis.data
    assert not any([await sessions.check(s, TOKEN) for s in session_ids])  # and for good


async def test_redis_down_says_so_and_what_still_works(
    sessions: SessionStore, redis: FakeRedis
) -> None:
    session_id = await sessions.open(TOKEN)
    redis.down = True

    for attempt in (sessions.open(TOKEN), sessions.check(session_id, TOKEN)):
        with pytest.raises(SessionsUnavailable, match=r"Redis.*admin API"):
            await attempt


@pytest.mark.parametrize(
    "record",
    [
        None,
        b"not json",
        b"{}",
        json.dumps({"created": "soon", "token": "x"}).encode(),
        json.dumps({"created": 1_800_000_100.0, "token": token_fingerprint(TOKEN)}).encode(),
    ],
)
def test_broken_or_future_records_do_not_count(record: bytes | None) -> None:
    assert not session_live(record, fingerprint=token_fingerprint(TOKEN), now=1_800_000_000.0)


def test_the_fingerprint_depends_on_the_token() -> None:
    assert token_fingerprint(TOKEN) == token_fingerprint(TOKEN)
    assert token_fingerprint(TOKEN) != token_fingerprint(NEW_TOKEN)
    assert TOKEN not in token_fingerprint(TOKEN)
