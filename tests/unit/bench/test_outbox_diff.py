"""bench/outbox_diff.py: timings and run ids are normalised, everything else must match."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("outbox_diff", ROOT / "bench" / "outbox_diff.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


od = _load()

SECTION = """### 1. add index on `public.comments (post_id)`

- confidence {score}% (≥ 80%: eligible for a pull request); measured on the target: reads {ms} ms \
→ 151.1 ms per workload cycle
- breakdown: measured speedup 0.350 · noise margin 0.150 · agreement {agree} · stats freshness 0.100
- serves 2 statements; estimated cost of the best one falls {cost} → 12.3 (100% less)
"""

TABLE = """| # | action | table | index | confidence | measured | outcome |
|---:|---|---|---|---:|---|---|
| 1 | add index | `t` | `(id)` | {timed}% | {change} | held back: confidence 0.{timed} is below \
the 0.80 bar |
| 2 | drop index | `o` | `x_idx` | {drop}% | not measured | held back: confidence 0.{drop} is \
below the 0.80 bar |
"""


def test_timings_and_what_follows_from_them_are_normalised() -> None:
    a = od.normalise(SECTION.format(score=98, ms="345.9", agree="0.077", cost="7,750.0"))
    b = od.normalise(SECTION.format(score=91, ms="1,736.7", agree="0.065", cost="7,750.0"))
    assert a == b
    assert "stats freshness 0.100" in a and "7,750.0 → 12.3 (100% less)" in a


def test_planner_estimates_are_kept() -> None:
    a = od.normalise(SECTION.format(score=98, ms="345.9", agree="0.077", cost="7,750.0"))
    b = od.normalise(SECTION.format(score=98, ms="345.9", agree="0.077", cost="7,751.0"))
    assert a != b


def test_summary_confidence_is_normalised_only_where_measured() -> None:
    same = od.normalise(TABLE.format(timed=74, change="2.3× faster", drop=70))
    other = od.normalise(TABLE.format(timed=69, change="33% faster", drop=70))
    assert same == other
    assert od.normalise(TABLE.format(timed=74, change="2.3× faster", drop=65)) != same


def test_plan_loops_and_counts_are_not_timings() -> None:
    line = "    Parallel Seq Scan on posts p (rows 1.33, 8.916 ms, × 3 loops)"
    assert od.normalise(line) == "    Parallel Seq Scan on posts p (rows 1.33, <ms> ms, × 3 loops)"
    assert od.normalise("| p50 ms | p95 ms |") == "| p50 ms | p95 ms |"


def _outbox(root: Path, run_id: int, delivery: str, title: str) -> Path:
    demo = root / "local" / "demo"
    (demo / "check-runs").mkdir(parents=True)
    record = {"id": run_id, "external_id": delivery, "output": {"summary": "s", "text": title}}
    (demo / "check-runs" / f"{run_id}.json").write_text(json.dumps(record))
    (demo / "actions.jsonl").write_text(
        json.dumps(
            {"action": "check_run", "at": "2026-12-04T18:35:48+00:00", "check_run_id": run_id}
        )
        + "\n"
    )
    return root


def test_run_ids_are_aliased_and_the_exit_status_says_whether_anything_else_differs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _outbox(tmp_path / "a", 1284404023, "444390e2-acf9-4df2-8785-88e9d22d3742", "same")
    b = _outbox(tmp_path / "b", 1866267888, "0d6a3d4e-1111-4c2b-9d5e-3c7a0e1f2b3c", "same")
    c = _outbox(tmp_path / "c", 1866267888, "0d6a3d4e-1111-4c2b-9d5e-3c7a0e1f2b3c", "other")
    assert od.main([str(a), str(b)]) == 0
    assert od.main([str(a), str(c)]) == 1
    assert '-    "text": "same"' in capsys.readouterr().out
