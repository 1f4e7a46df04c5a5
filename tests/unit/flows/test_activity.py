"""The minute look at each target's pg_stat_activity, and what an audit gets of it."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace

from pydantic import SecretStr

from app.adapters.errors import TargetUnavailable
from app.engine.advisor.sightings import Running
from app.engine.model import Query, QuerySource
from app.flows.activity import sample_targets
from app.flows.audit_repository import _with_activity
from app.flows.audit_target import ValidationSpec
from app.flows.targets import Resolved
from app.settings import TargetSpec


class Remembered:
    def __init__(self) -> None:
        self.rows: dict[str, list[Running]] = {}
        self.prunes = 0

    async def record(self, target: str, rows: Sequence[Running]) -> int:
        self.rows.setdefault(target, []).extend(rows)
        return len(rows)

    async def prune(self, older_than_s: float = 0.0) -> int:
        self.prunes += 1
        return 0


TARGETS = {
    "shop": TargetSpec(dsn=SecretStr("postgresql://shop")),
    "down": TargetSpec(dsn=SecretStr("postgresql://down")),
    "idle": TargetSpec(dsn=SecretStr("postgresql://idle")),
}


def look(dsn: str, min_ms: float) -> list[Running]:
    assert min_ms == 1500.0
    if dsn.endswith("down"):
        raise TargetUnavailable("lost the connection to the target at down:5432")
    if dsn.endswith("idle"):
        return []
    return [
        Running("SELECT * FROM users WHERE email = 'ann@example.com'", 7, "t0", 4000.0),
        Running("VACUUM users", 8, "t0", 4000.0),
    ]


async def test_each_target_is_looked_at_and_only_normalised_workload_is_stored() -> None:
    store = Remembered()
    recorded = await sample_targets(TARGETS, store, min_ms=1500.0, sample=look)
    assert recorded == {"idle": 0, "shop": 1}  # the unreachable target is skipped
    assert store.rows["shop"] == [Running("SELECT * FROM users WHERE email = $1", 7, "t0", 4000.0)]
    assert store.prunes == 1


async def test_an_audit_gets_the_remembered_statements_and_the_threshold() -> None:
    seen = (Query("SELECT * FROM t WHERE a = $1", source=QuerySource.activity),)
    asked: list[str] = []

    async def remembered(target: str) -> tuple[Query, ...]:
        asked.append(target)
        return seen

    resolved = Resolved("shop", "postgresql://shop", ValidationSpec(), False, "hypopg")
    on = SimpleNamespace(
        settings=SimpleNamespace(activity_min_ms=2500.0), slow_statements=remembered
    )
    got = await _with_activity(resolved, on)  # type: ignore[arg-type]
    assert (got.sightings, got.activity_min_ms, asked) == (seen, 2500.0, ["shop"])
    off = SimpleNamespace(settings=SimpleNamespace(activity_min_ms=0.0), slow_statements=remembered)
    got = await _with_activity(resolved, off)  # type: ignore[arg-type]
    assert (got.sightings, got.activity_min_ms) == ((), None)
    no_store = SimpleNamespace(
        settings=SimpleNamespace(activity_min_ms=1000.0), slow_statements=None
    )
    assert (await _with_activity(resolved, no_store)).sightings == ()  # type: ignore[arg-type]
