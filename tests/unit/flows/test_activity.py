"""The minute look at each target's pg_stat_activity: normalised rows stored, failures skipped."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import SecretStr

from app.adapters.errors import TargetUnavailable
from app.engine.advisor.sightings import Running
from app.flows.activity import sample_targets
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
