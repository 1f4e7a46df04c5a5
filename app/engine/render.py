"""Render a Report as the JSON contract (docs/architecture.md), as plain text, or as Markdown."""

from __future__ import annotations

from typing import Any

from app.engine import markdown as md
from app.engine.model import Query, QuerySource, Recommendation, recommendation_id
from app.engine.proof.confidence import Assessment
from app.engine.proof.evidence import Means, balance, fmt_ms
from app.engine.proof.measured import measurement_of
from app.engine.proof.method import Measurement
from app.engine.report import Report
from app.engine.sql import redact, scrub_message

#: 2 added ``descending`` and ``measurement`` to each recommendation (docs/architecture.md).
REPORT_VERSION = 2
_MAX_QUERY_CHARS = 2000


def _query_text(text: str) -> str:
    """Normalised, literal-free text, cut to a readable length."""
    clean = " ".join(redact(text).split())
    return clean if len(clean) <= _MAX_QUERY_CHARS else clean[: _MAX_QUERY_CHARS - 1] + "…"


def _side(cost: float | None, means: Means | None, side: int) -> dict[str, Any]:
    """Estimated cost and measured mean p50 / p95 / buffers over the parameter sets."""
    return {
        "cost": None if cost is None else round(cost, 2),
        "ms_p50": round(means.p50[side], 3) if means else None,
        "ms_p95": round(means.p95[side], 3) if means else None,
        "buffers": round(means.buffers[side]) if means else None,
    }


def _queries_json(rec: Recommendation, assessment: Assessment | None) -> list[dict[str, Any]]:
    """Measured statements first (reads and writes), then estimate-only effects."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    evidence = assessment.evidence if assessment else None
    for stmt in evidence.statements if evidence else ():
        seen.add(stmt.query.text)
        out.append(
            {
                "query": _query_text(stmt.query.text),
                "source": stmt.query.source.value,
                "calls": stmt.query.calls,
                "write": stmt.write,
                # Only parameter sets measured on both sides, as the verdict compares them.
                "before": _side(stmt.cost_before, stmt.means(), 0),
                "after": _side(stmt.cost_after, stmt.means(), 1),
                "parameter_sets": [p.label for p in stmt.pairs()],
                "notes": [
                    scrub_message(n)
                    for n in (*stmt.notes, *(f"{f.label}: {f.reason}" for f in stmt.failures()))
                ],
            }
        )
    for e in rec.effects:
        if e.query.text in seen:
            continue
        out.append(
            {
                "query": _query_text(e.query.text),
                "source": e.query.source.value,
                "calls": e.query.calls,
                "write": False,
                "before": _side(e.cost_before, None, 0),
                "after": _side(e.cost_after, None, 1),
                "parameter_sets": [],
                "notes": ["not measured"] if evidence else [],
            }
        )
    return out


def _validation_json(assessment: Assessment | None) -> dict[str, Any] | None:
    ev = assessment.evidence if assessment else None
    if ev is None:
        return None
    return {
        "where": ev.where,
        "skipped": ev.skipped,
        "change_ms": None if ev.change_ms is None else round(ev.change_ms, 1),
        "index_bytes": ev.index_bytes,
        "used_by_plans": ev.used_by_plans,
        "drop_method": ev.drop_method,
        "plans": [
            {
                "query": _query_text(c.query.text),
                "parameter_set": c.label,
                "indexes": [sorted(c.before), sorted(c.after)],
                "cost": [c.cost_before, c.cost_after],
            }
            for c in ev.plans
        ],
    }


def descending(rec: Recommendation) -> list[bool]:
    """Per key of ``rec.columns``: sorted descending in the DDL (one flag per key, always)."""
    flags = list(rec.descending[: len(rec.columns)])
    return flags + [False] * (len(rec.columns) - len(flags))


def _measurement_json(m: Measurement) -> dict[str, Any]:
    return {
        "method": m.method.value,
        "cause": m.cause.value if m.cause else None,
        "reason": scrub_message(m.reason) if m.reason else None,
        "statements": m.statements,
        "statements_measured": m.statements_measured,
    }


def _rec_json(rec: Recommendation, assessment: Assessment | None = None) -> dict[str, Any]:
    conf = assessment.confidence if assessment else None
    return {
        "id": recommendation_id(rec),
        "action": rec.action,
        "rule": rec.rule,
        "table": rec.table,
        "columns": list(rec.columns),
        "descending": descending(rec),
        "include": list(rec.include),
        "where": rec.where,
        "using": rec.using,
        "index_name": rec.index_name,
        "ddl": rec.ddl,
        "size_bytes": rec.size_bytes,
        "confidence": conf.score if conf else None,
        "confidence_breakdown": dict(conf.breakdown) if conf else {},
        # Citations behind a ``reviewer_memory`` part of the breakdown (Markdown lines).
        "reviewer_memory": list(assessment.memory) if assessment else [],
        "eligible": conf.eligible if conf else False,
        "measurement": _measurement_json(measurement_of(rec, assessment)),
        "validation": _validation_json(assessment),
        "queries": _queries_json(rec, assessment),
        "reasons": list(rec.reasons),
    }


def _budget_json(report: Report) -> dict[str, Any] | None:
    budget = report.disk_budget
    if budget is None:
        return None
    return {"bytes": budget.bytes, "rule": budget.rule, "proposed_bytes": report.proposed_bytes}


def budget_line(report: Report) -> str | None:
    """``disk budget 256 MB (25% of …); new indexes ≈ 40 MB``, or None without a budget."""
    budget = report.disk_budget
    if budget is None:
        return None
    limit = "none" if budget.bytes is None else _size(budget.bytes)
    rule = "" if budget.bytes is None else f" ({budget.rule})"
    return f"disk budget: {limit}{rule}; new indexes ≈ {_size(report.proposed_bytes)}"


#: Sources of statements that pg_stat_statements never recorded (``app.engine.advisor.sightings``).
_SLOW_SOURCES = frozenset({QuerySource.activity, QuerySource.timeout_log})
_SLOW_WHERE = {
    QuerySource.activity: "seen running in pg_stat_activity",
    QuerySource.timeout_log: "cancelled by statement_timeout (log)",
}


def _sources(report: Report) -> dict[str, int]:
    """Statements per source, analysed or skipped."""
    out: dict[str, int] = {}
    for query in [*(a.query for a in report.analyzed), *(s.query for s in report.skipped)]:
        out[query.source.value] = out.get(query.source.value, 0) + 1
    return out


def _slow(report: Report) -> list[tuple[Query, bool]]:
    """Statements found running long or cancelled by a timeout, and whether they were analysed."""
    found = [(a.query, True) for a in report.analyzed if a.query.source in _SLOW_SOURCES]
    found += [(s.query, False) for s in report.skipped if s.query.source in _SLOW_SOURCES]
    return found


def _slow_lines(report: Report) -> list[tuple[str, str]]:
    """Per slow statement: where it came from, how often, at least how long; and its text."""
    lines = []
    for query, analyzed in _slow(report):
        mean = query.total_ms / max(query.calls, 1)
        bound = f", each ≥ {fmt_ms(mean)}" if mean > 0 else ""
        state = "" if analyzed else " (skipped)"
        lines.append((f"{_SLOW_WHERE[query.source]}, ×{query.calls}{bound}{state}", query.text))
    return lines


def to_json(report: Report) -> dict[str, Any]:
    """The report as the documented JSON document (also what the store keeps)."""
    snap = report.snapshot
    return {
        "version": REPORT_VERSION,
        "target": {
            "server_version": snap.server_version,
            "database": snap.database,
            "hypopg": snap.hypopg,
        },
        "workload": {
            "statements": report.statements,
            "analyzed": len(report.analyzed),
            "skipped": len(report.skipped),
            "sources": _sources(report),
        },
        "slow_statements": [
            {
                "query": _query_text(q.text),
                "source": q.source.value,
                "executions": q.calls,
                "at_least_ms": round(q.total_ms / max(q.calls, 1), 1),
                "analyzed": analyzed,
            }
            for q, analyzed in _slow(report)
        ],
        "whatif": {"method": report.whatif, "calls": report.whatif_calls},
        "estimated_workload_cost": {
            "before": round(report.workload_cost_before, 2),
            "after": round(report.workload_cost_after, 2),
        },
        "min_confidence": report.min_confidence,
        "disk_budget": _budget_json(report),
        "recommendations": [
            _rec_json(r, report.assessments.get(recommendation_id(r)))
            for r in report.recommendations
        ],
        "rejected": [{"candidate": r.candidate, "reason": r.reason} for r in report.rejected],
        "skipped_queries": [
            {"query": _query_text(s.query.text), "reason": s.reason} for s in report.skipped
        ],
    }


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _saving(report: Report) -> str:
    before, after = report.workload_cost_before, report.workload_cost_after
    if before <= 0:
        return "n/a"
    return f"{before:,.0f} → {after:,.0f} ({1 - after / before:.0%} less)"


def _listing(title: str, items: list[str], *, verbose: bool, limit: int = 15) -> list[str]:
    """A titled bullet list, cut to ``limit`` items unless verbose."""
    if not items:
        return []
    shown = items if verbose else items[:limit]
    lines = [f"{title} ({len(items)}):", *(f"  - {item}" for item in shown)]
    if len(shown) < len(items):
        lines.append(f"  … {len(items) - len(shown)} more (use --format json)")
    return lines


def measured_line(rec: Recommendation, assessment: Assessment | None) -> str:
    """How ``rec`` was measured (or why not), with the measured read and write times."""
    m = measurement_of(rec, assessment)
    line = m.summary(rec.action)
    ev = assessment.evidence if assessment else None
    if not m.measured or ev is None:
        return line
    bal = balance(ev)
    if bal.reads_measured:
        line += f"; reads {fmt_ms(bal.read_before)} → {fmt_ms(bal.read_after)} per workload cycle"
    if bal.writes_measured:
        line += f"{',' if bal.reads_measured else ';'} writes {fmt_ms(bal.write_before)} → "
        line += fmt_ms(bal.write_after)
    return line


def confidence_line(rec: Recommendation, assessment: Assessment | None) -> str | None:
    """``confidence 91% (≥ 80%: eligible for a pull request); measured on …``, or how it was
    held back and why it was not measured; None when it was not assessed."""
    if assessment is None:
        return None
    conf = assessment.confidence
    verdict = (
        f"≥ {conf.threshold:.0%}: eligible for a pull request"
        if conf.eligible
        else f"below {conf.threshold:.0%}: held back"
    )
    return f"confidence {conf.score:.0%} ({verdict}); {measured_line(rec, assessment)}"


def to_text(report: Report, *, verbose: bool = False) -> str:
    """A terminal report: findings first, then what was turned away and why."""
    snap = report.snapshot
    lines = [
        f"DB Architect audit of {snap.database} (PostgreSQL {snap.server_version})",
        f"workload: {report.statements} statements, {len(report.analyzed)} analysed, "
        f"{len(report.skipped)} skipped; what-if: {report.whatif}, {report.whatif_calls} calls",
        f"estimated workload cost (Σ calls × cost): {_saving(report)}",
    ]
    if line := budget_line(report):
        lines.append(line)
    lines.append("")
    if not report.recommendations:
        lines.append("No recommendations: the workload is served by the existing indexes.")
    for n, rec in enumerate(report.recommendations, 1):
        lines.append(f"{n}. [{rec.action}] {rec.ddl};")
        if rec.size_bytes:
            lines.append(f"   size ≈ {_size(rec.size_bytes)}; id {recommendation_id(rec)}")
        assessment = report.assessments.get(recommendation_id(rec))
        lines.append(f"   {confidence_line(rec, assessment) or measured_line(rec, assessment)}")
        for reason in rec.reasons:
            lines.append(f"   - {reason}")
        for e in rec.effects[: None if verbose else 3]:
            found = f"[{e.query.source.value}] " if e.query.source in _SLOW_SOURCES else ""
            lines.append(
                f"     {e.cost_before:>12,.1f} → {e.cost_after:>10,.1f}  "
                f"×{e.query.calls:<7} {found}{_query_text(e.query.text)[:90]}"
            )
        if not verbose and len(rec.effects) > 3:
            lines.append(f"     … and {len(rec.effects) - 3} more statements")
    lines.append("")
    rejected = [f"{r.candidate}: {r.reason}" for r in report.rejected]
    lines += _listing("Not recommended", rejected, verbose=verbose)
    skipped = [f"{_query_text(s.query.text)[:80]}: {s.reason}" for s in report.skipped]
    lines += _listing("Skipped statements", skipped, verbose=verbose)
    slow = [f"{where}: {_query_text(text)[:90]}" for where, text in _slow_lines(report)]
    lines += _listing("Slow statements pg_stat_statements lacks", slow, verbose=verbose)
    return "\n".join(lines).rstrip() + "\n"


def to_markdown(report: Report) -> str:
    """A Markdown report (for issues, check runs and PR bodies)."""
    snap = report.snapshot
    out = [
        f"## DB Architect audit of {md.code(snap.database, 100)}",
        "",
        f"PostgreSQL {md.text(snap.server_version, 40)} · {report.statements} statements "
        f"({len(report.analyzed)} analysed, {len(report.skipped)} skipped) · "
        f"what-if: {md.text(report.whatif, 40)}, {report.whatif_calls} calls · "
        f"estimated workload cost {_saving(report)}",
        "",
        "### Recommendations",
        "",
    ]
    if not report.recommendations:
        out.append("None: the workload is served by the existing indexes.")
    for rec in report.recommendations:
        heading = f"#### {md.code(rec.action, 40)} on {md.code(rec.table, 200)}"
        out += [heading, "", md.fence(rec.ddl + ";", "sql"), ""]
        assessment = report.assessments.get(recommendation_id(rec))
        conf_line = confidence_line(rec, assessment) or measured_line(rec, assessment)
        out += [f"- **{md.text(conf_line, 600)}**"]
        out += [f"- {md.text(r, 400)}" for r in rec.reasons]
        if rec.effects:
            out += ["", "| statement | calls | cost before | cost after |", "|---|---:|---:|---:|"]
            for e in rec.effects[:10]:
                text = md.code(_query_text(e.query.text), 120, cell=True)
                out.append(
                    f"| {text} | {e.query.calls} | {e.cost_before:,.1f} | {e.cost_after:,.1f} |"
                )
        out.append("")
    if report.rejected:
        out += ["<details><summary>Not recommended</summary>", ""]
        out += [f"- {md.code(r.candidate, 200)}: {md.text(r.reason, 300)}" for r in report.rejected]
        out += ["", "</details>", ""]
    if report.skipped:
        out += ["<details><summary>Skipped statements</summary>", ""]
        out += [
            f"- {md.code(_query_text(s.query.text), 120)}: {md.text(s.reason, 300)}"
            for s in report.skipped
        ]
        out += ["", "</details>", ""]
    if _slow(report):
        out += ["<details><summary>Slow statements pg_stat_statements lacks</summary>", ""]
        out += [
            f"- {md.text(where, 200)}: {md.code(_query_text(text), 120)}"
            for where, text in _slow_lines(report)
        ]
        out += ["", "</details>", ""]
    return "\n".join(out)
