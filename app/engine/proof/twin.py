"""Drops checked without timings: how an index is taken away, and whether its twin serves.

An exact duplicate (same method, keys, INCLUDE columns and predicate as an index that stays,
its *twin*) is safe to drop by construction: every plan that used it can use the twin. The
evidence that proves it is the plans of the statements that used either of the two, with the
duplicate absent: each must use the twin, at no more than the regression tolerance of extra
estimated cost. Three ways to take the index away, chosen by :func:`drop_method`:

- ``rolled-back drop``: ``DROP INDEX`` in a transaction that rolls back, timed with EXPLAIN
  ANALYZE (sandbox only: the drop holds an ACCESS EXCLUSIVE lock on the table until then);
- ``hidden index``: HypoPG 1.4+ ``hypopg_hide_index(oid)`` hides it from the planner of one
  session, with no lock, on the target itself. HypoPG hides an index from plain EXPLAIN
  only (its planner hook is skipped under EXPLAIN ANALYZE), so this yields plans, not timings;
- ``plans only``: on a target without HypoPG 1.4, for an exact duplicate only, ``DROP INDEX``
  in a rolled-back transaction (with the lock budget) held just long enough to plan.
"""

from __future__ import annotations

import re

from app.engine.model import Index
from app.engine.proof.evidence import Evidence, PlanCheck, plan_index_names

#: hypopg_hide_index() and hypopg_unhide_index() exist from HypoPG 1.4.0 on.
HIDE_INDEX_VERSION = (1, 4)
DROPPED = "rolled-back drop"
HIDDEN = "hidden index"
PLANS_ONLY = "plans only"
_VERSION = re.compile(r"^\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?")


def version_tuple(text: str | None) -> tuple[int, ...] | None:
    """``"1.3.1"`` → ``(1, 3, 1)``; ``None`` for no or an unreadable version.

    >>> version_tuple("1.4.0"), version_tuple("1.10"), version_tuple("dev")
    ((1, 4, 0), (1, 10, 0), None)
    """
    found = _VERSION.match(text or "")
    if found is None:
        return None
    return tuple(int(part or 0) for part in found.groups())


def can_hide(hypopg_version: str | None) -> bool:
    """HypoPG at this version (``pg_extension.extversion``) has ``hypopg_hide_index``."""
    version = version_tuple(hypopg_version)
    return version is not None and version[:2] >= HIDE_INDEX_VERSION


def drop_method(*, on_sandbox: bool, hypopg_version: str | None, exact: bool) -> str | None:
    """How to measure a drop where validation runs; ``None``: not on this target.

    A sandbox takes the real drop in a rolled-back transaction, timed. On the target, any
    index is hidden where HypoPG can hide it (no lock; plans, which can reject a drop and
    prove an exact duplicate's twin); otherwise only an exact duplicate is checked, by its
    plans, in a rolled-back drop held for the planning alone.
    """
    if on_sandbox:
        return DROPPED
    if can_hide(hypopg_version):
        return HIDDEN
    return PLANS_ONLY if exact else None


def plan_checks(evidence: Evidence) -> list[PlanCheck]:
    """Every read planned with the index and without it: the plans-only checks, and the
    plans of the timed runs (EXPLAIN ANALYZE keeps the planner's costs)."""
    found = list(evidence.plans)
    for stmt in evidence.reads():
        for pair in stmt.pairs():
            before, after = pair.before.plan, pair.after.plan
            if not before or not after:
                continue
            found.append(
                PlanCheck(
                    stmt.query,
                    pair.label,
                    plan_index_names(before),
                    plan_index_names(after),
                    float(before["Plan"]["Total Cost"]),
                    float(after["Plan"]["Total Cost"]),
                )
            )
    return found


def still_used(evidence: Evidence, index: str) -> bool:
    """A plan taken with ``index`` absent still names it: it was not hidden or dropped."""
    return any(index in check.after for check in plan_checks(evidence))


def twin_verdict(
    evidence: Evidence, dropped: str, twin: str, *, tolerance: float
) -> tuple[str | None, int]:
    """Why the plans do not show ``twin`` serving what ``dropped`` served (``None``: they do),
    and how many statements used one of the two.

    Every read must have been planned (a statement without a plan proves nothing); each plan
    that used either index must use ``twin`` without ``dropped``, and no plan's estimated cost
    may rise by more than ``tolerance``.
    """
    if evidence.skipped is not None:
        return evidence.skipped, 0
    checks = plan_checks(evidence)
    planned = {c.query.text for c in checks}
    missing = [s for s in evidence.reads() if s.query.text not in planned]
    if missing:
        return f"{len(missing)} affected statement(s) could not be planned", 0
    users: set[str] = set()
    for c in checks:
        if dropped in c.after:
            return f"{dropped} was still in the plan of a statement without it", 0
        if {dropped, twin} & c.before:
            users.add(c.query.text)
            if twin not in c.after:
                return f"without {dropped}, a statement that used it does not use {twin}", 0
        if c.cost_after > c.cost_before * (1 + tolerance) + 0.01:
            return (
                f"without {dropped}, a statement's estimated cost rises "
                f"{c.cost_before:,.1f} → {c.cost_after:,.1f}"
            ), 0
    return None, len(users)


def twin_reason(method: str, dropped: Index, twin: Index, users: int) -> str:
    """The sentence that says what proved the drop, for the recommendation's reasons."""
    how = {
        HIDDEN: f"with {dropped.name} hidden from the planner (hidden index: HypoPG's "
        "hypopg_hide_index, no lock)",
        PLANS_ONLY: f"with {dropped.name} dropped in a transaction that was rolled back, "
        "for the planning only",
        DROPPED: f"with {dropped.name} dropped in a transaction that was rolled back",
    }[method]
    used = (
        f"the {users} workload statement(s) that used it plan with {twin.name} at the same "
        "estimated cost"
        if users
        else f"no workload statement used either index; {twin.name} is identical"
    )
    return f"measured {how}: {used}; {twin.name} has {twin.scans:,} scans (pg_stat_user_indexes)"
