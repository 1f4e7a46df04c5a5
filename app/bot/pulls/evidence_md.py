"""The evidence behind one recommendation as Markdown: the body of its pull request."""
# Long module: one PR body; its sections share the statement numbering.

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.bot.pulls.measured_md import footer, heading, unwritten, where
from app.engine import markdown as md
from app.engine.advisor.rules.common import format_bytes
from app.engine.ddl import drop_index_sql
from app.engine.draft import (
    LOCK_TIMEOUT,
    STATEMENT_TIMEOUT,
    DraftRefused,
    concurrent_definition,
    partitioned_definition,
)
from app.engine.model import Recommendation, RelKind, StatementKind, recommendation_id
from app.engine.proof.confidence import CREATE_WEIGHTS, DROP_WEIGHTS, Assessment
from app.engine.proof.evidence import Evidence, Means, StatementEvidence, Timing, balance, fmt_ms
from app.engine.proof.measured import measurement_of
from app.engine.proof.method import Measurement
from app.engine.report import Report
from app.engine.sql import redact, scrub_message

#: GitHub refuses bodies over 65,536 characters; stay well below.
MAX_CHARS = 60_000
_QUERY_CHARS = 100
_CHART_BARS = 8
_PLAN_NODES = 40
_MAX_PLAN_LINES = 24
_CONDITION_CHARS = 120
_NAME_CHARS = 120
#: DDL shown in a fenced block (the migration file holds it whole).
_SQL_CHARS = 5_000
_MESSAGE_CHARS = 300
#: The parameter-set labels the engine uses; anything else is shown by position only.
_LABELS = frozenset({"common", "typical", "rare", "literal"})
#: Plan conditions worth showing; each is redacted (custom plans inline the parameter values).
_CONDITIONS = (
    "Index Cond",
    "Recheck Cond",
    "Hash Cond",
    "Merge Cond",
    "Join Filter",
    "Filter",
    "One-Time Filter",
)
_COMPONENTS = {
    "measured_speedup": "time saved on the affected reads (twice as fast scores fully)",
    "noise_margin": "how far the medians moved, in widths of run-to-run noise",
    "workload_share": "share of the workload's time spent in the affected statements",
    "write_overhead": "write time added against read time saved",
    "agreement": "the planner's estimate and the measurement tell the same story",
    "stats_freshness": "how recently the table's statistics were gathered",
    "finding": "strength of the finding (duplicate, covered, unused, invalid)",
    "measured_safety": "measured without the index: no affected statement slower",
    "reviewer_memory": (
        "similar past reviews: rejections lower, merges raise (bounded −0.25…+0.10)"
    ),
    "unreproduced": (
        "synthesized parameter values did not reproduce what pg_stat_statements saw "
        "(−0.5 × share of the measured time)"
    ),
}


@dataclass(frozen=True, slots=True)
class _Line:
    """One affected statement, numbered, with its table row and problems rendered once."""

    number: int
    stmt: StatementEvidence
    measured: Means | None
    row: str
    problems: tuple[str, ...]


def evidence_markdown(
    report: Report,
    rec: Recommendation,
    *,
    revision_file: str | None = None,
    no_migration: str | None = None,
) -> str:
    """The evidence for ``rec`` as Markdown, at most :data:`MAX_CHARS` characters.

    Every sentence is true of this run: how it was measured (or why not), and whether a
    migration was drafted: ``revision_file`` names it, ``no_migration`` says why there is
    none; a recommendation below the bar never has one.

    Plans are dropped first when it would be longer, then rows of the statements table.
    Query text and plan conditions are redacted: no literal value is ever shown.
    """
    assessment = report.assessments.get(recommendation_id(rec))
    evidence = assessment.evidence if assessment else None
    measured = measurement_of(rec, assessment)
    missing = unwritten(assessment, revision_file, no_migration)
    lines = [_line(n, stmt) for n, stmt in enumerate(_statements(rec, evidence), 1)]
    plans = [block for line in lines for block in _plan_blocks(line.number, line.stmt)]
    top = _title(rec) + _confidence(rec, assessment)
    deploying = _deploying(report, rec, evidence, missing)
    tail = _rollback(report, rec, revision_file, missing) + footer(measured, evidence)

    def fit(shown: int) -> str | None:
        head = top + _measurements(rec, evidence, measured, lines, shown)
        head += _chart(lines[:shown])
        head += deploying
        section = _fit_plans(plans, MAX_CHARS - len(head) - len(tail))
        return None if section is None else head + section + tail

    text = fit(len(lines))
    if text is not None:
        return text
    # Fewer rows only shorten the text: keep the most rows that fit.
    low, high = 0, len(lines) - 1
    while low <= high:
        middle = (low + high) // 2
        attempt = fit(middle)
        if attempt is None:
            high = middle - 1
        else:
            text, low = attempt, middle + 1
    if text is not None:
        return text
    return md.fit(top + deploying + tail, MAX_CHARS, "… cut to stay within the size limit.")


def _line(n: int, stmt: StatementEvidence) -> _Line:
    measured = stmt.means()
    return _Line(n, stmt, measured, _row(n, stmt, measured), tuple(_problems(n, stmt)))


# ---------------------------------------------------------------------- sections


def _title(rec: Recommendation) -> str:
    keys = ", ".join(
        key + (" DESC" if i < len(rec.descending) and rec.descending[i] else "")
        for i, key in enumerate(rec.columns)
    )
    table, index = md.code(rec.table, _NAME_CHARS), md.code(rec.index_name, _NAME_CHARS)
    if rec.action == "create_index":
        title = f"Add index on {table} ({md.code(keys, _NAME_CHARS)})"
    elif rec.action == "drop_index":
        title = f"Drop index {index} on {table}"
    elif rec.action == "reindex":
        title = f"Rebuild index {index} on {table}"
    else:
        title = f"{md.text(rec.action, 40)} {index} on {table}"
    lines = [
        f"### {title}",
        "",
        f"{md.code(recommendation_id(rec))} · rule {md.code(rec.rule)} · index "
        f"{md.code(rec.index_name)}",
        "",
        *_sql(rec.ddl),
        "",
        "#### Why",
        "",
        *(f"- {md.text(reason, _MESSAGE_CHARS)}" for reason in rec.reasons or ("(none recorded)",)),
        "",
    ]
    return _join(lines)


def _confidence(rec: Recommendation, assessment: Assessment | None) -> str:
    lines = ["#### Confidence", ""]
    if assessment is None:
        lines += [
            "Not assessed: no confidence was computed for this recommendation, so it cannot "
            "open a pull request.",
            "",
        ]
        return _join(lines)
    conf = assessment.confidence
    verdict = (
        f"clears the {conf.threshold:.0%} threshold: eligible for a pull request."
        if conf.eligible
        else f"below the {conf.threshold:.0%} threshold: held back, no pull request."
    )
    weights = CREATE_WEIGHTS if rec.action == "create_index" else DROP_WEIGHTS
    lines += [
        f"**{conf.score:.0%}**, {verdict}",
        "",
        "| component | score | weight | contribution | what it measures |",
        "|---|---:|---:|---:|---|",
    ]
    for key, part in conf.breakdown.items():
        weight = weights.get(key)
        score = f"{part / weight:.0%}" if weight else "—"
        shown_weight = f"{weight:.2f}" if weight is not None else "—"
        lines.append(
            f"| {md.text(key.replace('_', ' '), 40)} | {score} | {shown_weight} | {part:.3f} "
            f"| {_COMPONENTS.get(key, '')} |"
        )
    lines += [f"| **total** | | | **{conf.score:.3f}** | |", ""]
    if assessment.memory:
        header, *bullets = assessment.memory
        lines += [header, "", *bullets, ""]
    return _join(lines)


def _measurements(
    rec: Recommendation,
    evidence: Evidence | None,
    measured: Measurement,
    rows: Sequence[_Line],
    shown: int,
) -> str:
    lines = [heading(measured), "", where(rec, evidence, measured, rows=bool(rows)), ""]
    if not rows:
        if evidence is not None and evidence.skipped is None:
            lines += ["No affected workload statement was found to measure.", ""]
        return _join(lines)
    lines += [
        "| # | statement | kind | calls | est. cost | p50 ms | p95 ms | buffers | change |",
        "|---:|---|---|---:|---:|---:|---:|---:|---|",
        *(line.row for line in rows[:shown]),
    ]
    if shown < len(rows):
        lines.append(f"\n… {len(rows) - shown} more statements not shown (size limit).")
    worst = (
        " (for a statement with sets that reproduced what pg_stat_statements saw, those of "
        "the worst of them: the one the index helps least)"
        if any(line.stmt.representative for line in rows[:shown])
        else ""
    )
    timed = any(line.measured is not None for line in rows[:shown])
    lines += [
        "",
        "Each cell is before → after. Times are the mean over the measured parameter sets of "
        f"each set's median (p50) and 95th percentile (p95){worst}; buffers are shared "
        "buffers hit + read by one run; est. cost is the planner's estimate."
        if timed
        else "Each cell is before → after; est. cost is the planner's estimate. Nothing was "
        "timed, so the measured columns are empty.",
        "",
    ]
    problems = [problem for line in rows[:shown] for problem in line.problems]
    if problems:
        lines += [*problems, ""]
    if evidence is not None and evidence.plans:
        lines += ["Plans with the index, then without it:", ""]
        lines += [
            f"- {_query_cell(c.query.text)} with {md.text(c.label, 20)} values: "
            f"{_indexes(c.before)} → {_indexes(c.after)}, est. cost "
            f"{c.cost_before:,.1f} → {c.cost_after:,.1f}"
            for c in evidence.plans[:_MAX_PLAN_LINES]
        ]
        lines.append("")
    if evidence is not None:
        bal = balance(evidence)
        if bal.reads_measured and bal.read_before > 0:
            change = _change(bal.read_before, bal.read_after)
            lines += [
                f"Affected reads, weighted by calls: {fmt_ms(bal.read_before)} → "
                f"{fmt_ms(bal.read_after)} per workload cycle ({change}).",
                "",
            ]
    return _join(lines)


def _row(n: int, stmt: StatementEvidence, m: Means | None) -> str:
    cost = (
        f"{stmt.cost_before:,.1f} → {stmt.cost_after:,.1f}"
        if stmt.cost_before is not None and stmt.cost_after is not None
        else "—"
    )
    if m is None:
        cells = ["—", "—", "—", "not measured"]
    else:
        cells = [
            f"{_num(m.p50[0])} → {_num(m.p50[1])}",
            f"{_num(m.p95[0])} → {_num(m.p95[1])}",
            f"{m.buffers[0]:,.0f} → {m.buffers[1]:,.0f}",
            _change(*m.p50),
        ]
    kind = "write" if stmt.write else "read"
    text = _query_cell(stmt.query.text)
    return f"| Q{n} | {text} | {kind} | {stmt.query.calls:,} | {cost} | {' | '.join(cells)} |"


def _problems(n: int, stmt: StatementEvidence) -> list[str]:
    """Why a statement was not measured, and its runs that failed."""
    lines = [f"- Q{n}: {_scrub(note)}" for note in stmt.notes]
    for side, runs in (("before", stmt.before), ("after", stmt.after)):
        for i, run in enumerate(runs, 1):
            if not isinstance(run, Timing):
                label = _label(run.label, i)
                lines.append(f"- Q{n} {label} values, {side}: failed: {_scrub(run.reason)}")
    return lines


def _chart(rows: Sequence[_Line]) -> str:
    measured = [(line.number, line.measured) for line in rows if line.measured is not None]
    measured = measured[:_CHART_BARS]
    if not measured:
        return ""
    top = _nice_top(max(max(m.p50) for _, m in measured))
    lines = [
        "```mermaid",
        "xychart-beta",
        '    title "p50 before and after (ms)"',
        f"    x-axis [{', '.join(f'Q{n}' for n, _ in measured)}]",
        f'    y-axis "ms" 0 --> {_plain(top)}',
        f"    bar [{', '.join(_plain(m.p50[0]) for _, m in measured)}]",
        f"    bar [{', '.join(_plain(m.p50[1]) for _, m in measured)}]",
        "```",
        "",
        "First bar: p50 before the change; second bar: p50 after (drawn in front of the first).",
        "",
    ]
    return _join(lines)


def _deploying(
    report: Report, rec: Recommendation, evidence: Evidence | None, missing: str | None
) -> str:
    lines = ["#### Deploying", ""]
    if missing is not None:
        lines.append(f"- **No migration was drafted**: {_scrub(missing)}.")
    lines.append(f"- **Index size**: {_size(rec, evidence)}")
    if evidence is not None and evidence.change_ms is not None:
        verb = "building" if rec.action == "create_index" else "dropping"
        later = "; a concurrent build on a busy server takes longer" if verb == "building" else ""
        lines.append(
            f"- **Duration**: {verb} it took {_duration(evidence.change_ms)} inside the "
            f"validation transaction{later}."
        )
    lines.append(f"- **Write overhead**: {_writes(report, rec, evidence)}")
    lines += [f"- {note}" for note in _locks(report, rec, drafted=missing is None)]
    lines.append("")
    return _join(lines)


def _size(rec: Recommendation, evidence: Evidence | None) -> str:
    if rec.action != "create_index":
        size = format_bytes(rec.size_bytes) if rec.size_bytes else "unknown"
        return f"{size} (its current size)" + (
            ", freed when it is dropped." if rec.action == "drop_index" else "."
        )
    if evidence is not None and evidence.index_bytes is not None:
        return f"{format_bytes(evidence.index_bytes)}, measured on the index built for validation."
    if rec.size_bytes:
        return f"≈ {format_bytes(rec.size_bytes)}, estimated from the table's statistics."
    return "not estimated."


def _writes(report: Report, rec: Recommendation, evidence: Evidence | None) -> str:
    bal = balance(evidence) if evidence is not None else None
    if bal is not None and bal.writes_measured:
        text = (
            f"the workload's writes to {md.code(rec.table)} took {fmt_ms(bal.write_before)} → "
            f"{fmt_ms(bal.write_after)} per workload cycle (Σ calls × p50, "
            f"{'+' if bal.write_added >= 0 else '−'}{fmt_ms(abs(bal.write_added))})"
        )
        if rec.action == "create_index" and bal.read_saved > 0:
            share = max(bal.write_added, 0.0) / bal.read_saved
            shown = f"{share:.0%}" if share == 0 or share >= 0.01 else "under 1%"
            text += f", {shown} of the {fmt_ms(bal.read_saved)} the reads save"
        return text + "."
    writers = [
        a
        for a in report.analyzed
        if a.kind is not StatementKind.select
        and any(s.write and s.table == rec.table for s in a.scans)
    ]
    if not writers:
        return f"the workload does not write {md.code(rec.table)}."
    return (
        f"{len(writers)} workload statement{'s' if len(writers) != 1 else ''} "
        f"write{'' if len(writers) != 1 else 's'} {md.code(rec.table)}, but no write was measured."
    )


def _locks(report: Report, rec: Recommendation, *, drafted: bool) -> list[str]:
    """Locks the statement takes; the migration's timeouts only when one was drafted."""
    concurrent = _concurrent(rec.ddl)
    partitioned = _partitioned(report, rec)
    table = md.code(rec.table)
    timeouts = (
        [
            f"**Timeouts**: the migration runs outside a transaction (`autocommit_block`) with "
            f"`lock_timeout = '{LOCK_TIMEOUT}'`, so it gives up instead of queueing other "
            f"sessions behind it, and `statement_timeout = '{STATEMENT_TIMEOUT}'`."
        ]
        if drafted
        else []
    )
    if rec.action == "create_index" and partitioned:
        who = "The migration creates" if drafted else "A migration for it would create"
        return [
            f"**Locks**: {table} is partitioned. {who} the parent index "
            "with `ON ONLY` (a catalog change), builds each partition's index with "
            "`CREATE INDEX CONCURRENTLY` and attaches it; the parent index becomes valid once "
            "every partition's index is attached. Reads and writes continue throughout.",
            *timeouts,
        ]
    if rec.action == "create_index":
        invalid = ", which the migration drops before building again" if drafted else ""
        return [
            f"**Locks**: `CREATE INDEX CONCURRENTLY` does not block reads or writes on "
            f"{table}. It takes a SHARE UPDATE EXCLUSIVE lock (which conflicts with VACUUM, "
            "ANALYZE, schema changes and other concurrent index builds on the table), scans "
            "the table twice and waits for transactions already running, so a long-running "
            f"transaction delays it. A failed build leaves an INVALID index{invalid}.",
            *timeouts,
        ]
    if rec.action == "drop_index" and concurrent:
        return [
            f"**Locks**: `DROP INDEX CONCURRENTLY` does not block reads or writes on "
            f"{table}: it takes a SHARE UPDATE EXCLUSIVE lock and waits until no running "
            "transaction uses the index before removing it.",
            *timeouts,
        ]
    if rec.action == "drop_index":
        return [
            f"**Locks**: {table} is partitioned, so the index cannot be dropped "
            "CONCURRENTLY: `DROP INDEX` takes an ACCESS EXCLUSIVE lock on the table and its "
            "partitions, blocking reads and writes until it commits. No migration is drafted "
            "for it: drop it by hand at a quiet time."
        ]
    if rec.action == "reindex":
        return [
            "**Locks**: `REINDEX INDEX CONCURRENTLY` builds a new copy next to the old index "
            "and swaps them; it takes a SHARE UPDATE EXCLUSIVE lock and does not block reads "
            "or writes. It needs disk space for a second copy while it runs.",
            *timeouts,
        ]
    return timeouts


def _fit_plans(plans: Sequence[str], budget: int) -> str | None:
    """The plans section within ``budget`` characters, dropping plans from the end."""
    if not plans:
        return "" if budget >= 0 else None
    opening, closing = "<details><summary>Plans</summary>\n\n", "</details>\n\n"
    room = budget - len(opening) - len(closing)
    total = sum(len(p) for p in plans)
    if total <= room:
        return opening + "".join(plans) + closing
    kept = list(plans)
    while kept:
        total -= len(kept.pop())
        omitted = _omitted(len(plans) - len(kept))
        if total + len(omitted) <= room:
            return opening + "".join(kept) + omitted + closing
    omitted = _omitted(len(plans))
    return opening + omitted + closing if len(omitted) <= room else None


def _omitted(count: int) -> str:
    return f"… {count} plan{'s' if count != 1 else ''} omitted to stay within the size limit.\n\n"


def _plan_blocks(n: int, stmt: StatementEvidence) -> list[str]:
    """One block per measured parameter set: the before and after plan trees."""
    blocks = []
    for i, pair in enumerate(stmt.pairs(), 1):
        label = _label(pair.label, i)
        trees = ["before:", *_tree(pair.before.plan), "after:", *_tree(pair.after.plan)]
        lines = [
            f"**Q{n} · {label} values**: before {_timing(pair.before)}; "
            f"after {_timing(pair.after)}",
            "",
            md.fence("\n".join(trees)),
            "",
        ]
        blocks.append(_join(lines))
    return blocks


def _timing(t: Timing) -> str:
    return f"{fmt_ms(t.p50)} p50, {fmt_ms(t.p95)} p95, {t.buffers:,} buffers"


def _tree(plan: Mapping[str, Any]) -> list[str]:
    """EXPLAIN JSON as an indented tree of nodes, conditions redacted, cut at _PLAN_NODES."""
    root = plan.get("Plan")
    if not isinstance(root, Mapping):
        return ["  (no plan recorded)"]
    lines: list[str] = []
    stack: list[tuple[Mapping[str, Any], int]] = [(root, 1)]
    count = 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if count <= _PLAN_NODES:
            pad = "  " * depth
            lines.append(pad + _node(node))
            lines += [
                f"{pad}  {key}: {md.cut(' '.join(redact(node[key]).split()), _CONDITION_CHARS)}"
                for key in _CONDITIONS
                if isinstance(node.get(key), str)
            ]
        children = node.get("Plans")
        if isinstance(children, list):
            stack += [(c, depth + 1) for c in reversed(children) if isinstance(c, Mapping)]
    if count > _PLAN_NODES:
        lines.append(f"  … {count - _PLAN_NODES} more plan nodes")
    return lines


def _node(node: Mapping[str, Any]) -> str:
    kind = str(node.get("Node Type", "?"))
    join = node.get("Join Type")
    if isinstance(join, str) and join != "Inner":
        kind = kind.removesuffix(" Join") + f" {join} Join"
    if node.get("Parallel Aware"):
        kind = "Parallel " + kind
    if isinstance(node.get("Index Name"), str):
        kind += f" using {node['Index Name']}"
    if isinstance(node.get("Relation Name"), str):
        kind += f" on {node['Relation Name']}"
        alias = node.get("Alias")
        if isinstance(alias, str) and alias != node["Relation Name"]:
            kind += f" {alias}"
    loops = node.get("Actual Loops")
    if loops == 0:
        return kind + " (never executed)"
    rows, time = node.get("Actual Rows"), node.get("Actual Total Time")
    facts = []
    if isinstance(rows, int | float):
        facts.append(f"rows {_count(rows)}")
    if isinstance(time, int | float):
        facts.append(fmt_ms(time))
    if isinstance(loops, int) and loops > 1:
        facts.append(f"× {loops:,} loops")
    return kind + (f" ({', '.join(facts)})" if facts else "")


def _rollback(
    report: Report, rec: Recommendation, revision_file: str | None, missing: str | None
) -> str:
    revision = f" (reverts {md.code(revision_file)})" if revision_file else ""
    lines = ["#### Rolling back", ""]
    by_hand = "No migration was drafted, so there is none to downgrade. Were it {} by hand, "
    if rec.action == "create_index":
        qualified = f"{rec.table.partition('.')[0]}.{rec.index_name}"
        undo = drop_index_sql(qualified, concurrently=not _partitioned(report, rec))
        how = (
            by_hand.format("created") + "this drops the index again:"
            if missing is not None
            else f"`alembic downgrade -1`{revision} drops the index again:"
        )
        lines += [how, "", *_sql(undo)]
    elif rec.action == "drop_index" and rec.definition:
        recreate = _recreate(rec)
        if recreate is None:
            how, recreate = "Recreate it by hand with its original definition:", rec.definition
        elif missing is not None:
            how = by_hand.format("dropped") + "this recreates it exactly as it was:"
        else:
            how = f"`alembic downgrade -1`{revision} recreates it exactly as it was:"
        lines += [how, "", *_sql(recreate)]
    elif rec.action == "drop_index":
        lines += ["The index's definition was not recorded: it cannot be recreated automatically."]
    elif missing is not None:
        lines += ["Nothing to undo: REINDEX only rebuilds the index."]
    else:
        lines += [
            f"Nothing to undo: REINDEX only rebuilds the index. `alembic downgrade -1`{revision} "
            "is a no-op."
        ]
    lines.append("")
    return _join(lines)


# ---------------------------------------------------------------------- helpers


def _statements(rec: Recommendation, evidence: Evidence | None) -> tuple[StatementEvidence, ...]:
    """The measured statements, or the estimated effects when nothing was measured."""
    if evidence is not None and evidence.statements:
        return evidence.statements
    return tuple(
        StatementEvidence(e.query, False, e.cost_before, e.cost_after) for e in rec.effects
    )


def _recreate(rec: Recommendation) -> str | None:
    """The dropped index's definition made concurrent, or None where the draft refuses."""
    if not rec.definition or not _concurrent(rec.ddl):
        return None  # a partitioned table's index: no migration is drafted
    try:
        if partitioned_definition(rec.definition):
            return None
        return concurrent_definition(rec.definition, index_name=rec.index_name)
    except DraftRefused:
        return None


_CONCURRENT = re.compile(r"\s*(CREATE|DROP|REINDEX)\s+INDEX\s+CONCURRENTLY\s", re.IGNORECASE)


def _partitioned(report: Report, rec: Recommendation) -> bool:
    table = report.snapshot.table(rec.table)
    return table is not None and table.kind is RelKind.partitioned


def _concurrent(ddl: str) -> bool:
    """The statement's own CONCURRENTLY keyword (a name may hold the word too)."""
    return bool(_CONCURRENT.match(ddl))


def _label(label: str, position: int) -> str:
    """A parameter-set label fit to print (never anything that could be a value)."""
    known = label in _LABELS or re.fullmatch(r"captured-\d", label) is not None
    return f"`{label}`" if known else f"set {position}"


def _query_cell(text: str) -> str:
    """Normalised, redacted statement text as code in a table cell."""
    return md.code(" ".join(redact(text).split()), _QUERY_CHARS, cell=True)


def _indexes(names: frozenset[str]) -> str:
    """The index names a plan uses, as inert code, or "no index"."""
    return ", ".join(md.code(n, 70) for n in sorted(names)) if names else "no index"


def _scrub(message: str) -> str:
    """A message with quoted values blanked, cut to a readable length, as inert text."""
    return md.text(scrub_message(message).rstrip("."), _MESSAGE_CHARS)


def _change(before: float, after: float) -> str:
    if before <= 0:
        return "slower" if after > 0 else "no change"
    ratio = after / before
    if ratio < 0.99:
        return f"{1 / ratio:,.1f}× faster" if 0 < ratio <= 0.5 else f"{1 - ratio:.0%} faster"
    if ratio > 1.01:
        return f"{ratio:,.1f}× slower" if ratio >= 2 else f"{ratio - 1:.0%} slower"
    return "no change"


def _num(ms: float) -> str:
    if abs(ms) < 10:
        return f"{ms:.3f}"
    return f"{ms:,.1f}" if abs(ms) < 1000 else f"{ms:,.0f}"


def _plain(value: float) -> str:
    """A number mermaid reads: no separators, no exponent."""
    return f"{value:.3f}".rstrip("0").rstrip(".") or "0"


def _nice_top(value: float) -> float:
    """A round upper bound a little above ``value`` for the chart's axis."""
    if value <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0):
        if step * magnitude >= value * 1.05:
            return step * magnitude
    return 12.0 * magnitude


def _count(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"


def _duration(ms: float) -> str:
    return fmt_ms(ms) if ms < 1000 else f"{ms / 1000:,.1f} s"


def _sql(statement: str) -> list[str]:
    return [md.fence(statement.rstrip().rstrip(";") + ";", "sql", _SQL_CHARS)]


def _join(lines: Sequence[str]) -> str:
    return "\n".join(lines) + "\n"
