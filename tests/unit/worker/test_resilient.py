"""The waits of a worker that lost Redis, and the keys of its heartbeats (no I/O)."""

from __future__ import annotations

from app.adapters.heartbeats import HEARTBEAT_EVERY_S, HEARTBEAT_TTL_S, Heartbeat
from app.adapters.queue import AUDITS_QUEUE
from worker.resilient import RETRY_CAP_S, retry_delay


def test_waits_double_from_half_a_second_up_to_ten_seconds() -> None:
    assert [retry_delay(n) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert retry_delay(1000) == RETRY_CAP_S


def test_a_heartbeat_names_its_queue_host_and_pid_and_outlives_two_missed_beats() -> None:
    beat = Heartbeat(AUDITS_QUEUE, "web-1", 4242)

    assert beat.key == "dbarch:heartbeat:dbarch:audits:web-1:4242"
    assert HEARTBEAT_TTL_S >= 3 * HEARTBEAT_EVERY_S
