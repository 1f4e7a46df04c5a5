"""The texts people read on GitHub: the check run's output and the `/audit` comments.

Everything stays inside GitHub's limits (title 255, summary and text 65,535 characters,
comments 60,000 here) and shows only normalised query text: never a literal value or a DSN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from app.bot.commands.audit import AUDIT_USAGE, AuditCommand, CommandError, commands_help
from app.bot.pulls.evidence_md import MAX_CHARS
from app.bot.pulls.plan import Decision
from app.bot.repo_config import CONFIG_PATH, ConfigError
from app.engine import markdown as md
from app.engine.model import Recommendation, recommendation_id
from app.engine.proof.confidence import Assessment
from app.engine.proof.evidence import balance
from app.engine.render import confidence_line
from app.engine.report import Report
from app.engine.sql import redact

__all__ = [
    "AUDIT_COMMENT_MARKER",
    "CHECK_NAME",
    "REFUSAL_MARKER",
    "Output",
    "audit_output",
    "command_error_comment",
    "comment_body",
    "conclusion",
    "config_error_output",
    "failure_output",
    "queued_comment",
    "refusal_comment",
]

CHECK_NAME = "DB Architect / audit"
AUDIT_COMMENT_MARKER = "<!-- db-architect:audit-comment -->"
#: Refusals are their own topic: they must never overwrite a previous audit's result comment.
REFUSAL_MARKER = "<!-- db-architect:audit-refusal -->"
COMMENT_HEADING = "### DB Architect audit"
MAX_TITLE = 255
MAX_OUTPUT = 65_535
_CELL = 80
#: The outcome cell is our own reason, the rate-limit ones the longest (about 90 characters).
_OUTCOME_CELL = 120
_LIST = 100
_ACTIONS = {"create_index": "add index", "drop_index": "drop index", "reindex": "reindex"}
#: How results (``rec_id → "opened #12"`` …) are counted in the title, in title order.
_OUTCOMES = (
    ("opened", "opened"),
    ("updated", "updated"),
    ("unchanged", "unchanged"),
    ("would open", "would open"),
    ("would update", "would update"),
    ("blocked", "blocked"),
    ("failed", "failed"),
)
_EXAMPLE = (
    "```yaml\n"
    "version: 1\n"
    "target: shop  # a name the operator of DB Architect configured, never a connection string\n"
    "```"
)


@dataclass(frozen=True, slots=True)
class Output:
    """A check run's ``output``: title ≤ 255, summary and text ≤ 65,535 characters."""

    title: str
    summary: str
    text: str | None = None


def _fit(text: str, limit: int = MAX_OUTPUT) -> str:
    """``text`` cut at a line boundary to ``limit`` characters, saying so (never mid-code)."""
    return md.fit(text, limit, "… more lines cut to stay within GitHub's size limit.")


def _output(title: str, summary: str, text: str | None = None) -> Output:
    shown = md.plain(md.shorten(" ".join(title.split()), MAX_TITLE))
    return Output(shown, _fit(summary), None if text is None else _fit(text))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _cell(text: str) -> str:
    """Our words, with names in backticks shown as code, fit for a table cell."""
    return md.inline(text, _CELL, cell=True)


def _code_cell(text: str) -> str:
    return md.code(text, _CELL, cell=True)


def _rec_id(rec: Recommendation) -> str:
    return recommendation_id(rec)


def _confidence(report: Report, rec: Recommendation) -> float | None:
    assessment = report.assessments.get(_rec_id(rec))
    return assessment.confidence.score if assessment else None


def _ordered(report: Report) -> list[Recommendation]:
    """Highest confidence first (as the plan orders them), then by id."""
    return sorted(
        report.recommendations, key=lambda r: (-(_confidence(report, r) or -1.0), _rec_id(r))
    )


def _index(rec: Recommendation) -> str:
    if rec.action != "create_index":
        return rec.index_name
    keys = ", ".join(
        key + (" DESC" if i < len(rec.descending) and rec.descending[i] else "")
        for i, key in enumerate(rec.columns)
    )
    text = f"({keys})"
    text += f" INCLUDE ({', '.join(rec.include)})" if rec.include else ""
    return text + (f" WHERE {rec.where}" if rec.where else "")


def _measured(rec: Recommendation, assessment: Assessment | None) -> str:
    evidence = assessment.evidence if assessment else None
    if evidence is None or evidence.skipped is not None:
        return "not measured"
    bal = balance(evidence)
    if not bal.reads_measured:
        return "no read measured"
    if rec.action != "create_index":
        return "no read slower"
    if bal.read_after <= 0 or bal.read_before <= 0:
        return "—"
    ratio = bal.read_before / bal.read_after
    if ratio >= 2:
        return f"{ratio:,.1f}× faster"
    if ratio >= 1:
        return f"{1 - 1 / ratio:.0%} faster"
    return f"{1 / ratio - 1:.0%} slower"


def _outcome(rec_id: str, decision: Decision | None, results: Mapping[str, str]) -> str:
    if rec_id in results:
        return results[rec_id]
    if decision is None:
        return "not proposed"
    if decision.verdict == "hold":
        return f"held back: {decision.reason}"
    return f"to {decision.verdict}"


def _title(report: Report, decisions: Sequence[Decision], results: Mapping[str, str]) -> str:
    if not report.recommendations:
        return "No changes proposed"
    parts = []
    for prefix, phrase in _OUTCOMES:
        n = sum(value.startswith(prefix) for value in results.values())
        if n:
            parts.append(f"{n} {phrase}")
    held = sum(d.verdict == "hold" and d.candidate.rec_id not in results for d in decisions)
    if held:
        parts.append(f"{held} held back")
    if not parts:
        return f"{_plural(len(report.recommendations), 'recommendation')}, none proposed"
    first_count, _, rest = parts[0].partition(" ")
    noun = "recommendation" if rest == "held back" else "pull request"
    parts[0] = f"{_plural(int(first_count), noun)} {rest}"
    return " · ".join(parts)


def _table(report: Report, decisions: Sequence[Decision], results: Mapping[str, str]) -> list[str]:
    by_id = {d.candidate.rec_id: d for d in decisions}
    lines = [
        "| # | action | table | index | confidence | measured | outcome |",
        "|---:|---|---|---|---:|---|---|",
    ]
    for n, rec in enumerate(_ordered(report), 1):
        rec_id = _rec_id(rec)
        score = _confidence(report, rec)
        outcome = _outcome(rec_id, by_id.get(rec_id), results)
        lines.append(
            f"| {n} | {_cell(_ACTIONS.get(rec.action, rec.action))} | {_code_cell(rec.table)} "
            f"| {_code_cell(_index(rec))} | {'—' if score is None else f'{score:.0%}'} "
            f"| {_measured(rec, report.assessments.get(rec_id))} "
            f"| {md.inline(outcome, _OUTCOME_CELL, cell=True)} |"
        )
    return lines


def audit_output(
    report: Report,
    decisions: Sequence[Decision],
    results: Mapping[str, str],
    *,
    dry_run: bool,
    min_confidence: float,
    target: str,
    trigger: str,
) -> Output:
    """The completed audit's check-run output: what was found, opened and held back, and why."""
    snap = report.snapshot
    summary = [
        f"**Target** {md.code(target, 100)} (PostgreSQL {md.text(snap.server_version, 40)}, "
        f"database {md.code(snap.database, 100)}) · **Trigger** {md.inline(trigger, 200)}",
        "",
        f"**Workload** {_plural(report.statements, 'statement')}: {len(report.analyzed)} "
        f"analysed, {len(report.skipped)} skipped · what-if: {md.text(report.whatif, 40)} "
        f"({report.whatif_calls:,} calls)",
        "",
    ]
    if dry_run:
        summary += [
            "> **Dry run**: nothing was changed on GitHub; what would have been done is "
            "listed here and written to the outbox.",
            "",
        ]
    if report.recommendations:
        summary += [*_table(report, decisions, results), ""]
    else:
        summary += ["No recommendations: the workload is served by the existing indexes.", ""]
    summary += [
        f"Pull requests open only at confidence ≥ {min_confidence:.0%} "
        f"(`min_confidence` in `{CONFIG_PATH}` or `/audit --min-confidence` can raise the "
        "bar above 80%, never lower it).",
        "",
        f"**Not recommended** {_plural(len(report.rejected), 'candidate')} · "
        f"**Skipped** {_plural(len(report.skipped), 'statement')}"
        + (" (reasons in the check run's details)" if report.rejected or report.skipped else ""),
    ]
    title = _title(report, decisions, results)
    return _output(title, "\n".join(summary) + "\n", _details(report))


def _heading(rec: Recommendation) -> str:
    action = md.text(_ACTIONS.get(rec.action, rec.action), 40)
    if rec.action == "create_index":
        return f"{action} on {md.code(rec.table + ' ' + _index(rec), 200)}"
    return f"{action} {md.code(rec.index_name, 100)} on {md.code(rec.table, 100)}"


def _part(key: str, part: float) -> str:
    """``measured speedup 0.350``; reviewer memory and negative parts are signed."""
    signed = key == "reviewer_memory" or part < 0
    shown = f"{part:+.3f}".replace("-", "−") if signed else f"{part:.3f}"
    return f"{md.text(key.replace('_', ' '), 40)} {shown}"


def _details(report: Report) -> str:
    """The per-recommendation confidence breakdown, then every rejection and skip."""
    lines: list[str] = []
    for n, rec in enumerate(_ordered(report), 1):
        assessment = report.assessments.get(_rec_id(rec))
        lines += [f"### {n}. {_heading(rec)}", ""]
        lines += [
            f"{md.code(_rec_id(rec))} · rule {md.code(rec.rule, 60)} · index "
            f"{md.code(rec.index_name, 100)}",
            "",
        ]
        line = confidence_line(rec, assessment)
        lines.append(
            f"- {md.inline(line, 600)}" if line else "- confidence not assessed: no pull request"
        )
        if assessment and assessment.confidence.breakdown:
            parts = " · ".join(
                _part(key, part) for key, part in assessment.confidence.breakdown.items()
            )
            lines.append(f"- breakdown: {parts}")
        if assessment and assessment.memory:
            header, *cited = assessment.memory
            lines += [f"- {header}", *(f"  {line}" for line in cited)]
        lines += [f"- {md.text(reason, 400)}" for reason in rec.reasons]
        lines.append("")
    if report.rejected:
        lines += ["### Not recommended", ""]
        lines += [
            f"- {md.code(r.candidate, 200)}: {md.text(r.reason, 300)}" for r in report.rejected
        ]
        lines.append("")
    if report.skipped:
        lines += ["### Skipped statements", ""]
        lines += [
            f"- {md.code(' '.join(redact(s.query.text).split()), _LIST)}: {md.text(s.reason, 300)}"
            for s in report.skipped
        ]
        lines.append("")
    return "\n".join(lines) or "Nothing to report."


def conclusion(report: Report, decisions: Sequence[Decision]) -> str:
    """``success`` when nothing is left to propose, else ``neutral`` (advisory; never failure)."""
    settled = {d.candidate.rec_id for d in decisions if d.settled}
    open_findings = [r for r in report.recommendations if _rec_id(r) not in settled]
    return "neutral" if open_findings else "success"


def config_error_output(err: ConfigError) -> Output:
    """The failed check when the repository config is invalid: every problem, and a fix."""
    rows = [f"| {_code_cell(key)} | {_cell_long(problem)} |" for key, problem in err.problems]
    summary = [
        f"DB Architect could not use `{CONFIG_PATH}` from the default branch, so it did not "
        "audit. Nothing was changed.",
        "",
        "| key | problem |",
        "|---|---|",
        *rows,
        "",
        "Fix the file on the default branch and run `/audit` again. A minimal valid file:",
        "",
        _EXAMPLE,
        "",
        "Every key, its type and default are in the DB Architect repository config reference "
        "(docs/repo-config.md).",
    ]
    return _output(f"Invalid {CONFIG_PATH}", "\n".join(summary) + "\n")


def _cell_long(text: str) -> str:
    return md.inline(text, 400, cell=True)


def failure_output(title: str, problem: str, what_to_do: str) -> Output:
    """A check that could not audit: what went wrong and what to do about it."""
    summary = (
        f"**Problem**: {md.inline(problem, 2000)}\n\n**What to do**: {md.inline(what_to_do, 2000)}"
        "\n\nNothing was changed.\n"
    )
    return _output(title, summary)


def _comment(marker: str, text: str) -> str:
    head = f"{COMMENT_HEADING}\n{marker}\n\n"
    return head + _fit(text, MAX_CHARS - len(head))


def comment_body(output: Output, *, check_url: str | None, requested_by: str | None) -> str:
    """The `/audit` result comment (edited in place): the check's title and summary."""
    lead = f"{md.mention(requested_by)}: " if requested_by else ""
    link = f"\n[Details in the check run]({check_url})\n" if check_url else ""
    title = md.text(output.title, MAX_TITLE)
    return _comment(AUDIT_COMMENT_MARKER, f"{lead}**{title}**\n\n{output.summary}{link}")


def _options(options: AuditCommand) -> str:
    parts = []
    if options.dry_run:
        parts.append("dry run")
    if options.tables:
        parts.append("tables " + ", ".join(md.code(t, 100) for t in options.tables))
    if options.min_confidence is not None:
        parts.append(f"min confidence {options.min_confidence:.2f}")
    return f" ({'; '.join(parts)})" if parts else ""


def queued_comment(requested_by: str, options: AuditCommand) -> str:
    """The first answer to `/audit`: accepted and queued; the result replaces it."""
    return _comment(
        AUDIT_COMMENT_MARKER,
        f"{md.mention(requested_by)} asked for an audit{_options(options)}: queued. "
        "This comment shows the result when it is done.\n",
    )


def refusal_comment(user: str, permission: str) -> str:
    """A polite no for someone without write access."""
    held = "no access" if permission in ("", "none") else f"{md.code(permission, 40)} access"
    return _comment(
        REFUSAL_MARKER,
        f"{md.mention(user)}, only people with write access to this repository can run `/audit`; "
        f"you have {held}. A maintainer can run it for you.\n",
    )


def command_error_comment(user: str, err: CommandError, *, slug: str = "db-architect") -> str:
    """The answer to a malformed `/audit`: what was wrong, the usage, and the commands."""
    return _comment(
        REFUSAL_MARKER,
        f"{md.mention(user)}, {md.inline(err.problem, 400)}\n\nUsage: {AUDIT_USAGE}\n\n"
        f"<details><summary>Commands</summary>\n\n{commands_help(slug)}\n\n</details>\n",
    )
