"""Which stored schedules fire at a UTC instant: time zones, DST gaps and repeats, firing once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.adapters.github.errors import GitHubError, GitHubTransient
from app.adapters.store import ScheduledRepository
from app.flows.requests import AuditRequest
from app.flows.schedules import (
    due,
    fire,
    refresh,
    schedule_of,
    schedule_request,
    slot_key,
    wall_minutes,
)

BERLIN = ZoneInfo("Europe/Berlin")


def _repo(schedule: str, timezone: str = "UTC", name: str = "octo/shop") -> ScheduledRepository:
    return ScheduledRepository(7, name, schedule, timezone)


def _fires_on(repo: ScheduledRepository, day: datetime) -> list[str]:
    """The UTC minutes of the 24 hours from ``day`` in which ``repo``'s schedule fires."""
    minutes = (day + timedelta(minutes=m) for m in range(24 * 60))
    return [f"{t:%Y-%m-%d %H:%M}" for t in minutes if due([repo], t)]


def test_a_schedule_fires_in_its_own_time_zone() -> None:
    repos = [
        _repo("0 9 * * *", "UTC", "a/utc"),
        _repo("0 9 * * *", "Europe/Berlin", "a/berlin"),  # UTC+1 in winter
        _repo("0 9 * * *", "Asia/Kolkata", "a/kolkata"),  # UTC+5:30
        _repo("0 9 * * *", "America/New_York", "a/new-york"),  # UTC-5 in winter
    ]
    fired = {
        f"{hour:02}:{minute:02}": [
            r.full_name for r in due(repos, datetime(2026, 1, 5, hour, minute, tzinfo=UTC))
        ]
        for hour, minute in ((3, 30), (8, 0), (9, 0), (14, 0), (9, 1))
    }

    assert fired == {
        "03:30": ["a/kolkata"],
        "08:00": ["a/berlin"],
        "09:00": ["a/utc"],
        "14:00": ["a/new-york"],
        "09:01": [],
    }


def test_summer_time_moves_the_utc_minute() -> None:
    berlin = _repo("0 9 * * *", "Europe/Berlin")

    assert _fires_on(berlin, datetime(2026, 1, 5, tzinfo=UTC)) == ["2026-01-05 08:00"]
    assert _fires_on(berlin, datetime(2026, 7, 6, tzinfo=UTC)) == ["2026-07-06 07:00"]


def test_the_weekday_is_the_local_one() -> None:
    # Monday 01:00 in Auckland (UTC+13 in January) is Sunday 12:00 UTC.
    auckland = _repo("0 1 * * mon", "Pacific/Auckland")

    assert _fires_on(auckland, datetime(2026, 1, 4, tzinfo=UTC)) == ["2026-01-04 12:00"]
    assert _fires_on(auckland, datetime(2026, 1, 5, tzinfo=UTC)) == []


def test_a_time_the_clock_skips_fires_right_after_the_gap_once() -> None:
    # 2026-03-29: Berlin jumps from 02:00 CET to 03:00 CEST (01:00 UTC); 02:30 never happens.
    repo = _repo("30 2 * * *", "Europe/Berlin")

    assert _fires_on(repo, datetime(2026, 3, 29, tzinfo=UTC)) == ["2026-03-29 01:00"]
    assert _fires_on(repo, datetime(2026, 3, 30, tzinfo=UTC)) == ["2026-03-30 00:30"]


def test_a_time_the_clock_repeats_fires_the_first_time_only() -> None:
    # 2026-10-25: Berlin goes from 03:00 CEST back to 02:00 CET (01:00 UTC); 02:30 comes twice.
    repo = _repo("30 2 * * *", "Europe/Berlin")

    assert _fires_on(repo, datetime(2026, 10, 25, tzinfo=UTC)) == ["2026-10-25 00:30"]


def test_new_york_spring_forward_and_fall_back() -> None:
    repo = _repo("15 2 * * *", "America/New_York")

    # 2026-03-08 02:00 EST → 03:00 EDT at 07:00 UTC; 2026-11-01 02:00 EDT → 01:00 EST.
    assert _fires_on(repo, datetime(2026, 3, 8, tzinfo=UTC)) == ["2026-03-08 07:00"]
    assert _fires_on(repo, datetime(2026, 11, 1, tzinfo=UTC)) == ["2026-11-01 07:15"]


def test_wall_minutes_across_the_gap_and_the_repeat() -> None:
    gap_end = wall_minutes(datetime(2026, 3, 29, 1, 0, 59, tzinfo=UTC), BERLIN)
    assert (len(gap_end), gap_end[0], gap_end[-1]) == (
        61,
        datetime(2026, 3, 29, 2, 0),
        datetime(2026, 3, 29, 3, 0),
    )
    assert wall_minutes(datetime(2026, 10, 25, 0, 30, tzinfo=UTC), BERLIN) == [
        datetime(2026, 10, 25, 2, 30)
    ]
    assert wall_minutes(datetime(2026, 10, 25, 1, 30, tzinfo=UTC), BERLIN) == []
    assert wall_minutes(datetime(2026, 10, 25, 2, 0, tzinfo=UTC), BERLIN) == [
        datetime(2026, 10, 25, 3, 0)
    ]


def test_an_unusable_stored_schedule_is_skipped_not_fatal() -> None:
    now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    repos = [
        _repo("0 9 * * *", "Mars/Olympus_Mons", "a/mars"),
        _repo("*/5 * * * *", "UTC", "a/too-often"),
        _repo("0 9 * * *", "UTC", "a/fine"),
    ]

    assert [r.full_name for r in due(repos, now)] == ["a/fine"]


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware time"):
        due([_repo("0 9 * * *")], datetime(2026, 1, 5, 9, 0))


def test_the_request_is_keyed_by_the_utc_minute() -> None:
    now = datetime(2026, 1, 5, 10, 0, 42, tzinfo=BERLIN)
    request = schedule_request(_repo("0 10 * * *", "Europe/Berlin"), now)

    assert slot_key(now) == "schedule:2026-01-05T09:00Z"
    assert request == AuditRequest(
        installation_id=7,
        owner="octo",
        name="shop",
        trigger="schedule",
        trigger_key="schedule:2026-01-05T09:00Z",
    )


class _Store:
    def __init__(self, repos: list[ScheduledRepository], names: list[str]) -> None:
        self.repos = repos
        self.names = names
        self.stored: dict[str, tuple[str | None, str]] = {}
        self.asked: list[tuple[float, int]] = []

    async def set_schedule(self, full_name: str, schedule: str | None, timezone: str) -> bool:
        self.stored[full_name] = (schedule, timezone)
        return True

    async def scheduled_repositories(self) -> list[ScheduledRepository]:
        return self.repos

    async def schedule_checks_due(self, older_than_s: float, limit: int) -> list[tuple[int, str]]:
        self.asked.append((older_than_s, limit))
        return [(7, name) for name in self.names]


async def test_fire_enqueues_what_is_due_and_reports_only_new_jobs() -> None:
    store = _Store([_repo("0 9 * * *", name="a/one"), _repo("0 10 * * *", name="a/two")], [])
    taken: set[str] = set()

    async def enqueue(request: AuditRequest) -> bool:
        key = f"{request.full_name}:{request.trigger_key}"
        new = key not in taken
        taken.add(key)
        return new

    now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    assert await fire(store, enqueue, now) == ["a/one"]
    assert await fire(store, enqueue, now) == []
    assert taken == {"a/one:schedule:2026-01-05T09:00Z"}


async def test_refresh_stores_each_schedule_and_none_for_a_missing_or_broken_config() -> None:
    configs: dict[str, str | None] = {
        "a/good": 'version: 1\nschedule: "0 3 * * *"\ntimezone: Europe/Berlin\n',
        "a/none": None,
        "a/broken": 'version: 1\nschedule: "*/5 * * * *"\n',
        "a/no-schedule": "version: 1\n",
    }
    store = _Store([], list(configs))

    async def read(installation_id: int, full_name: str) -> str | None:
        assert installation_id == 7
        return configs[full_name]

    assert await refresh(store, read, older_than_s=3000, limit=10) == 4
    assert store.asked == [(3000, 10)]
    assert store.stored == {
        "a/good": ("0 3 * * *", "Europe/Berlin"),
        "a/none": (None, "UTC"),
        "a/broken": (None, "UTC"),
        "a/no-schedule": (None, "UTC"),
    }


async def test_refresh_stamps_a_refused_repository_and_stops_at_a_rate_limit() -> None:
    store = _Store([], ["a/gone", "a/fine", "a/limited", "a/later"])
    failures: dict[str, GitHubError] = {
        "a/gone": GitHubError("404 Not Found", status=404),
        "a/limited": GitHubTransient("rate limited", status=403, retry_after=60),
    }

    async def read(installation_id: int, full_name: str) -> str | None:
        if full_name in failures:
            raise failures[full_name]
        return 'version: 1\nschedule: "0 3 * * *"\n'

    assert await refresh(store, read, older_than_s=3000, limit=10) == 1
    # The refused one is stamped with no schedule, so it does not stay first in line.
    assert store.stored == {"a/gone": (None, "UTC"), "a/fine": ("0 3 * * *", "UTC")}


def test_schedule_of_reads_the_config_text() -> None:
    text = 'version: 1\nschedule: "0  4 1 * *"\ntimezone: America/New_York\n'

    assert schedule_of("a/b", text) == ("0 4 1 * *", "America/New_York")
    assert schedule_of("a/b", "version: 1\ntimezone: Europe/Berln\n") == (None, "UTC")
