"""A composite index against the chosen narrower picks it could replace: benefit and write cost.

Greedy selection adds one index at a time, so once ``(customer_id)`` is chosen, the composite
``(customer_id, created_at)`` is judged only on what it adds on top, and a statement the narrow
index already makes "cheap" on average values no longer counts. Here the two options are
compared whole: the chosen parts versus the composite plus whichever parts still serve
statements it cannot. The rule is in docs/advisor.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.engine.model import Analyzed, Candidate, Op, Scan

#: Predicates an index key answers with one contiguous, ordered run of entries.
_POINT = (Op.eq, Op.is_null)


@dataclass(frozen=True, slots=True)
class Comparison:
    """The chosen parts versus the composite with the parts it leaves, on the same statements."""

    composite: Candidate
    #: The chosen picks on the table whose keys are all keys of the composite.
    parts: tuple[Candidate, ...]
    #: The parts the composite makes redundant (the rest still serve statements it cannot).
    replaced: tuple[Candidate, ...]
    #: Weighted cost saved (Σ calls × (cost without new indexes − cost with the option)) on
    #: every statement either option serves, with the parts / with the composite instead.
    benefit_parts: float
    benefit: float
    #: Write overhead of the replaced parts / of the composite (cost units).
    write_parts: float
    write: float
    #: Statements whose ORDER BY … LIMIT the composite reads in index order (a top-N index
    #: scan) where the parts leave a sort of every matching row.
    top_n: int

    @property
    def margin(self) -> float:
        """How much more the composite's option nets (benefit − write cost) than the parts'."""
        return (self.benefit - self.write) - (self.benefit_parts - self.write_parts)

    @property
    def wins(self) -> bool:
        """The composite replaces parts, gains at least as much, nets more, and is no near tie.

        A composite that is merely a little cheaper on estimates does not displace a narrower
        index (near ties go to the narrower one); it must also save an index, save write cost,
        or turn a sort into a top-N index scan.
        """
        return (
            bool(self.replaced)
            and self.benefit >= self.benefit_parts
            and self.margin > 0
            and self.structural
        )

    @property
    def structural(self) -> bool:
        """One index instead of several, less write cost, or a sort turned into a top-N scan."""
        return len(self.replaced) > 1 or self.write < self.write_parts or self.top_n > 0

    def figures(self) -> str:
        """What was compared, in the words of a reason."""
        replaced = self.replaced or self.parts
        names = ", ".join(p.label() for p in replaced)
        kept = [p for p in self.parts if p not in self.replaced]
        with_kept = f" ({', '.join(p.label() for p in kept)} kept either way)" if kept else ""
        return (
            f"on the statements either serves{with_kept}, {self.composite.label()} saves "
            f"{self.benefit:,.0f} cost units for a write cost of {self.write:,.0f}; "
            f"{names} {'save' if len(replaced) > 1 else 'saves'} {self.benefit_parts:,.0f} "
            f"for a write cost of {self.write_parts:,.0f}"
        )

    def why(self) -> str:
        """Why the composite's option is better or not."""
        if self.wins:
            gains = []
            if len(self.replaced) > 1:
                gains.append(f"one index instead of {len(self.replaced)}")
            if self.top_n:
                gains.append(
                    f"a top-N index scan instead of a sort for {self.top_n} "
                    f"statement{'s' if self.top_n != 1 else ''}"
                )
            if self.write < self.write_parts:
                gains.append("less write cost")
            return "; ".join(gains)
        if self.benefit < self.benefit_parts:
            return "it saves less"
        if not self.structural:
            return (
                "a near tie: it saves no index, no write cost and no sort, so the narrower "
                "index stays"
            )
        return "its write cost outweighs what it saves more"

    def reason_for_composite(self) -> str:
        """The rejection reason of a composite that lost."""
        return f"compared with the chosen parts, {self.figures()}; {self.why()}"

    def reason_for_part(self) -> str:
        """The rejection reason of a part the composite replaced."""
        return f"replaced by the composite {self.composite.label()}: {self.figures()}; {self.why()}"

    def note(self) -> str:
        """The chosen composite's reason line."""
        names = ", ".join(p.label() for p in self.replaced)
        return f"chosen instead of {names}: {self.figures()}; {self.why()}"


def tie_reason(c: Candidate, parts: Sequence[Candidate], write: float, write_parts: float) -> str:
    """Why a composite was not planned against its parts: it could at best tie with them."""
    names = ", ".join(p.label() for p in parts)
    return (
        f"compared with the chosen {names}: it could replace one index at most, its write "
        f"cost is no lower ({write:,.0f} vs {write_parts:,.0f} cost units) and it turns no sort "
        "into a top-N index scan; without one of those, being cheaper on estimates does not "
        "displace the narrower index"
    )


def parts_of(c: Candidate, chosen: Sequence[Candidate]) -> tuple[Candidate, ...]:
    """Chosen picks on ``c``'s table with fewer keys, all of them keys of ``c``, same predicate."""
    if len(c.keys) < 2:
        return ()
    keys = set(c.columns)
    return tuple(
        p
        for p in chosen
        if p != c
        and p.table == c.table
        and p.where == c.where
        and len(p.keys) < len(c.keys)
        and set(p.columns) <= keys
    )


def top_n_statements(
    c: Candidate,
    parts: Sequence[Candidate],
    analyzed: Sequence[Analyzed],
    statements: frozenset[int],
) -> int:
    """Statements whose ORDER BY … LIMIT ``c`` delivers and none of ``parts`` does."""
    count = 0
    for q in statements:
        scans = [s for s in analyzed[q].scans if s.table == c.table]
        if any(
            delivers_order(c, s) and not any(delivers_order(p, s) for p in parts) for s in scans
        ):
            count += 1
    return count


def delivers_order(c: Candidate, scan: Scan) -> bool:
    """``c`` reads the rows of a LIMIT scan already in its ORDER BY: a top-N index scan.

    Every predicate must be a point (``=``, ``IS NULL``) on one of ``c``'s leading keys, or be
    answered by its partial WHERE; the keys right after them must be the ORDER BY keys, all in
    the same direction or all reversed (a B-tree reads backwards).
    """
    if not (scan.limit and scan.order_by):
        return False
    where = c.where or ""
    implied = {p.key for p in scan.predicates if p.constant is not None and p.key in where}
    points = {p.key for p in scan.predicates if p.op in _POINT} - implied
    if {p.key for p in scan.predicates} - points - implied:
        return False
    lead = len(points)
    if {k.key for k in c.keys[:lead]} != points:
        return False
    tail = c.keys[lead : lead + len(scan.order_by)]
    if [k.key for k in tail] != [s.key for s in scan.order_by]:
        return False
    flips = {k.descending != s.descending for k, s in zip(tail, scan.order_by, strict=True)}
    return len(flips) == 1
