"""Per-repository schedules: which stored schedules fire in a minute, firing them, refreshing them.

How schedules run (the choices, in one place):

- The schedule lives in the repository's ``.github/db-architect.yml`` on GitHub. Reading every
  config every minute would cost an API call per repository per minute, so the store keeps a
  copy per repository (``repositories.schedule`` and ``.timezone``). Every audit records what
  it read, and an hourly refresh reads the configs nobody read for six hours: a changed
  schedule is picked up within about six hours, or at the next audit, whichever comes first.
  A missing or broken config stores no schedule (the broken one is logged).
- Every minute, :func:`fire` evaluates each stored schedule in its time zone for that minute
  (the engine's pure cron matcher) and enqueues an audit with trigger ``schedule`` and key
  ``schedule:<UTC minute>Z``. That key is the arq job id, so a minute fires once per repository
  however many workers scan it; the audit's own repository lock keeps audits of one
  repository serial. The worker also takes a short per-minute lock so only one worker scans.
- Scheduled audits show no "queued" check run: that would cost GitHub calls for every
  scheduled repository at once; the audit creates its check run when it starts.
- Daylight saving time: a wall-clock minute the clock skips (spring forward) fires at the first
  minute after the gap; a minute the clock repeats (fall back) fires once, the first time.
- A minute in which no worker ran (all down) is not caught up later.
- Only repositories the store knows from installation events are scheduled: a local run's
  demo repository (``dbarchitect run``, no GitHub App) never runs by schedule.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog

from app.adapters.github.errors import GitHubError, GitHubTransient
from app.adapters.store import ScheduledRepository
from app.adapters.yaml_config import load_config
from app.bot.repo_config import ConfigError, Cron, parse_cron
from app.flows.requests import AuditRequest

__all__ = [
    "ScheduleStore",
    "due",
    "fire",
    "refresh",
    "schedule_of",
    "schedule_request",
    "slot_key",
    "wall_minutes",
]

log = structlog.get_logger(__name__)

_MINUTE = timedelta(minutes=1)


class ScheduleStore(Protocol):
    """What schedules need of the store (``app.adapters.store.Store``)."""

    async def set_schedule(self, full_name: str, schedule: str | None, timezone: str) -> bool: ...

    async def scheduled_repositories(self) -> list[ScheduledRepository]: ...

    async def schedule_checks_due(
        self, older_than_s: float, limit: int
    ) -> list[tuple[int, str]]: ...


def _utc_minute(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError(f"a schedule needs an aware time (with a time zone), got {now}")
    return now.astimezone(UTC).replace(second=0, microsecond=0)


def wall_minutes(now: datetime, zone: tzinfo) -> list[datetime]:
    """The wall-clock minutes in ``zone`` that the UTC minute of ``now`` stands for (naive).

    Normally one. After a spring-forward gap also every skipped minute; none for the second
    pass through a repeated (fall-back) hour, so such a time fires once.

    >>> from zoneinfo import ZoneInfo
    >>> [t.strftime("%H:%M") for t in wall_minutes(datetime(2026, 1, 5, 9, 30, tzinfo=UTC),
    ...                                            ZoneInfo("Europe/Berlin"))]
    ['10:30']
    """
    minute = _utc_minute(now)
    local = minute.astimezone(zone)
    if local.fold:
        return []
    here = local.replace(tzinfo=None)
    moment = (minute - _MINUTE).astimezone(zone).replace(tzinfo=None) + _MINUTE
    skipped: list[datetime] = []
    while moment < here:
        skipped.append(moment)
        moment += _MINUTE
    return [*skipped, here]


@functools.lru_cache(maxsize=1024)
def _cron(expr: str) -> Cron:
    return parse_cron(expr)


def due(repos: Iterable[ScheduledRepository], now: datetime) -> list[ScheduledRepository]:
    """The repositories whose schedule fires in the UTC minute of ``now`` (an aware time).

    A stored schedule or time zone that no longer parses (e.g. the server's tz database lacks
    the zone) is skipped and logged.
    """
    fired: list[ScheduledRepository] = []
    for repo in repos:
        try:
            cron = _cron(repo.schedule)
            zone = ZoneInfo(repo.timezone)
        except (ValueError, ZoneInfoNotFoundError) as err:
            log.warning("schedule_unusable", repository=repo.full_name, error=str(err))
            continue
        if any(cron.matches(moment) for moment in wall_minutes(now, zone)):
            fired.append(repo)
    return fired


def slot_key(now: datetime) -> str:
    """The trigger key of the scheduled audits of ``now``'s UTC minute.

    >>> slot_key(datetime(2026, 3, 29, 1, 0, 42, tzinfo=UTC))
    'schedule:2026-03-29T01:00Z'
    """
    return f"schedule:{_utc_minute(now):%Y-%m-%dT%H:%M}Z"


def schedule_request(repo: ScheduledRepository, now: datetime) -> AuditRequest:
    """The audit a schedule asks for in ``now``'s minute."""
    owner, _, name = repo.full_name.partition("/")
    return AuditRequest(
        installation_id=repo.installation_id,
        owner=owner,
        name=name,
        trigger="schedule",
        trigger_key=slot_key(now),
    )


async def fire(
    store: ScheduleStore,
    enqueue_audit: Callable[[AuditRequest], Awaitable[bool]],
    now: datetime,
) -> list[str]:
    """Enqueue the audits due in ``now``'s minute; the repositories newly queued.

    ``enqueue_audit`` returns False when the job id is taken (another worker queued it).
    """
    queued: list[str] = []
    for repo in due(await store.scheduled_repositories(), now):
        if await enqueue_audit(schedule_request(repo, now)):
            queued.append(repo.full_name)
    if queued:
        log.info("schedules_fired", slot=slot_key(now), repositories=queued)
    return queued


def schedule_of(full_name: str, text: str | None) -> tuple[str | None, str]:
    """``(schedule, timezone)`` of a config's text; no schedule for no or a broken config."""
    try:
        config = load_config(text)
    except ConfigError as err:
        log.warning("schedule_config_broken", repository=full_name, problem=str(err))
        return None, "UTC"
    return config.schedule, config.timezone


async def refresh(
    store: ScheduleStore,
    read_config: Callable[[int, str], Awaitable[str | None]],
    *,
    older_than_s: float,
    limit: int,
) -> int:
    """Read the config of repositories not read for ``older_than_s``; store their schedules.

    ``read_config(installation_id, full_name)`` returns the config's text (None: no file).
    A repository GitHub refuses gets no schedule (read again in a later round); a transient failure
    (rate limit, outage) stops the refresh, which the next run resumes. Returns how many
    repositories were read.
    """
    read = 0
    for installation_id, full_name in await store.schedule_checks_due(older_than_s, limit):
        try:
            text = await read_config(installation_id, full_name)
        except GitHubTransient as err:
            log.warning("schedule_refresh_paused", repository=full_name, error=err.message)
            break
        except GitHubError as err:
            # Refused for good (gone, no access): nothing to schedule, and stamped, so it does
            # not stay first in line and starve the others.
            log.warning("schedule_refresh_refused", repository=full_name, error=err.message)
            await store.set_schedule(full_name, None, "UTC")
            continue
        schedule, timezone = schedule_of(full_name, text)
        await store.set_schedule(full_name, schedule, timezone)
        read += 1
    log.info("schedules_refreshed", repositories=read)
    return read
