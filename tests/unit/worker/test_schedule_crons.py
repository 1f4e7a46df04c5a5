"""The events worker runs the schedule crons: every minute, hourly at :41, never in burst mode."""

from __future__ import annotations

from datetime import UTC, datetime

from arq.cron import CronJob

from app.settings import Settings
from worker.main import build_workers, close_worker


def _next(job: CronJob, after: datetime) -> str:
    job.calculate_next(after)
    assert job.next_run is not None
    return f"{job.next_run:%H:%M:%S}"


async def test_the_events_worker_scans_every_minute_and_refreshes_hourly() -> None:
    events, audits = build_workers(Settings(), ctx={"embedder": None}, handle_signals=False)
    try:
        crons = {job.name.removeprefix("cron:"): job for job in events.cron_jobs}
        assert {"run_schedules", "refresh_schedules", "prune_inbox", "sample_activity"} <= set(
            crons
        )
        assert audits.cron_jobs == []

        start = datetime(2026, 12, 1, 10, 5, 30, tzinfo=UTC)
        assert _next(crons["run_schedules"], start) == "10:06:00"
        assert _next(crons["refresh_schedules"], start) == "10:41:00"
        assert _next(crons["sample_activity"], start) == "10:06:30"
    finally:
        await close_worker(events)
        await close_worker(audits)


async def test_burst_workers_run_no_crons() -> None:
    events, audits = build_workers(
        Settings(), ctx={"embedder": None}, burst=True, handle_signals=False
    )
    try:
        assert events.cron_jobs == []
    finally:
        await close_worker(events)
        await close_worker(audits)
