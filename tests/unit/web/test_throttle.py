"""The login throttle's arithmetic: per-client buckets, doubling lockouts, the global cap."""

from __future__ import annotations

import pytest

from app.web.throttle import LoginThrottle, client_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _fail(throttle: LoginThrottle, client: str, times: int) -> list[float | None]:
    return [throttle.failed(client) for _ in range(times)]


def test_five_wrong_tokens_lock_a_client_for_a_minute(clock: Clock) -> None:
    throttle = LoginThrottle(clock=clock)

    assert _fail(throttle, "203.0.113.7", 4) == [None] * 4
    assert throttle.retry_after("203.0.113.7") is None
    assert throttle.failed("203.0.113.7") == 60.0
    assert throttle.retry_after("203.0.113.7") == 60.0
    clock.now += 59.5
    assert throttle.retry_after("203.0.113.7") == 1.0  # whole seconds, at least one
    clock.now += 0.5
    assert throttle.retry_after("203.0.113.7") is None


def test_lockouts_double_up_to_the_cap(clock: Clock) -> None:
    throttle = LoginThrottle(clock=clock, max_lock_s=300.0)
    locks = []
    for _ in range(5):
        *_, lock = _fail(throttle, "a", 5)
        locks.append(lock)
        assert lock is not None
        clock.now += lock

    assert locks == [60.0, 120.0, 240.0, 300.0, 300.0]


def test_a_locked_client_refills_slowly_not_all_at_once(clock: Clock) -> None:
    """After a lockout the bucket holds what refilled meanwhile, not a full new allowance."""
    throttle = LoginThrottle(clock=clock)
    _fail(throttle, "a", 5)
    clock.now += 60.0
    assert _fail(throttle, "a", 4) == [None] * 4
    assert throttle.failed("a") == 120.0


def test_a_right_token_clears_the_record(clock: Clock) -> None:
    throttle = LoginThrottle(clock=clock)
    _fail(throttle, "a", 4)
    throttle.succeeded("a")

    assert _fail(throttle, "a", 4) == [None] * 4


def test_other_clients_are_not_locked_by_one(clock: Clock) -> None:
    throttle = LoginThrottle(clock=clock)
    _fail(throttle, "attacker", 50)

    assert throttle.retry_after("attacker") is not None
    assert throttle.retry_after("operator") is None


def test_the_global_cap_stops_suspects_but_lets_a_fresh_client_try(clock: Clock) -> None:
    throttle = LoginThrottle(clock=clock, global_failures=20)
    for n in range(20):  # twenty addresses, one guess each: none is locked on its own
        assert throttle.failed(f"10.0.0.{n}") is None

    assert throttle.retry_after("10.0.0.1") == 3.0  # 60 s / 20: the next global token
    assert throttle.retry_after("operator") is None
    clock.now += 3.0
    assert throttle.retry_after("10.0.0.1") is None


def test_a_long_quiet_client_starts_afresh(clock: Clock) -> None:
    throttle = LoginThrottle(clock=clock, max_lock_s=600.0)
    _fail(throttle, "a", 5)
    clock.now += 60.0 + 600.0 + 1.0

    assert _fail(throttle, "a", 5)[-1] == 60.0  # the first lockout again, not the second


def test_the_memory_is_bounded(clock: Clock) -> None:
    throttle = LoginThrottle(clock=clock, max_clients=3)
    for client in "abcd":
        _fail(throttle, client, 5)

    assert throttle.retry_after("a") is None  # forgotten: the least recently seen
    assert throttle.retry_after("d") is not None


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::9", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        (None, "unknown"),
        ("testclient", "testclient"),
    ],
)
def test_clients_are_addresses_and_ipv6_networks(host: str | None, key: str) -> None:
    assert client_key(host) == key
