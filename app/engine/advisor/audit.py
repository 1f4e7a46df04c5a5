"""The whole pure audit: analyse the workload, propose candidates, select, apply finding rules."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from app.engine.advisor.budget import DEFAULT_BUDGET, disk_budget, fmt_bytes
from app.engine.advisor.candidates import generate
from app.engine.advisor.constants import MIN_CONSTANT_CALLS
from app.engine.advisor.rules import RuleConfig, run_rules
from app.engine.advisor.scans import analyze
from app.engine.advisor.selection import Chosen, Progress, SelectionConfig, select
from app.engine.advisor.whatif import CostOracle
from app.engine.catalog import Catalog
from app.engine.ddl import create_index_sql, index_name
from app.engine.model import (
    Analyzed,
    DiskBudget,
    Query,
    QueryEffect,
    Recommendation,
    Rejection,
    Skipped,
    Snapshot,
)
from app.engine.report import Report, settle_coverage
from app.engine.sql import redact


@dataclass(frozen=True, slots=True)
class AuditConfig:
    """Every threshold the audit uses, in one place."""

    selection: SelectionConfig = field(default_factory=SelectionConfig)
    rules: RuleConfig = field(default_factory=RuleConfig)
    max_columns: int = 3
    max_include: int = 2
    #: ``25%`` of the database, a size such as ``500MB``, or ``off`` (``advisor.budget``); an
    #: explicit ``selection.storage_budget_bytes`` wins.
    disk_budget: str = DEFAULT_BUDGET
    #: Calls, all with the same literal, before a literal may be a partial index's WHERE.
    min_constant_calls: int = MIN_CONSTANT_CALLS


def audit(
    snapshot: Snapshot,
    queries: Sequence[Query],
    oracle: CostOracle,
    *,
    now: datetime,
    config: AuditConfig | None = None,
    progress: Progress | None = None,
) -> Report:
    """Run the advisor over a workload against a catalog snapshot."""
    config = config or AuditConfig()
    catalog = Catalog(snapshot)
    analyzed: list[Analyzed] = []
    skipped: list[Skipped] = []
    for i, query in enumerate(queries):
        result = analyze(query, catalog)
        (analyzed if isinstance(result, Analyzed) else skipped).append(result)  # type: ignore[arg-type]
        if progress and (i % 50 == 0 or i == len(queries) - 1):
            progress("analyse", i + 1, len(queries))
    cands = generate(
        analyzed,
        catalog,
        max_columns=config.max_columns,
        max_include=config.max_include,
        min_constant_calls=config.min_constant_calls,
    )
    if progress:
        progress("what-if", 0, len(cands.candidates))
    budget = _budget(config, snapshot)
    chooser = replace(config.selection, storage_budget_bytes=budget.bytes)
    selection = select(analyzed, cands, oracle, catalog, config=chooser, progress=progress)
    for pos, reason in sorted(selection.unplannable.items()):
        skipped.append(Skipped(analyzed[pos].query, reason))
    recs = [_from_chosen(ch, analyzed, snapshot, cands.evidence) for ch in selection.chosen]
    chosen_keys = {(r.table, r.columns) for r in recs if r.where is None}
    in_use = _used_by_plans(analyzed, oracle)
    rule_rejected: list[Rejection] = []
    for rec in run_rules(snapshot, now=now, config=config.rules):
        if rec.rule == "unused_index" and rec.index_name in in_use:
            statement = in_use[rec.index_name]
            rule_rejected.append(
                Rejection(
                    f"drop {rec.index_name}",
                    f"not unused: the workload's plan for {redact(statement)[:120]!r} uses it "
                    "(its scan counter may have been reset since)",
                )
            )
            continue
        if rec.action == "create_index" and any(
            t == rec.table and set(cols[: len(rec.columns)]) == set(rec.columns)
            for t, cols in chosen_keys
        ):
            continue  # the workload selection already proposes an index that serves this
        recs.append(rec)
    weights = {pos: max(analyzed[pos].query.calls, 1) for pos in selection.baseline}
    before = sum(weights[q] * c for q, c in selection.baseline.items())
    after = sum(weights[q] * c for q, c in selection.final.items())
    return Report(
        snapshot=snapshot,
        statements=len(queries),
        analyzed=tuple(a for i, a in enumerate(analyzed) if i not in selection.unplannable),
        skipped=tuple(skipped),
        recommendations=tuple(recs),
        rejected=settle_coverage([*cands.rejected, *selection.rejected, *rule_rejected], recs),
        whatif=getattr(oracle, "kind", type(oracle).__name__),
        whatif_calls=oracle.calls,
        workload_cost_before=before,
        workload_cost_after=after,
        disk_budget=budget,
    )


def _used_by_plans(analyzed: Sequence[Analyzed], oracle: CostOracle) -> dict[str, str]:
    """Existing index name → a statement whose current plan uses it."""
    used: dict[str, str] = {}
    plans = oracle.baseline_indexes
    for stmt in analyzed:
        for name in plans.get(stmt.explain_sql, frozenset()):
            used.setdefault(name, stmt.query.text)
    return used


def _budget(config: AuditConfig, snapshot: Snapshot) -> DiskBudget:
    """The audit's disk budget: explicit bytes in the selection config, else its rule."""
    explicit = config.selection.storage_budget_bytes
    if explicit is not None:
        return DiskBudget(explicit, f"set to {fmt_bytes(explicit)}")
    return disk_budget(config.disk_budget, snapshot)


def _from_chosen(
    ch: Chosen,
    analyzed: Sequence[Analyzed],
    snapshot: Snapshot,
    evidence: Mapping[str, str],
) -> Recommendation:
    cand = ch.candidate
    name = index_name(cand, snapshot.names_in_schema_of(cand.table))
    effects = tuple(
        QueryEffect(analyzed[q].query, before, after)
        for q, (before, after) in sorted(
            ch.effects.items(), key=lambda kv: -analyzed[kv[0]].query.calls * (kv[1][0] - kv[1][1])
        )
    )
    helped = [e for e in effects if e.cost_after < e.cost_before]
    reasons = []
    if helped:
        best = max(helped, key=lambda e: 1 - e.cost_after / e.cost_before)
        reasons.append(
            f"serves {len(helped)} statement{'s' if len(helped) != 1 else ''} of the workload; "
            f"estimated cost of the best one falls "
            f"{best.cost_before:,.1f} → {best.cost_after:,.1f} "
            f"({1 - best.cost_after / best.cost_before:.0%} less)"
        )
    reasons.extend(ch.notes)
    if ch.write_penalty > 0:
        reasons.append(
            f"write overhead {ch.write_penalty:,.0f} vs weighted gain {ch.gain:,.0f} (cost units)"
        )
    if cand.where:
        why = evidence.get(cand.where)
        reasons.append(f"partial: only rows where {cand.where}" + (f" ({why})" if why else ""))
    if cand.include:
        reasons.append(f"INCLUDE ({', '.join(cand.include)}) allows index-only scans")
    return Recommendation(
        action="create_index",
        table=cand.table,
        columns=cand.columns,
        index_name=name,
        ddl=create_index_sql(cand, name),
        include=cand.include,
        where=cand.where,
        using=cand.using,
        descending=tuple(k.descending for k in cand.keys),
        effects=effects,
        reasons=tuple(reasons),
        rule="workload",
        size_bytes=ch.size_bytes,
        extra={"gain": ch.gain, "write_penalty": ch.write_penalty},
    )
