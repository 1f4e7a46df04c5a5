"""Finding rules over a catalog snapshot (one per module) and the loop that runs them all."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from app.engine.advisor.rules.config import Rule, RuleConfig
from app.engine.advisor.rules.duplicate_index import duplicate_index, redundant_pairs
from app.engine.advisor.rules.fk_without_index import fk_without_index
from app.engine.advisor.rules.invalid_index import invalid_index
from app.engine.advisor.rules.unused_index import unused_index
from app.engine.model import Recommendation, Snapshot

__all__ = ["RULES", "RULE_IDS", "Rule", "RuleConfig", "run_rules"]

#: In the order they run. When two rules propose the same action on the same index, the
#: earlier one keeps it and the later one's reasons are appended (a duplicate that is also
#: unused is reported once, as a duplicate: that reason does not depend on a window).
RULES: tuple[Rule, ...] = (invalid_index, duplicate_index, unused_index, fk_without_index)
RULE_IDS: frozenset[str] = frozenset(rule.__name__ for rule in RULES)


def run_rules(snapshot: Snapshot, *, now: datetime, config: RuleConfig) -> list[Recommendation]:
    """Every rule's recommendations, one per (action, table, index name), in a stable order.

    Args:
        snapshot: the target's catalog and counters.
        now: the current time (timezone-aware).
        config: thresholds, and rule ids to skip.

    Returns:
        Recommendations in ``RULES`` order, each rule's in its own documented order.

    Raises:
        ValueError: ``config.skip`` names a rule that does not exist.
    """
    unknown = config.skip - RULE_IDS
    if unknown:
        raise ValueError(f"unknown rule ids to skip: {', '.join(sorted(unknown))}")
    found: dict[tuple[str, str, str], Recommendation] = {}
    # An index that takes over from a dropped duplicate is not dropped in the same audit:
    # it gets the duplicate's scans, and dropping both would leave nothing in their place.
    takes_over = {
        (keeper.table, keeper.name)
        for _, keeper, _ in redundant_pairs(snapshot)
        if "duplicate_index" not in config.skip
    }
    for rule in RULES:
        if rule.__name__ in config.skip:
            continue
        for rec in rule(snapshot, now=now, config=config):
            if rule is unused_index and (rec.table, rec.index_name) in takes_over:
                continue
            key = (rec.action, rec.table, rec.index_name)
            first = found.get(key)
            if first is None:
                found[key] = rec
                continue
            more = tuple(r for r in rec.reasons if r not in first.reasons)
            found[key] = replace(
                first, reasons=first.reasons + more, extra={**rec.extra, **first.extra}
            )
    return list(found.values())
