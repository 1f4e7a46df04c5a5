"""Indexes that repeat another index exactly, or whose keys lead a wider B-tree: drop candidates."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from itertools import groupby
from typing import TYPE_CHECKING

from app.engine.advisor.rules.common import (
    attached_parent,
    drop_recommendation,
    format_bytes,
    key_items,
    usage,
)

if TYPE_CHECKING:
    from app.engine.advisor.rules.config import RuleConfig
    from app.engine.model import Index, Recommendation, Snapshot

__all__ = ["RULE_ID", "duplicate_index"]

RULE_ID = "duplicate_index"

_Shape = tuple[str, tuple[str, ...], frozenset[str], str | None]


def duplicate_index(
    snapshot: Snapshot, /, *, now: datetime, config: RuleConfig
) -> Iterator[Recommendation]:
    """Propose dropping exact duplicates and B-tree indexes covered by a wider one.

    1. Exact duplicates: same table, method, keys (with operator class, collation and
       direction), INCLUDE columns and predicate. One of each group stays: the one that
       backs a constraint, else a unique one, else the shortest name (then alphabetical).
    2. Prefix-covered: a non-unique B-tree whose keys (with directions) are a strict prefix
       of another valid B-tree's keys on the same table, with the same predicate, and whose
       INCLUDE columns the wider index also holds. The reason names a covering index that
       is not itself proposed for dropping, so each drop is safe on its own.

    Primary-key and constraint-backed indexes, unique indexes a foreign key may depend on,
    invalid indexes and indexes attached to a partitioned parent's index are never
    dropped. Methods other than B-tree are checked for exact duplicates only.

    Args:
        snapshot: the target's catalog and counters.
        now: unused; part of the rule signature.
        config: unused; part of the rule signature.

    Returns:
        ``drop_index`` recommendations ordered by table, exact duplicates first.
    """
    pairs = list(redundant_pairs(snapshot))
    # A kept twin may itself be dropped as covered by a wider index, which then takes over.
    wider_of = {(d.table, d.name): k for d, k, why in pairs if why is None}
    for dropped, keeper, why in pairs:
        used = usage(snapshot, dropped)
        if why is None:
            reasons = _covered_reasons(dropped, keeper, used)
        else:
            then = wider_of.get((keeper.table, keeper.name))
            reasons = _exact_reasons(dropped, keeper, why, used, then)
        yield drop_recommendation(
            snapshot,
            dropped,
            rule=RULE_ID,
            reasons=reasons,
            extra={"exact": float(why is not None)},
            twin=None if why is None else keeper.name,
        )


def redundant_pairs(snapshot: Snapshot) -> Iterator[tuple[Index, Index, str | None]]:
    """``(index to drop, index that takes over, why that one is kept)`` in rule order.

    ``why`` is ``None`` for a prefix-covered index (the wider one takes over).
    """
    valid = sorted((i for i in snapshot.indexes if i.valid), key=lambda i: (i.table, i.name))
    for _, group in groupby(valid, key=lambda i: i.table):
        indexes = list(group)
        survivors = list(indexes)
        for extra, keeper, why in _exact_duplicates(snapshot, indexes):
            survivors.remove(extra)
            yield extra, keeper, why
        for covered, wider in _prefix_covered(snapshot, survivors):
            yield covered, wider, None


def _shape(index: Index) -> _Shape:
    return (index.using, key_items(index), frozenset(index.include), index.where)


def _keeper_rank(snapshot: Snapshot, index: Index) -> tuple[bool, bool, bool, int, str]:
    """Sort key: the index to keep in a group of exact duplicates comes first."""
    pinned = index.primary or index.constraint is not None or not _droppable(snapshot, index)
    stricter = "NULLS NOT DISTINCT" in index.definition
    return (not pinned, not index.unique, not stricter, len(index.name), index.name)


def _droppable(snapshot: Snapshot, index: Index) -> bool:
    if index.primary or index.constraint is not None:
        return False
    if (
        index.unique
        and index.where is None
        and any(
            fk.ref_table == index.table and set(fk.ref_columns) == set(index.columns)
            for fk in snapshot.foreign_keys
        )
    ):
        return False  # a foreign key may depend on it; DROP INDEX would fail
    return attached_parent(snapshot, index) is None


def _why_kept(snapshot: Snapshot, keeper: Index, extra: Index) -> str:
    if keeper.primary or keeper.constraint is not None:
        return "it backs a constraint"
    if not _droppable(snapshot, keeper):
        return "it cannot be dropped on its own (a foreign key or a partitioned parent needs it)"
    if keeper.unique and not extra.unique:
        return "it is unique"
    if _keeper_rank(snapshot, keeper)[2] != _keeper_rank(snapshot, extra)[2]:
        return "it enforces NULLS NOT DISTINCT"
    return "its name is shorter" if len(keeper.name) < len(extra.name) else "its name sorts first"


def _exact_duplicates(
    snapshot: Snapshot, indexes: list[Index]
) -> Iterator[tuple[Index, Index, str]]:
    """(index to drop, index kept, why kept) for each redundant member of a duplicate group."""
    groups: dict[_Shape, list[Index]] = {}
    for index in indexes:
        groups.setdefault(_shape(index), []).append(index)
    for members in groups.values():
        if len(members) < 2:
            continue
        keeper, *others = sorted(members, key=lambda i: _keeper_rank(snapshot, i))
        for other in others:
            if _droppable(snapshot, other):
                yield other, keeper, _why_kept(snapshot, keeper, other)


def _extends(wider: Index, narrow: Index) -> bool:
    """``wider`` is a B-tree whose keys strictly extend ``narrow``'s, same predicate."""
    narrow_keys, wider_keys = key_items(narrow), key_items(wider)
    return (
        wider.using == "btree"
        and wider.where == narrow.where
        and len(wider_keys) > len(narrow_keys)
        and wider_keys[: len(narrow_keys)] == narrow_keys
    )


def _prefix_covered(snapshot: Snapshot, indexes: list[Index]) -> Iterator[tuple[Index, Index]]:
    """(covered index, a widest index covering it) for each droppable covered B-tree."""
    for narrow in indexes:
        if narrow.using != "btree" or narrow.unique or not _droppable(snapshot, narrow):
            continue
        wider = [
            w
            for w in indexes
            if _extends(w, narrow) and set(narrow.include) <= {*w.columns, *w.include}
        ]
        widest = [w for w in wider if not any(_extends(z, w) for z in wider)]
        if widest:
            pick = min(widest, key=lambda w: (not w.primary, len(w.columns), w.name))
            yield narrow, pick


def _label(index: Index) -> str:
    text = f"{index.name} ({', '.join(key_items(index))})"
    if index.include:
        text += f" INCLUDE ({', '.join(index.include)})"
    return text


def _exact_reasons(
    extra: Index, keeper: Index, why: str, used: tuple[int, int], then: Index | None = None
) -> tuple[str, ...]:
    """``then``: the wider index that takes over because the same audit drops ``keeper`` too."""
    scans, size = used
    where = f" WHERE {extra.where}" if extra.where else ""
    kept = (
        f"{keeper.name} is the one kept because {why}; the planner uses it for every query "
        f"that used {extra.name} ({scans} scans so far)"
        if then is None
        else f"{keeper.name} would be the one kept because {why}, but this audit drops it "
        f"too, as covered by {then.name}, which takes over every query that used "
        f"{extra.name} ({scans} scans so far)"
    )
    return (
        f"{extra.name} is an exact duplicate of {keeper.name}: same method ({extra.using}), "
        f"keys, INCLUDE columns and predicate: {_label(extra)}{where}",
        kept,
        f"dropping {extra.name} frees {format_bytes(size)} and one index update per row write",
    )


def _covered_reasons(covered: Index, wider: Index, used: tuple[int, int]) -> tuple[str, ...]:
    scans, size = used
    where = f", both with WHERE {covered.where}" if covered.where else ""
    return (
        f"{_label(covered)} is covered by {_label(wider)}: its keys lead {wider.name}'s "
        f"in the same order and direction{where}",
        f"the {scans} scans of {covered.name} so far can use {wider.name} instead, "
        "which is larger, so each such scan reads a little more",
        f"dropping {covered.name} frees {format_bytes(size)} and one index update per row write",
    )
