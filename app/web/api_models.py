"""The admin API's documents: what it answers, what it accepts, and its errors (no I/O)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, TypeVar, get_args

import msgspec
from msgspec import Meta

from app.adapters.history import (
    AuditDetail,
    AuditSummary,
    FeedbackItem,
    IgnoreRow,
    Learned,
    RecommendationRow,
)
from app.bot.commands.audit import MAX_TABLES
from app.bot.repo_config import table_problem
from app.engine.proof.confidence import MIN_CONFIDENCE

__all__ = [
    "PAGE_MAX",
    "REPOSITORY_PATTERN",
    "ApiError",
    "AuditOutcome",
    "AuditPage",
    "AuditQueued",
    "AuditStart",
    "AuditView",
    "FeedbackPage",
    "LedgerState",
    "MemoryView",
    "QueryEvidence",
    "QuerySide",
    "RecommendationPage",
    "Rejected",
    "ReportRecommendation",
    "ValidationRun",
    "audit_view",
    "page",
    "start_problem",
    "validation_problem",
]

#: Lists answer at most this many items per page (``limit``).
PAGE_MAX = 200
#: ``owner/name`` as GitHub allows them.
REPOSITORY_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$"

LedgerState = Literal["proposed", "pr_open", "merged", "ignored", "superseded"]

Repository = Annotated[
    str,
    Meta(pattern=REPOSITORY_PATTERN, description="`owner/name`, as GitHub spells it"),
]
Confidence = Annotated[float, Meta(ge=MIN_CONFIDENCE, le=1.0)]

#: What to write instead, per field, when a value is refused.
_HINTS = {
    "limit": f"give a whole number from 1 to {PAGE_MAX}",
    "before": "give the `next_before` of the previous page (an id, 1 or more)",
    "audit_id": "give an id from GET /api/audits",
    "repository": "give `owner/name`, as GitHub spells it",
    "state": "give one of " + ", ".join(get_args(LedgerState)),
    "tables": 'give a list of table names, e.g. ["orders", "sales.events"]',
    "dry_run": "give true, false or null (null: as the repository config says)",
    "min_confidence": (
        f"give a number from {MIN_CONFIDENCE} to 1 (the bar can be raised, never lowered), or null"
    ),
}
#: Handler parameter names that differ from what the client sends.
_ALIASES = {"ledger_state": "state"}
_NAMED_FIELD = re.compile(r"field `([^`]+)`")


class ApiError(msgspec.Struct):
    """Every error: what happened and what to do; ``field`` names the value refused (400)."""

    error: str
    field: str | None = None


class AuditPage(msgspec.Struct):
    """Audits, newest first."""

    audits: list[AuditSummary]
    next_before: int | None
    """Pass as ``before`` for the next page; null on the last page."""


class QuerySide(msgspec.Struct):
    """One side (before or after the change) of a statement's evidence."""

    cost: float | None = None
    """The planner's estimate."""
    ms_p50: float | None = None
    """Measured median milliseconds over the parameter sets (null: not measured)."""
    ms_p95: float | None = None
    buffers: float | None = None


class QueryEvidence(msgspec.Struct):
    """A statement the recommendation changes, measured before and after it."""

    query: str
    """Normalised text (``$n`` placeholders, no literal values)."""
    calls: int | None = None
    write: bool = False
    before: QuerySide = msgspec.field(default_factory=QuerySide)
    after: QuerySide = msgspec.field(default_factory=QuerySide)
    parameter_sets: list[str] = msgspec.field(default_factory=list)
    notes: list[str] = msgspec.field(default_factory=list)


class ValidationRun(msgspec.Struct):
    """Where and how the change was tried out."""

    where: str | None = None
    """``sandbox`` or ``target`` (a rolled-back transaction)."""
    skipped: str | None = None
    """Why validation did not run, or stopped."""
    change_ms: float | None = None
    index_bytes: int | None = None
    used_by_plans: bool | None = None


class MeasurementInfo(msgspec.Struct):
    """How the recommendation was measured, or why it was not (report version 2)."""

    method: str | None = None
    """``rolled-back-build``, ``sandbox``, ``hidden-index`` or ``estimate-only``."""
    cause: str | None = None
    """Why not measured (``not-configured``, ``mode``, ``budget``, ``not-allowed`` …)."""
    reason: str | None = None
    statements: int = 0
    statements_measured: int = 0


class ReportRecommendation(msgspec.Struct):
    """A recommendation as the audit's report has it, with what became of it."""

    id: str
    action: str = ""
    table: str = ""
    columns: list[str] = msgspec.field(default_factory=list)
    descending: list[bool] = msgspec.field(default_factory=list)
    """Per key of ``columns``: sorted descending (empty in a version 1 report)."""
    include: list[str] = msgspec.field(default_factory=list)
    where: str | None = None
    index_name: str | None = None
    ddl: str | None = None
    confidence: float | None = None
    eligible: bool = False
    breakdown: dict[str, float] = msgspec.field(default_factory=dict)
    """The confidence breakdown (the report's ``confidence_breakdown``)."""
    reviewer_memory: list[str] = msgspec.field(default_factory=list)
    """Citations behind the ``reviewer_memory`` part of the breakdown (Markdown lines)."""
    measurement: MeasurementInfo | None = None
    """Null in a version 1 report."""
    validation: ValidationRun | None = None
    queries: list[QueryEvidence] = msgspec.field(default_factory=list)
    reasons: list[str] = msgspec.field(default_factory=list)
    result: str | None = None
    """What the audit did with it: ``opened #12``, ``would open``, why it was held back, …"""


class Rejected(msgspec.Struct):
    """A candidate turned away, and why."""

    candidate: str
    reason: str


class AuditOutcome(msgspec.Struct):
    """How the audit ended, as its check run said."""

    title: str | None = None
    conclusion: str | None = None
    outcome: str | None = None
    dry_run: bool | None = None
    results: dict[str, str] = msgspec.field(default_factory=dict)
    """What happened to each recommendation, by its id."""


class AuditView(msgspec.Struct):
    """One audit with its outcome, its recommendations and their evidence."""

    audit: AuditSummary
    summary: AuditOutcome
    recommendations: list[ReportRecommendation]
    rejected: list[Rejected]
    workload: dict[str, int]
    """``statements``, ``analyzed``, ``skipped`` (empty without a report)."""
    target: dict[str, Any]
    """``server_version``, ``database``, ``hypopg`` (empty without a report)."""


class RecommendationPage(msgspec.Struct):
    """The ledger, most recently recorded first."""

    recommendations: list[RecommendationRow]
    next_before: int | None


class FeedbackPage(msgspec.Struct):
    """What reviewers said, newest first (bodies cut to 500 characters)."""

    feedback: list[FeedbackItem]
    next_before: int | None


class MemoryView(msgspec.Struct):
    """What reviewer memory has learned, by verdict, and the explicit ignores."""

    learned: list[Learned]
    ignores: list[IgnoreRow]


class AuditStart(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/audits``: audit one repository now."""

    repository: Repository
    tables: list[str] = msgspec.field(default_factory=list)
    """Only recommendations on these tables (``orders`` means public.orders); empty: all."""
    dry_run: bool | None = None
    """True: change nothing on GitHub; null: as the repository config says."""
    min_confidence: Confidence | None = None
    """Raise the bar for this audit (0.8 to 1); null: as configured."""


class AuditQueued(msgspec.Struct):
    """The audit is queued; its result shows in GET /api/audits once a worker ran it."""

    status: Literal["queued", "already_queued"]
    job_id: str
    trigger_key: str
    repository: str
    installation_id: int


_T = TypeVar("_T", AuditSummary, RecommendationRow, FeedbackItem)


def page(rows: Sequence[_T], limit: int) -> tuple[list[_T], int | None]:
    """One page out of ``limit + 1`` rows fetched: the rows and ``next_before`` (None: last)."""
    if len(rows) <= limit:
        return list(rows), None
    shown = list(rows[:limit])
    return shown, shown[-1].id


def start_problem(start: AuditStart) -> tuple[str, str] | None:
    """``(field, problem)`` for a body the types let through but an audit would not take."""
    if len(start.tables) > MAX_TABLES:
        return "tables", f"names {len(start.tables)} tables; at most {MAX_TABLES}"
    for name in start.tables:
        problem = table_problem(name)
        if problem:
            return "tables", problem
    return None


def validation_problem(extra: object) -> tuple[str, str]:
    """``(field, message)`` from the ``extra`` of Litestar's ValidationException.

    ``extra`` is a list of ``{"message", "key", "source"}``; a body-level problem (a missing
    or unknown field) has the key ``data`` and names the field in its message.
    """
    items = [e for e in extra if isinstance(e, Mapping)] if isinstance(extra, list) else []
    if not items:
        return "", "the request is not valid"
    first = items[0]
    message = str(first.get("message") or "not valid")
    key = str(first.get("key") or "")
    source = str(first.get("source") or "request")
    named = _NAMED_FIELD.search(message)
    if key in ("data", "") and named:
        key = named.group(1)
    field = _ALIASES.get(key, key).split("[", 1)[0]
    where = "the body" if source == "body" else f"the {source}"
    text = f"`{key if key != 'data' else 'body'}` in {where}: {message}"
    hint = _HINTS.get(field)
    return field, f"{text}; {hint}" if hint else text


def _recommendation(raw: Mapping[str, Any], results: Mapping[str, str]) -> ReportRecommendation:
    data = dict(raw)
    data["breakdown"] = data.pop("confidence_breakdown", None) or {}
    for key in ("columns", "descending", "include", "reviewer_memory", "queries", "reasons"):
        data[key] = data.get(key) or []
    data["result"] = results.get(str(data.get("id")))
    try:
        return msgspec.convert(data, ReportRecommendation, strict=False)
    except msgspec.ValidationError as err:  # a report from an older or newer version
        return ReportRecommendation(
            id=str(data.get("id") or "?"),
            action=str(data.get("action") or ""),
            table=str(data.get("table") or ""),
            reasons=[f"the stored evidence of this recommendation could not be read ({err})"],
            result=data["result"],
        )


def _results(summary: Mapping[str, Any]) -> dict[str, str]:
    results = summary.get("results")
    if not isinstance(results, Mapping):
        return {}
    return {str(k): str(v) for k, v in results.items()}


def audit_view(detail: AuditDetail) -> AuditView:
    """The API's view of an audit read from the store (its report may be missing)."""
    summary = detail.summary
    results = _results(summary)
    report = detail.report or {}
    raw_recs = report.get("recommendations")
    raw_rejected = report.get("rejected")
    dry_run = summary.get("dry_run")
    return AuditView(
        audit=detail.audit,
        summary=AuditOutcome(
            title=detail.audit.title,
            conclusion=detail.audit.conclusion,
            outcome=_text(summary.get("outcome")),
            dry_run=dry_run if isinstance(dry_run, bool) else None,
            results=results,
        ),
        recommendations=[
            _recommendation(r, results)
            for r in (raw_recs if isinstance(raw_recs, list) else [])
            if isinstance(r, Mapping)
        ],
        rejected=[
            Rejected(str(r.get("candidate", "")), str(r.get("reason", "")))
            for r in (raw_rejected if isinstance(raw_rejected, list) else [])
            if isinstance(r, Mapping)
        ],
        workload={
            str(k): v
            for k, v in _mapping(report.get("workload")).items()
            if isinstance(v, int) and not isinstance(v, bool)
        },
        target=dict(_mapping(report.get("target"))),
    )


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: object) -> str | None:
    return None if value is None else str(value)
