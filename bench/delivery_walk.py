"""Trace one delivery of each event family through the worker and count its rooms and climbs.

Each delivery goes through the real ``app.flows.deliveries.handle`` with the unit tests' fakes
(a recording repository, a dict memo, an in-memory reviewer memory: no I/O). Every Python call
into a function defined under ``app/`` is attributed to its module, its "room"; calls into
anything else (the fakes, the standard library) are transparent. From that walk:

- **stays**: runs of consecutive calls in one room (a room re-entered later is a new stay);
- **rooms**: distinct modules visited;
- **climbs back**: stays in a room the walk had already left once (stays − rooms);
- **deliveries↔feedback**: steps between ``app.flows.deliveries`` and ``app.flows.feedback``;
- **flow stays / flow climbs**: the same walk seen from the orchestration only (rooms under
  ``app.flows``; pure and adapter modules are transparent), i.e. how often the flows hand the
  delivery back and forth among themselves.

A coroutine resumed after an ``await`` is not a new call; only the first entry of each frame
counts. Run from a checkout (``PYTHONPATH`` at its root)::

    python bench/delivery_walk.py             # a table per family and the totals
    python bench/delivery_walk.py --walk      # also print each family's rooms in order
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_PAIR = frozenset({"app.flows.deliveries", "app.flows.feedback"})


@dataclass(frozen=True, slots=True)
class Walk:
    """The rooms one delivery passed through, one entry per stay."""

    family: str
    outcome: str
    stays: tuple[str, ...]

    @property
    def rooms(self) -> int:
        """Distinct modules visited."""
        return len(set(self.stays))

    @property
    def climbs_back(self) -> int:
        """Stays in a room the walk had already left once."""
        return len(self.stays) - self.rooms

    @property
    def flows(self) -> Walk:
        """The walk through ``app.flows`` rooms only."""
        stays: list[str] = []
        for room in self.stays:
            if room.startswith("app.flows.") and (not stays or stays[-1] != room):
                stays.append(room)
        return Walk(self.family, self.outcome, tuple(stays))

    @property
    def ping_pong(self) -> int:
        """Steps between the deliveries flow and the feedback flow."""
        return sum(1 for a, b in zip(self.stays, self.stays[1:], strict=False) if {a, b} == _PAIR)


def trace(family: str, run: Callable[[], Coroutine[Any, Any, str]]) -> Walk:
    """Run one delivery under a profiler that records the module of every first call."""
    app_dir = str(ROOT / "app")
    seen: dict[int, FrameType] = {}  # kept alive so that an id is never reused
    stays: list[str] = []

    def profile(frame: FrameType, event: str, _arg: object) -> None:
        if event != "call" or not frame.f_code.co_filename.startswith(app_dir):
            return
        if id(frame) in seen:
            return  # a coroutine resumed after an await
        seen[id(frame)] = frame
        room = str(frame.f_globals.get("__name__", "?"))
        if not stays or stays[-1] != room:
            stays.append(room)

    async def traced() -> str:
        sys.setprofile(profile)
        try:
            return await run()
        finally:
            sys.setprofile(None)

    outcome = asyncio.run(traced())
    return Walk(family, outcome, tuple(stays))


def deliveries() -> dict[str, Callable[[], Coroutine[Any, Any, str]]]:
    """One delivery per event family, each with fresh fakes (built before tracing starts)."""
    from app.flows.deliveries import handle
    from tests import payloads
    from tests.unit.flows.test_deliveries import job
    from tests.unit.flows.test_feedback import pull, with_memory

    def bound(event: str, payload: dict[str, Any]) -> Callable[[], Coroutine[Any, Any, str]]:
        deps, _, _, _ = with_memory()
        delivery = job(event, payload)
        return lambda: handle(delivery, deps)

    return {
        "issue_comment /audit": bound("issue_comment", payloads.issue_comment("/audit")),
        "issue_comment ignore": bound(
            "issue_comment", payloads.pull_comment(pull(), "@db-architect ignore")
        ),
        "repository_dispatch": bound("repository_dispatch", payloads.repository_dispatch()),
        "check_run button": bound("check_run", payloads.check_run("requested_action", "dry_run")),
        "installation": bound("installation", payloads.installation_event("created")),
        "pull_request closed": bound(
            "pull_request", payloads.pull_request_closed(pull(state="merged"))
        ),
        "pull_request_review": bound(
            "pull_request_review",
            payloads.pull_request_review(pull(), "changes_requested", "too many writes"),
        ),
        "review_comment": bound(
            "pull_request_review_comment",
            payloads.pull_request_review_comment(pull(), "is this index needed?"),
        ),
    }


def main() -> None:
    """Print the walk of each family and the totals."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--walk", action="store_true", help="print each family's rooms in order")
    args = parser.parse_args()
    walks = [trace(family, run) for family, run in deliveries().items()]
    head = f"{'family':22} {'stays':>5} {'rooms':>5} {'climbs':>6} {'d<->f':>5}"
    print(f"{head} {'f.stays':>7} {'f.climbs':>8}  outcome")
    for w in walks:
        print(
            f"{w.family:22} {len(w.stays):5} {w.rooms:5} {w.climbs_back:6} {w.ping_pong:5} "
            f"{len(w.flows.stays):7} {w.flows.climbs_back:8}  {w.outcome[:40]}"
        )
        if args.walk:
            print("    " + " > ".join(s.removeprefix("app.") for s in w.stays))
    print(
        f"{'total':22} {sum(len(w.stays) for w in walks):5} "
        f"{len(set().union(*(w.stays for w in walks))):5} "
        f"{sum(w.climbs_back for w in walks):6} {sum(w.ping_pong for w in walks):5} "
        f"{sum(len(w.flows.stays) for w in walks):7} "
        f"{sum(w.flows.climbs_back for w in walks):8}"
    )


if __name__ == "__main__":
    main()
