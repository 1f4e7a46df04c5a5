"""What the dashboard templates show, built from History rows and stored reports (pure).

Stored reports are JSON written by earlier versions too, so every field is read defensively:
a missing or odd value shows as "—" rather than breaking the page.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from app.adapters.history import AuditSummary, RecommendationRow, Speedup
from app.web.ui.charts import SpeedupBar

__all__ = [
    "AUDIT_STATUSES",
    "CLOSED_STATES",
    "OPEN_STATES",
    "RecommendationView",
    "StatementView",
    "audit_recommendations",
    "fmt_duration",
    "fmt_when",
    "merge_newest_first",
    "pull_url",
    "speedup_bars",
    "states_for",
    "status_counts",
]

AUDIT_STATUSES = ("queued", "running", "done", "failed", "timed_out")
OPEN_STATES = ("pr_open", "proposed")
CLOSED_STATES = ("merged", "ignored", "superseded")
_CHOICES = {"open": OPEN_STATES, "closed": CLOSED_STATES} | {
    s: (s,) for s in OPEN_STATES + CLOSED_STATES
}


def states_for(choice: str) -> tuple[str, ...]:
    """The ledger states a ``?state=`` choice stands for.

    >>> states_for("open")
    ('pr_open', 'proposed')

    Raises:
        ValueError: not ``open``, ``closed`` or one of the states.
    """
    try:
        return _CHOICES[choice]
    except KeyError:
        raise ValueError(f"unknown state {choice!r}: use one of {', '.join(_CHOICES)}") from None


def merge_newest_first(
    groups: Iterable[Sequence[RecommendationRow]], limit: int
) -> list[RecommendationRow]:
    """Several states' pages as one page, newest (highest id) first, ``limit`` rows at most.

    Each group is a keyset page below the same ``before``, so the first ``limit`` of the
    union are exactly the next page of the union.
    """
    rows = [row for group in groups for row in group]
    return sorted(rows, key=lambda row: row.id, reverse=True)[:limit]


def status_counts(audits: Iterable[AuditSummary]) -> list[tuple[str, int]]:
    """Audits per status, known statuses first in lifecycle order, then any other."""
    counts = Counter(a.status for a in audits)
    known = [(s, counts.pop(s)) for s in AUDIT_STATUSES if s in counts]
    return known + sorted(counts.items())


def speedup_bars(speedups: Iterable[Speedup], *, limit: int) -> list[SpeedupBar]:
    """One bar per recommendation, from its newest measurement (rows come newest first)."""
    bars: list[SpeedupBar] = []
    seen: set[tuple[str, str]] = set()
    for s in speedups:
        key = (s.repository, s.rec_id)
        if key in seen:
            continue
        seen.add(key)
        action = s.action.replace("_", " ")
        label = f"{s.table.removeprefix('public.')} · {action}"
        bars.append(SpeedupBar(label, s.before_ms, s.after_ms, href=f"/ui/audits/{s.audit_id}"))
        if len(bars) == limit:
            break
    return bars


def pull_url(repository: str, number: int, *, web: str = "https://github.com") -> str:
    """The pull request's page on GitHub (``web``: GitHub's address, e.g. a GHES host)."""
    return f"{web.rstrip('/')}/{quote(repository, safe='/')}/pull/{number}"


def fmt_duration(seconds: float | None) -> str:
    """``0.8 s``, ``42 s``, ``3 min 05 s``, ``2 h 04 min``; ``—`` when unknown.

    >>> fmt_duration(0.84), fmt_duration(185), fmt_duration(7440), fmt_duration(None)
    ('0.8 s', '3 min 05 s', '2 h 04 min', '—')
    """
    if seconds is None or not math.isfinite(seconds):
        return "—"
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def fmt_when(moment: datetime | None) -> str:
    """A timestamp in UTC to the minute; ``—`` when unknown."""
    if moment is None:
        return "—"
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True, slots=True)
class StatementView:
    """One statement a recommendation was measured (or estimated) on."""

    query: str
    calls: int | None
    write: bool
    before_ms: float | None
    after_ms: float | None
    notes: tuple[str, ...]

    @property
    def ratio(self) -> float | None:
        """How many times faster; None unless both sides were measured."""
        if self.before_ms is None or not self.after_ms:
            return None
        return self.before_ms / self.after_ms


@dataclass(frozen=True, slots=True)
class RecommendationView:
    """A recommendation of one audit's report, with what was done about it."""

    id: str
    action: str
    table: str
    columns: tuple[str, ...]
    ddl: str | None
    confidence: float | None
    eligible: bool
    breakdown: tuple[tuple[str, float], ...]
    memory_header: str | None
    memory: tuple[str, ...]
    reasons: tuple[str, ...]
    statements: tuple[StatementView, ...]
    result: str | None
    #: How it was measured (``sandbox``, ``estimate-only: why`` …); None in a version 1 report.
    measured: str | None = None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _texts(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _measured(value: Any) -> str | None:
    if not isinstance(value, Mapping) or _text(value.get("method")) is None:
        return None
    method, reason = _text(value.get("method")), _text(value.get("reason"))
    return f"{method}: {reason}" if reason else method


def _keys(rec: Mapping[str, Any]) -> tuple[str, ...]:
    """Key columns with ``DESC`` where the report's ``descending`` says so (version 2)."""
    flags = rec.get("descending")
    flags = flags if isinstance(flags, list) else []
    return tuple(
        key + (" DESC" if i < len(flags) and flags[i] is True else "")
        for i, key in enumerate(_texts(rec.get("columns")))
    )


def _side_ms(query: Mapping[str, Any], side: str) -> float | None:
    measured = query.get(side)
    return _number(measured.get("ms_p50")) if isinstance(measured, Mapping) else None


def _statement(query: Mapping[str, Any]) -> StatementView:
    calls = query.get("calls")
    return StatementView(
        query=_text(query.get("query")) or "—",
        calls=calls if isinstance(calls, int) and not isinstance(calls, bool) else None,
        write=query.get("write") is True,
        before_ms=_side_ms(query, "before"),
        after_ms=_side_ms(query, "after"),
        notes=_texts(query.get("notes")),
    )


def _breakdown(value: Any) -> tuple[tuple[str, float], ...]:
    if not isinstance(value, Mapping):
        return ()
    return tuple((str(k), number) for k, v in value.items() if (number := _number(v)) is not None)


def _recommendation(rec: Mapping[str, Any], results: Mapping[str, Any]) -> RecommendationView:
    rec_id = _text(rec.get("id")) or "—"
    citations = _texts(rec.get("reviewer_memory"))
    header = citations[0] if citations and not citations[0].startswith("- ") else None
    bullets = citations[1:] if header is not None else citations
    queries = rec.get("queries")
    return RecommendationView(
        id=rec_id,
        action=_text(rec.get("action")) or "—",
        table=_text(rec.get("table")) or "—",
        columns=_keys(rec),
        ddl=_text(rec.get("ddl")),
        confidence=_number(rec.get("confidence")),
        eligible=rec.get("eligible") is True,
        breakdown=_breakdown(rec.get("confidence_breakdown")),
        memory_header=header,
        memory=tuple(line.removeprefix("- ") for line in bullets),
        reasons=_texts(rec.get("reasons")),
        statements=tuple(
            _statement(q)
            for q in (queries if isinstance(queries, list) else ())
            if isinstance(q, Mapping)
        ),
        result=_text(results.get(rec_id)),
        measured=_measured(rec.get("measurement")),
    )


def audit_recommendations(
    report: Mapping[str, Any] | None, summary: Mapping[str, Any]
) -> list[RecommendationView]:
    """The report's recommendations in its order, each with its result from the summary."""
    recs = report.get("recommendations") if report else None
    results = summary.get("results")
    results = results if isinstance(results, Mapping) else {}
    if not isinstance(recs, list):
        return []
    return [_recommendation(rec, results) for rec in recs if isinstance(rec, Mapping)]
