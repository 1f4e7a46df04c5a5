"""Which constant predicates may become a partial index's WHERE: evidence, never one sample."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from app.engine.advisor.samples import key as shape_key
from app.engine.ddl import quote_ident
from app.engine.model import Analyzed, Op, Predicate, Scan

#: A literal becomes a partial-index predicate only when at least this many calls were seen
#: and every one of them used that same value. Were the column to take other values in 15 % of
#: calls or more, 20 calls would all show one value with a probability under 0.85**20 ≈ 4 %.
MIN_CONSTANT_CALLS = 20

#: (position of the statement in the analysed workload, position of the scan in the statement)
Site = tuple[int, int]
#: What one statement asks of a column: ``(op, literal)``; a parameter, IN, range or LIKE varies.
_Value = tuple[Op, str | None]
_VARIES: _Value = (Op.range, None)
Scope = Literal["structural", "statement", "column"]


@dataclass(frozen=True, slots=True)
class Constant:
    """A constant predicate the workload backs, and how it does."""

    predicate: Predicate
    #: ``structural`` (IS NULL: written into the statement, not a value it was given),
    #: ``statement`` (every call of this statement's shape used the value) or ``column``
    #: (every statement on the table that filters on the column used it).
    scope: Scope
    calls: int = 0
    statements: int = 0

    def sql(self) -> str:
        """The predicate as a partial index's WHERE writes it."""
        return predicate_sql(self.predicate)

    def evidence(self) -> str:
        """Why the value counts as constant, for the report; empty when it needs no saying."""
        calls = f"{self.calls:,} call{'s' if self.calls != 1 else ''}"
        if self.scope == "column":
            return (
                f"all {calls}, in {self.statements} statements, that filter on "
                f"{quote_ident(self.predicate.key)} use {self.sql()}"
            )
        if self.scope == "statement":
            return f"all {calls} of this statement use {self.sql()}"
        return ""


def predicate_sql(p: Predicate) -> str:
    """``"col" IS NULL`` or ``"col" = literal``."""
    if p.op is Op.is_null:
        return f"{quote_ident(p.key)} IS NULL"
    return f"{quote_ident(p.key)} = {p.constant}"


def describe(constants: Iterable[Constant]) -> str:
    """The evidence of several constants, in one clause ("" when none needs saying)."""
    return "; ".join(e for c in constants if (e := c.evidence()))


@dataclass(slots=True)
class _Tally:
    """The values a column was asked for, over some statements, weighted by calls."""

    values: set[_Value] = field(default_factory=set)
    calls: int = 0
    statements: set[int] = field(default_factory=set)

    def add(self, values: set[_Value], calls: int, pos: int) -> None:
        self.values |= values
        self.calls += calls
        self.statements.add(pos)

    def proves(self, value: _Value, min_calls: int) -> bool:
        return self.values == {value} and self.calls >= min_calls


def _asked(scan: Scan) -> dict[str, set[_Value]]:
    """Column → what this scan asks of it (expression keys are not partial predicates)."""
    out: dict[str, set[_Value]] = {}
    for p in scan.predicates:
        if p.expression:
            continue
        constant = p.op in (Op.eq, Op.is_null) and p.constant is not None
        out.setdefault(p.key, set()).add((p.op, p.constant) if constant else _VARIES)
    return out


def evidenced(
    analyzed: Sequence[Analyzed], *, min_calls: int = MIN_CONSTANT_CALLS
) -> dict[Site, tuple[Constant, ...]]:
    """(statement, scan) → its predicates that may become a partial index's WHERE.

    ``col IS NULL`` always may. ``col = literal`` may when at least ``min_calls`` calls back
    it and none contradicts it: either every call of the statement's shape (its text with
    literals as ``$n``) used that literal, or every statement on the table that filters on
    the column does so with it. One sample is never enough; a literal without evidence is a
    value like any ``$n``, so its column is an index key, not a WHERE.
    """
    shapes: dict[tuple[str, int, str], _Tally] = {}
    columns: dict[tuple[str, str], _Tally] = {}
    for pos, stmt in enumerate(analyzed):
        shape = shape_key(stmt.query.text)
        calls = max(stmt.query.calls, 1)
        for j, scan in enumerate(stmt.scans):
            for col, values in _asked(scan).items():
                shapes.setdefault((shape, j, col), _Tally()).add(values, calls, pos)
                columns.setdefault((scan.table, col), _Tally()).add(values, calls, pos)
    found: dict[Site, tuple[Constant, ...]] = {}
    for pos, stmt in enumerate(analyzed):
        shape = shape_key(stmt.query.text)
        for j, scan in enumerate(stmt.scans):
            backed = []
            for p in scan.predicates:
                if p.expression or p.constant is None or p.op not in (Op.eq, Op.is_null):
                    continue
                if p.op is Op.is_null:
                    backed.append(Constant(p, "structural"))
                    continue
                value = (p.op, p.constant)
                column = columns[(scan.table, p.key)]
                same_shape = shapes[(shape, j, p.key)]
                if column.proves(value, min_calls) and len(column.statements) > 1:
                    backed.append(Constant(p, "column", column.calls, len(column.statements)))
                elif same_shape.proves(value, min_calls):
                    backed.append(Constant(p, "statement", same_shape.calls, 1))
            if backed:
                found[(pos, j)] = tuple(sorted(backed, key=lambda c: c.predicate.key))
    return found
