"""The setup flow's states: random, accepted once, forgotten after the hour, bounded in number."""

from __future__ import annotations

from app.web.setup import PendingStates


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_state_is_accepted_once() -> None:
    states = PendingStates()
    state = states.issue()

    assert states.valid(state)
    assert states.valid(state)  # checking does not use it up
    assert states.take(state)
    assert not states.take(state)
    assert not states.valid(state)


def test_unknown_and_missing_states_are_refused() -> None:
    states = PendingStates()
    states.issue()

    assert not states.valid("guessed")
    assert not states.take(None)


def test_states_are_random_and_long() -> None:
    states = PendingStates()
    issued = {states.issue() for _ in range(50)}

    assert len(issued) == 50
    assert min(len(state) for state in issued) >= 32


def test_a_state_expires_after_the_hour() -> None:
    clock = Clock()
    states = PendingStates(clock=clock)
    old = states.issue()
    clock.now += 1800
    young = states.issue()

    clock.now += 1801

    assert not states.take(old)
    assert states.take(young)


def test_only_the_newest_states_are_kept() -> None:
    states = PendingStates(max_pending=3)
    issued = [states.issue() for _ in range(5)]

    assert [states.valid(state) for state in issued] == [False, False, True, True, True]
