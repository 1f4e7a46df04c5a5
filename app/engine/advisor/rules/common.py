"""Helpers the finding rules share: index key shapes, FK coverage, drop recommendations."""

from __future__ import annotations

import re
from collections.abc import Iterator

from app.engine.ddl import drop_index_sql
from app.engine.model import ForeignKey, Index, Recommendation, RelKind, Snapshot

__all__ = [
    "attached_parent",
    "covers_foreign_key",
    "drop_recommendation",
    "format_bytes",
    "is_partitioned",
    "key_items",
    "usage",
]

_USING_OPEN = re.compile(r"\sUSING\s+\w+\s*\(")
_PARTITIONED_NOTE = (
    "{table} is partitioned: dropping this index drops the matching index on every partition; "
    "DROP INDEX CONCURRENTLY does not work on partitioned indexes, so the drop takes an "
    "ACCESS EXCLUSIVE lock on the table and all its partitions while it runs"
)


def format_bytes(size: int) -> str:
    """Size in pg_size_pretty's units (1 kB = 1024 bytes).

    >>> [format_bytes(n) for n in (512, 32 * 1024, 5 * 1024**2 + 1, 3 * 1024**3)]
    ['512 bytes', '32 kB', '5.0 MB', '3.0 GB']
    """
    if size < 1024:
        return f"{size} bytes"
    if size < 1024**2:
        return f"{size // 1024} kB"
    if size < 1024**3:
        return f"{size / 1024**2:.1f} MB"
    return f"{size / 1024**3:.1f} GB"


def _unquoted(text: str, start: int = 0) -> Iterator[tuple[int, str, int]]:
    """``(position, character, paren depth)`` for each character outside quotes."""
    depth = 0
    quote: str | None = None
    for pos in range(start, len(text)):
        char = text[pos]
        if quote:
            if char == quote:
                quote = None
            continue
        if char in "\"'":
            quote = char
            continue
        depth += char == "("
        depth -= char == ")"
        yield pos, char, depth


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses and quotes."""
    items: list[str] = []
    start = 0
    for pos, char, depth in _unquoted(text):
        if char == "," and depth == 0:
            items.append(text[start:pos].strip())
            start = pos + 1
    items.append(text[start:].strip())
    return items


def _definition_keys(definition: str) -> tuple[str, ...] | None:
    """The key list of a ``pg_get_indexdef`` text, one item per key, or None if unreadable.

    >>> _definition_keys(
    ...     "CREATE INDEX i ON public.t USING btree (a, lower((b)::text) text_pattern_ops, c DESC)"
    ...     " INCLUDE (d) WHERE (a > 0)"
    ... )
    ('a', 'lower((b)::text) text_pattern_ops', 'c DESC')
    """
    match = _USING_OPEN.search(definition)
    if not match:
        return None
    for pos, char, depth in _unquoted(definition, match.end()):
        if char == ")" and depth == -1:  # the parenthesis that closes the key list
            return tuple(_split_top_level(definition[match.end() : pos]))
    return None


def key_items(index: Index) -> tuple[str, ...]:
    """Each key as it affects what the index can serve: column or expression, opclass,
    collation, direction and NULLS order.

    Read from the index definition when there is one (the model's columns carry neither
    operator class nor collation), else built from the model's columns and directions.

    >>> key_items(Index("public", "i", "public.t", ("a", "b"), descending=(False, True)))
    ('a', 'b DESC')
    """
    if index.definition:
        keys = _definition_keys(index.definition)
        if keys is not None and len(keys) == len(index.columns):
            return keys
    flags = index.descending or (False,) * len(index.columns)
    return tuple(
        col + (" DESC" if desc else "") for col, desc in zip(index.columns, flags, strict=False)
    )


def is_partitioned(snapshot: Snapshot, index: Index) -> bool:
    """The index is on a partitioned table (a parent with no storage of its own)."""
    table = snapshot.table(index.table)
    return table is not None and table.kind == RelKind.partitioned


def attached_parent(snapshot: Snapshot, index: Index) -> Index | None:
    """For an index on a partition, the parent's index it is (presumably) attached to.

    The snapshot does not record index inheritance, so an index on a partition with the
    same method, keys, INCLUDE list and predicate as an index on its parent is taken to be
    attached. Such an index cannot be dropped on its own; the parent's index decides.
    """
    table = snapshot.table(index.table)
    if table is None or table.partition_of is None:
        return None
    shape = (index.using, key_items(index), frozenset(index.include), index.where)
    for parent in snapshot.indexes_on(table.partition_of):
        if (parent.using, key_items(parent), frozenset(parent.include), parent.where) == shape:
            return parent
    return None


def usage(snapshot: Snapshot, index: Index) -> tuple[int, int]:
    """``(scans, size_bytes)`` of an index, summing its partitions' for a partitioned one.

    A partitioned index has no storage and no counters of its own (PostgreSQL reports 0):
    scans happen on the partitions' attached indexes. Taking the larger of the index's own
    figures and the partitions' sum is right whether or not the snapshot already summed them.
    """
    if not is_partitioned(snapshot, index):
        return index.scans, index.size_bytes
    scans = size = 0
    for table in snapshot.tables:
        if table.partition_of != index.table:
            continue
        for child in snapshot.indexes_on(table.qualified):
            if attached_parent(snapshot, child) == index:
                child_scans, child_size = usage(snapshot, child)
                scans, size = scans + child_scans, size + child_size
    return max(index.scans, scans), max(index.size_bytes, size)


def covers_foreign_key(index: Index, fk: ForeignKey) -> bool:
    """The index can serve the lookups a foreign key check makes on the referencing table.

    Its leading keys are the FK's columns in any order, it has no predicate, and it is a
    valid B-tree (or a hash index on a single-column key).

    >>> fk = ForeignKey("fk", "public.c", ("a", "b"), "public.p", ("x", "y"))
    >>> covers_foreign_key(Index("public", "i", "public.c", ("b", "a", "z")), fk)
    True
    >>> covers_foreign_key(Index("public", "i", "public.c", ("a", "z", "b")), fk)
    False
    """
    if not index.valid or index.where is not None or index.table != fk.table:
        return False
    if index.using == "hash":
        return index.columns == fk.columns and len(fk.columns) == 1
    if index.using != "btree":
        return False
    width = len(fk.columns)
    return len(index.columns) >= width and set(index.columns[:width]) == set(fk.columns)


def drop_recommendation(
    snapshot: Snapshot,
    index: Index,
    *,
    rule: str,
    reasons: tuple[str, ...],
    extra: dict[str, float] | None = None,
    twin: str | None = None,
) -> Recommendation:
    """A ``drop_index`` recommendation that keeps the definition for the downgrade."""
    partitioned = is_partitioned(snapshot, index)
    if partitioned:
        reasons = (*reasons, _PARTITIONED_NOTE.format(table=index.table))
    _, size = usage(snapshot, index)
    return Recommendation(
        action="drop_index",
        table=index.table,
        columns=index.columns,
        index_name=index.name,
        ddl=drop_index_sql(index.qualified, concurrently=not partitioned),
        include=index.include,
        where=index.where,
        using=index.using,
        descending=index.descending,
        reasons=reasons,
        rule=rule,
        size_bytes=size,
        definition=index.definition,
        extra=dict(extra or {}),
        twin=twin,
    )
