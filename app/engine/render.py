"""Render a Report as the JSON contract (DESIGN.md §3), plain text for terminals, or Markdown."""

from __future__ import annotations

from typing import Any

from app.engine.audit import Report, recommendation_id
from app.engine.model import Recommendation
from app.engine.sql import redact

REPORT_VERSION = 1
_MAX_QUERY_CHARS = 2000


def _query_text(text: str) -> str:
    """Normalised, literal-free text, cut to a readable length."""
    clean = " ".join(redact(text).split())
    return clean if len(clean) <= _MAX_QUERY_CHARS else clean[: _MAX_QUERY_CHARS - 1] + "…"


def _rec_json(rec: Recommendation) -> dict[str, Any]:
    return {
        "id": recommendation_id(rec),
        "action": rec.action,
        "rule": rec.rule,
        "table": rec.table,
        "columns": list(rec.columns),
        "include": list(rec.include),
        "where": rec.where,
        "using": rec.using,
        "index_name": rec.index_name,
        "ddl": rec.ddl,
        "size_bytes": rec.size_bytes,
        # Filled by measured evidence (validation); estimates alone never claim confidence.
        "confidence": None,
        "confidence_breakdown": {},
        "queries": [
            {
                "query": _query_text(e.query.text),
                "calls": e.query.calls,
                "before": {"cost": round(e.cost_before, 2), "ms_p50": None},
                "after": {"cost": round(e.cost_after, 2), "ms_p50": None},
            }
            for e in rec.effects
        ],
        "reasons": list(rec.reasons),
    }


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
        },
        "whatif": {"method": report.whatif, "calls": report.whatif_calls},
        "estimated_workload_cost": {
            "before": round(report.workload_cost_before, 2),
            "after": round(report.workload_cost_after, 2),
        },
        "recommendations": [_rec_json(r) for r in report.recommendations],
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


def to_text(report: Report, *, verbose: bool = False) -> str:
    """A terminal report: findings first, then what was turned away and why."""
    snap = report.snapshot
    lines = [
        f"DB Architect audit of {snap.database} (PostgreSQL {snap.server_version})",
        f"workload: {report.statements} statements, {len(report.analyzed)} analysed, "
        f"{len(report.skipped)} skipped; what-if: {report.whatif}, {report.whatif_calls} calls",
        f"estimated workload cost (Σ calls × cost): {_saving(report)}",
        "",
    ]
    if not report.recommendations:
        lines.append("No recommendations: the workload is served by the existing indexes.")
    for n, rec in enumerate(report.recommendations, 1):
        lines.append(f"{n}. [{rec.action}] {rec.ddl};")
        if rec.size_bytes:
            lines.append(f"   size ≈ {_size(rec.size_bytes)}; id {recommendation_id(rec)}")
        for reason in rec.reasons:
            lines.append(f"   - {reason}")
        for e in rec.effects[: None if verbose else 3]:
            lines.append(
                f"     {e.cost_before:>12,.1f} → {e.cost_after:>10,.1f}  "
                f"×{e.query.calls:<7} {_query_text(e.query.text)[:90]}"
            )
        if not verbose and len(rec.effects) > 3:
            lines.append(f"     … and {len(rec.effects) - 3} more statements")
    lines.append("")
    rejected = [f"{r.candidate}: {r.reason}" for r in report.rejected]
    lines += _listing("Not recommended", rejected, verbose=verbose)
    skipped = [f"{_query_text(s.query.text)[:80]}: {s.reason}" for s in report.skipped]
    lines += _listing("Skipped statements", skipped, verbose=verbose)
    return "\n".join(lines).rstrip() + "\n"


def to_markdown(report: Report) -> str:
    """A Markdown report (for issues, check runs and PR bodies)."""
    snap = report.snapshot
    out = [
        f"## DB Architect audit of `{snap.database}`",
        "",
        f"PostgreSQL {snap.server_version} · {report.statements} statements "
        f"({len(report.analyzed)} analysed, {len(report.skipped)} skipped) · "
        f"what-if: {report.whatif}, {report.whatif_calls} calls · "
        f"estimated workload cost {_saving(report)}",
        "",
        "### Recommendations",
        "",
    ]
    if not report.recommendations:
        out.append("None: the workload is served by the existing indexes.")
    for rec in report.recommendations:
        out += [f"#### `{rec.action}` on `{rec.table}`", "", "```sql", rec.ddl + ";", "```", ""]
        out += [f"- {r}" for r in rec.reasons]
        if rec.effects:
            out += ["", "| statement | calls | cost before | cost after |", "|---|---:|---:|---:|"]
            for e in rec.effects[:10]:
                text = _query_text(e.query.text)[:120].replace("|", "\\|")
                out.append(
                    f"| `{text}` | {e.query.calls} | {e.cost_before:,.1f} | {e.cost_after:,.1f} |"
                )
        out.append("")
    if report.rejected:
        out += ["<details><summary>Not recommended</summary>", ""]
        out += [f"- `{r.candidate}`: {r.reason}" for r in report.rejected]
        out += ["", "</details>", ""]
    if report.skipped:
        out += ["<details><summary>Skipped statements</summary>", ""]
        out += [f"- `{_query_text(s.query.text)[:120]}`: {s.reason}" for s in report.skipped]
        out += ["", "</details>", ""]
    return "\n".join(out)
