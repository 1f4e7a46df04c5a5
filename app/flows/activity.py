"""Every minute, look at each target's pg_stat_activity for slow statements and remember them.

Why (the choices, in one place):

- A statement cancelled by ``statement_timeout`` never reaches pg_stat_statements, so an
  audit that reads only pg_stat_statements never sees the statements a team most needs
  fixed. An audit samples pg_stat_activity itself (three looks while it collects), but a
  statement that runs at night is missed by a daytime audit; so the events worker, which
  already runs a cron every minute, also takes one look per target per minute.
- One look is one short query in a read-only session with a 5 s statement timeout
  (``application_name=dbarchitect``, excluded from what it reads), in a worker thread.
  A target that cannot be reached is logged and skipped until the next minute.
- Only normalised text is stored (literal values become ``$n``), one row per execution
  (backend pid + start time) with the longest time it was seen running, for a week. The
  next audit of the target adds those statements to its workload, marked ``activity``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import structlog

from app.adapters.errors import TargetError
from app.adapters.target_pg import connect
from app.engine.advisor.sightings import Running, normalised
from app.settings import TargetSpec

__all__ = ["Sample", "SightingStore", "look", "sample_targets"]

log = structlog.get_logger(__name__)

#: One look at pg_stat_activity is one short query; it gets this long at most.
LOOK_TIMEOUT_MS = 5_000

#: ``(dsn, min_ms)`` → rows seen running (blocking: run in a thread).
Sample = Callable[[str, float], list[Running]]


class SightingStore(Protocol):
    """What sampling needs of the store (``app.adapters.slow_statements.SlowStatements``)."""

    async def record(self, target: str, rows: Sequence[Running]) -> int: ...

    async def prune(self, older_than_s: float = ...) -> int: ...


def look(dsn: str, min_ms: float) -> list[Running]:
    """One read-only look at the target's pg_stat_activity (blocking)."""
    with connect(dsn, statement_timeout_ms=LOOK_TIMEOUT_MS, connect_timeout_s=5) as target:
        return target.activity(min_ms=min_ms)


async def sample_targets(
    targets: Mapping[str, TargetSpec],
    store: SightingStore,
    *,
    min_ms: float,
    sample: Sample = look,
) -> dict[str, int]:
    """Look at every target once; remember what runs longer than ``min_ms``.

    Returns the executions recorded per target. Old sightings are pruned on the way.
    """
    recorded: dict[str, int] = {}
    for name, spec in sorted(targets.items()):
        try:
            rows = await asyncio.to_thread(sample, spec.dsn.get_secret_value(), min_ms)
        except TargetError as err:
            log.warning("activity_unread", target=name, reason=str(err))
            continue
        recorded[name] = await store.record(name, normalised(rows))
    await store.prune()
    if any(recorded.values()):
        log.info("activity_sampled", recorded=recorded)
    return recorded
