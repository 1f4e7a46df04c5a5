"""Audit one repository's target and report it: check run, fix PRs (or the outbox), comment."""
# Long module: the audit's report steps (check run, PRs, outbox, comment) share one context.

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any, Protocol

import structlog

from app.adapters.alembic_dir import VersionsDirError, chain_head
from app.adapters.errors import MissingPrerequisite, TargetError, TargetUnavailable
from app.adapters.github.errors import GitHubError, GitHubTransient
from app.adapters.github.models import (
    CheckAction,
    CheckOutput,
    CheckRun,
    FileChange,
    FixChange,
    Published,
    PullInfo,
    RepoInfo,
)
from app.adapters.github.outbox import OutboxEffects
from app.adapters.github.repo import Effects, RepoReader
from app.adapters.llm import ClaudeUnavailable
from app.adapters.whatif import leaf_partitions
from app.adapters.yaml_config import load_config
from app.bot.pulls.evidence_md import evidence_markdown
from app.bot.pulls.fixpr import (
    BRANCH_PREFIX,
    PrMeta,
    branch_name,
    commit_message,
    fingerprint,
    in_plain_words,
    pr_body,
    pr_title,
    read_meta,
)
from app.bot.pulls.plan import Candidate, Decision, ExistingPull, plan_prs
from app.bot.replies.checkrun import (
    CHECK_NAME,
    Output,
    audit_output,
    comment_body,
    conclusion,
    config_error_output,
    failure_output,
)
from app.bot.repo_config import CONFIG_PATH, ConfigError, RepoConfig
from app.engine.advisor.audit import AuditConfig
from app.engine.draft import DraftRefused, draft_revision, revision_id
from app.engine.model import Query, Recommendation, recommendation_id
from app.engine.render import to_json
from app.engine.report import Report
from app.flows.audit_target import WorkloadSpec, audit_target
from app.flows.memory import AuditMemory, Embed, recall, record_ledger
from app.flows.requests import AuditRequest, Memo
from app.flows.schedules import schedule_of
from app.flows.targets import Resolved, TargetProblem, resolve_target
from app.settings import Settings

__all__ = ["AuditDeps", "AuditOutcome", "RunAudit", "abandon", "audit_repository"]

log = structlog.get_logger(__name__)

#: ``audit_target`` run off the event loop: resolved target → report.
RunAudit = Callable[[Resolved], Awaitable[Report]]
#: (request, status, summary, JSON report) → stored.
Recorder = Callable[[AuditRequest, str, dict[str, Any], dict[str, Any] | None], Awaitable[None]]
#: ``(full_name, schedule, timezone)``: the schedule the audit found in the config.
ScheduleRecorder = Callable[[str, str | None, str], Awaitable[None]]
_MEMO_TTL_S = 7 * 24 * 3600
_BUTTONS = {
    "open_prs": CheckAction("Open PRs", "Audit again and open the pull requests", "open_prs"),
    "dry_run": CheckAction("Dry run", "Audit again without changing anything", "dry_run"),
}


class Explainer(Protocol):
    """Claude's plain-language explanation of the evidence (``app.adapters.llm.Claude``)."""

    async def explain(self, evidence: str) -> str: ...


@dataclass(slots=True)
class AuditDeps:
    """What the flow talks to; the worker builds it per job."""

    settings: Settings
    reader: RepoReader
    #: Check runs, comments and reactions (the real GitHub, or the outbox without credentials).
    effects: Effects
    memo: Memo
    #: Where dry runs write what they would publish.
    outbox: OutboxEffects
    run_audit: RunAudit | None = None
    #: Records the finished audit in the store.
    record: Recorder | None = None
    #: First delay of the in-place retries of a publish that GitHub refused for a moment.
    retry_base_s: float = 1.0
    #: Reviewer memory (None without a store): ignores, similar feedback, the ledger.
    memory: AuditMemory | None = None
    #: The embedding model (None when it is not provisioned: memory then only ignores).
    embed: Embed | None = None
    #: Claude, for a plain-language paragraph in PR bodies (None without an API key).
    prose: Explainer | None = None
    #: Remembers the config's schedule for the worker's cron (None without a store).
    remember_schedule: ScheduleRecorder | None = None
    #: The target's slow statements the worker's minute looks remembered (None: no store).
    slow_statements: Callable[[str], Awaitable[tuple[Query, ...]]] | None = None


@dataclass(frozen=True, slots=True)
class AuditOutcome:
    """What one audit did, for the job result and the logs."""

    status: str  # done | config_error | target_problem | failed
    conclusion: str
    results: Mapping[str, str] = field(default_factory=dict)
    dry_run: bool = False
    check_run_id: int | None = None
    #: The check run's title, e.g. "2 pull requests opened · 1 held back".
    title: str = ""


async def audit_repository(request: AuditRequest, deps: AuditDeps) -> AuditOutcome:
    """Read config, resolve the target, audit it, publish fixes above the bar, report.

    Safe to run twice for one request: the check run and the result comment are remembered
    in ``deps.memo``; pull requests are found again by their deterministic branch.
    """
    started = time.monotonic()
    info = await deps.reader.repo_info()
    check_id = await _check(deps, request, info, status="in_progress")
    timeout_s = deps.settings.audit_timeout_seconds
    try:
        async with asyncio.timeout(timeout_s):
            outcome = await _audit(request, deps, info, check_id)
    except TimeoutError:
        output = failure_output(
            "Audit timed out",
            f"the audit took longer than {timeout_s:.0f} s",
            "raise DBARCH_AUDIT_TIMEOUT_SECONDS, or narrow the audit with `/audit --tables …`",
        )
        finish = _finish(deps, request, info, check_id, output, "timed_out", "timed_out")
        return await asyncio.shield(finish)
    except (GitHubTransient, asyncio.CancelledError):
        raise  # retried by the worker: the check run stays in progress meanwhile
    except GitHubError as err:  # permanent: trying again would be refused the same way
        log.error("audit_refused_by_github", repository=request.full_name, status=err.status)
        output = failure_output(
            "Audit failed: GitHub refused a request",
            err.message,
            "fix what GitHub's answer names (usually the App's permissions or where it is "
            "installed), then `/audit` again; nothing is retried until then",
        )
        await _finish(deps, request, info, check_id, output, "failure", "failed")
        raise
    except Exception as err:
        log.exception("audit_failed", repository=request.full_name)
        output = failure_output(
            "Audit failed",
            f"an unexpected {type(err).__name__} stopped the audit",
            "see the worker's log; `/audit` runs it again",
        )
        await _finish(deps, request, info, check_id, output, "failure", "failed")
        raise
    log.info(
        "audit_done",
        repository=request.full_name,
        status=outcome.status,
        seconds=round(time.monotonic() - started, 2),
        results=len(outcome.results),
        dry_run=outcome.dry_run,
    )
    return outcome


async def _audit(
    request: AuditRequest, deps: AuditDeps, info: RepoInfo, check_id: int
) -> AuditOutcome:
    text = await deps.reader.file_text(CONFIG_PATH, info.default_branch)
    if deps.remember_schedule is not None:  # no or a broken config: no schedule
        await deps.remember_schedule(request.full_name, *schedule_of(request.full_name, text))
    if text is None:
        # No config, no audit: installing the App on many repositories must not point them
        # all at a target nobody chose for them.
        output = failure_output(
            "Not configured",
            f"this repository has no `{CONFIG_PATH}` on its default branch",
            "add one that names the target to audit, e.g. `version: 1` and `target: <name>` "
            "(see the App's docs/repo-config.md), then `/audit`",
        )
        return await _finish(deps, request, info, check_id, output, "neutral", "not_configured")
    try:
        config = load_config(text)
    except ConfigError as err:
        return await _finish(
            deps, request, info, check_id, config_error_output(err), "failure", "config_error"
        )
    dry_run = _dry_run(request, config, deps)
    try:
        # Measuring stops at half the deadline, leaving the rest to report what was proven.
        budget_s = min(600.0, deps.settings.audit_timeout_seconds / 2)
        resolved = resolve_target(config, deps.settings.targets, max_seconds=budget_s)
    except TargetProblem as err:
        output = failure_output("Target not available", err.problem, err.what_to_do)
        return await _finish(deps, request, info, check_id, output, "failure", "target_problem")
    resolved = await _with_activity(resolved, deps)
    try:
        report = await (deps.run_audit or _run_audit)(resolved)
    except TargetError as err:
        output = failure_output(*_target_error(resolved.name, err))
        return await _finish(deps, request, info, check_id, output, "failure", "target_problem")
    report = _narrow(report, request.tables)
    report, ignored = await recall(deps.memory, deps.embed, request.full_name, report)
    min_confidence = max(config.min_confidence, request.min_confidence or 0.0)
    publisher: Effects = deps.outbox if dry_run else deps.effects
    existing = await _existing(deps)
    decisions = plan_prs(
        _candidates(report, min_confidence),
        existing,
        now=datetime.now(UTC),
        concurrent_limit=config.pr_concurrent_limit,
        hourly_limit=config.pr_hourly_limit,
        ignore=config.ignore,
        recs={recommendation_id(r): r for r in report.recommendations},
        min_confidence=min_confidence,
        ignored=ignored,
    )
    numbers: dict[str, int] = {}
    results = await _publish_all(
        deps, publisher, report, decisions, config, info, dry_run, request, numbers
    )
    await record_ledger(deps.memory, request.full_name, report, decisions, numbers)
    output = audit_output(
        report,
        decisions,
        results,
        dry_run=dry_run,
        min_confidence=min_confidence,
        target=resolved.name,
        trigger=_trigger_text(request),
    )
    return await _finish(
        deps,
        request,
        info,
        check_id,
        output,
        conclusion(report, decisions),
        "done",
        results=results,
        dry_run=dry_run,
        report=report,
    )


async def abandon(request: AuditRequest, deps: AuditDeps, problem: str, what_to_do: str) -> None:
    """Complete the request's check run (and reply) when its job gives up before auditing."""
    info = await deps.reader.repo_info()
    check_id = await _check(deps, request, info, status="in_progress")
    output = failure_output("Audit not run", problem, what_to_do)
    await _finish(deps, request, info, check_id, output, "cancelled", "failed")


# ---------------------------------------------------------------------- steps


def _dry_run(request: AuditRequest, config: RepoConfig, deps: AuditDeps) -> bool:
    """An explicit request wins over the config; the operator and missing credentials win."""
    if deps.settings.dry_run or deps.effects.dry_run:
        return True
    if request.dry_run is not None:
        return request.dry_run
    return config.dry_run


async def _with_activity(resolved: Resolved, deps: AuditDeps) -> Resolved:
    """The target with its remembered slow statements and the operator's look threshold."""
    min_ms = deps.settings.activity_min_ms
    found = await deps.slow_statements(resolved.name) if deps.slow_statements else ()
    return replace(resolved, sightings=found if min_ms > 0 else (), activity_min_ms=min_ms or None)


async def _run_audit(resolved: Resolved) -> Report:
    """The blocking audit in a worker thread (its sessions carry their own timeouts)."""
    return await asyncio.to_thread(
        audit_target,
        resolved.dsn,
        WorkloadSpec(sightings=resolved.sightings, activity_min_ms=resolved.activity_min_ms),
        config=AuditConfig(disk_budget=resolved.disk_budget),
        allow_build=resolved.allow_build,
        validation=resolved.validation,
    )


_TRIGGERS = {
    "comment": "`/audit`",
    "dispatch": "`repository_dispatch`",
    "check_run": "check run",
    "command": "a command on its pull request",
    "schedule": "schedule",
    "api": "admin API",
}


def _trigger_text(request: AuditRequest) -> str:
    """``/audit`` by @alice, for the check run's summary."""
    what = _TRIGGERS.get(request.trigger, request.trigger)
    return f"{what} by @{request.requested_by}" if request.requested_by else what


def _target_error(name: str, err: TargetError) -> tuple[str, str, str]:
    if isinstance(err, MissingPrerequisite):
        return ("Target lacks a prerequisite", str(err), "run what the message says on the target")
    # Connection errors name hosts, ports and users: they go to the operator's log, not to a
    # check run that everyone with read access (or the public) can see.
    log.warning("target_error", target=name, error=str(err))
    if isinstance(err, TargetUnavailable):
        return (
            "Target unreachable",
            f"target `{name}` did not accept the connection",
            "the worker's log has the details; check that the database is up and that "
            "DBARCH_TARGETS holds the right DSN",
        )
    return ("Audit failed", f"a query on target `{name}` failed", "see the worker's log")


def _narrow(report: Report, tables: tuple[str, ...]) -> Report:
    """Keep only recommendations on ``tables`` (``orders`` matches ``public.orders``)."""
    if not tables:
        return report
    wanted = {t if "." in t else f"public.{t}" for t in tables}
    return replace(
        report, recommendations=tuple(r for r in report.recommendations if r.table in wanted)
    )


def _candidates(report: Report, min_confidence: float) -> list[Candidate]:
    found = []
    for rec in report.recommendations:
        rid = recommendation_id(rec)
        assessment = report.assessments.get(rid)
        score = assessment.confidence.score if assessment else 0.0
        eligible = bool(assessment and assessment.confidence.eligible) and score >= min_confidence
        found.append(
            Candidate(
                rec_id=rid,
                fingerprint=fingerprint(rec),
                branch=branch_name(rec),
                table=rec.table,
                confidence=score,
                eligible=eligible,
            )
        )
    return found


async def _existing(deps: AuditDeps) -> list[ExistingPull]:
    """Our PRs as GitHub has them (a dry run plans exactly what a live run would)."""
    return [_existing_pull(p) for p in await deps.reader.bot_pulls(BRANCH_PREFIX)]


def _existing_pull(pull: PullInfo) -> ExistingPull:
    meta = read_meta(pull.body)
    return ExistingPull(
        number=pull.number,
        branch=pull.head_ref,
        state=pull.state,
        merged=pull.merged,
        created_at=pull.created_at,
        fingerprint=meta.fingerprint if meta else None,
    )


async def _publish_all(
    deps: AuditDeps,
    publisher: Effects,
    report: Report,
    decisions: list[Decision],
    config: RepoConfig,
    info: RepoInfo,
    dry_run: bool,
    request: AuditRequest,
    numbers: dict[str, int],
) -> dict[str, str]:
    """Open or refresh one PR per decision; ``numbers`` learns the real PRs' numbers."""
    recs = {recommendation_id(r): r for r in report.recommendations}
    todo = [d for d in decisions if d.verdict in ("open", "update")]
    if not todo:
        return {}
    chosen = [recs[d.candidate.rec_id] for d in todo]
    prose = await _explanations(deps, request.full_name, chosen, report)
    versions = await deps.reader.python_files(config.migrations_path, info.default_branch)
    try:
        head = await asyncio.to_thread(_head, versions, {revision_id(r) for r in recs.values()})
    except VersionsDirError as err:
        return {d.candidate.rec_id: f"failed: {err}" for d in todo}
    pulls = {p.head_ref: p for p in await _open_pulls(deps)}
    results: dict[str, str] = {}
    for decision in todo:
        rid = decision.candidate.rec_id
        rec = recs[rid]
        existing = pulls.get(decision.candidate.branch)
        try:
            change = _change(report, rec, config, info, head, existing, prose.get(rid))
        except DraftRefused as err:
            results[decision.candidate.rec_id] = f"failed: {err}"
            continue
        if request.force_fingerprint == decision.candidate.fingerprint:
            change = replace(change, force=True)  # @db-architect recreate
        try:
            published = await _publish(publisher, change, deps.retry_base_s)
        except GitHubTransient:
            raise  # still refused after the quick retries: the worker retries the job later
        except GitHubError as err:
            results[decision.candidate.rec_id] = f"failed: {err}"
            continue
        results[decision.candidate.rec_id] = _said(published.action, published.number, dry_run)
        if not dry_run and published.number:
            numbers[decision.candidate.rec_id] = published.number
    return results


async def _explanations(
    deps: AuditDeps, repository: str, recs: Sequence[Recommendation], report: Report
) -> dict[str, str]:
    """Claude's plain-language paragraph per PR (by rec id), kept a week per recommendation."""
    if deps.prose is None:
        return {}
    found: dict[str, str] = {}
    for rec in recs:
        key = f"dbarch:explain:{repository}:{fingerprint(rec)}"
        text = await deps.memo.get(key)
        if text is None:
            try:
                text = await deps.prose.explain(evidence_markdown(report, rec))
            except ClaudeUnavailable as err:
                # Claude is down or refusing: the rest would wait as long for the same answer.
                log.warning("pr_without_explanation", reason=str(err), left=len(recs) - len(found))
                break
            await deps.memo.set(key, text, _MEMO_TTL_S)
        found[recommendation_id(rec)] = text
    return found


#: A publish refused for a moment (5xx, rate limit) is retried here, this many times, waiting
#: at most this long each, before the whole job is retried later (which audits again).
PUBLISH_TRIES = 4
PUBLISH_MAX_WAIT_S = 60.0


async def _publish(publisher: Effects, change: FixChange, base_s: float) -> Published:
    """Publish, retrying transient refusals with exponential backoff (and GitHub's own wait)."""
    for attempt in range(1, PUBLISH_TRIES + 1):
        try:
            return await publisher.publish(change)
        except GitHubTransient as err:
            wait = max(err.retry_after or 0.0, base_s * 2 ** (attempt - 1))
            if attempt == PUBLISH_TRIES or wait > PUBLISH_MAX_WAIT_S:
                raise
            log.warning("publish_retry", branch=change.branch, error=str(err), wait_s=wait)
            await asyncio.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


async def _open_pulls(deps: AuditDeps) -> list[PullInfo]:
    return [p for p in await deps.reader.bot_pulls(BRANCH_PREFIX) if p.state == "open"]


def _said(action: str, number: int, dry_run: bool) -> str:
    if dry_run:
        return {"created": "would open (dry run)", "updated": "would update (dry run)"}.get(
            action, "unchanged (dry run)"
        )
    if action == "blocked":
        where = f"#{number}" if number else "its branch"
        return f"blocked {where}: someone else pushed to the branch, so it is left alone"
    return f"{'opened' if action == 'created' else action} #{number}"


def _head(versions: Mapping[str, str], ours: set[str]) -> str | None:
    """The Alembic head of the repository's versions directory (our own drafts left out)."""
    with TemporaryDirectory(prefix="dbarch-versions-") as tmp:
        for name, text in versions.items():
            (Path(tmp) / Path(name).name).write_text(text)
        return chain_head(Path(tmp), ignore=ours)


def _change(
    report: Report,
    rec: Recommendation,
    config: RepoConfig,
    info: RepoInfo,
    head: str | None,
    existing: PullInfo | None,
    prose: str | None = None,
) -> FixChange:
    """The branch, revision file, title and body for one recommendation.

    The revision's creation date is the PR's, so refreshing an open PR changes its file
    only when the recommendation or the repository's Alembic head changed.
    """
    created = existing.created_at if existing else datetime.now(UTC).replace(microsecond=0)
    partitions = leaf_partitions(report.snapshot).get(rec.table, ())
    draft = draft_revision(rec, down_revision=head, created=created, partitions=partitions)
    path = f"{config.migrations_path.rstrip('/')}/{draft.filename}"
    rid = recommendation_id(rec)
    assessment = report.assessments.get(rid)
    meta = PrMeta(
        fingerprint=fingerprint(rec),
        rec_id=rid,
        action=rec.action,
        table=rec.table,
        revision=draft.revision,
        confidence=round(assessment.confidence.score, 3) if assessment else 0.0,
        audit_id=None,
    )
    evidence = evidence_markdown(report, rec, revision_file=path)
    if prose:
        evidence = in_plain_words(prose) + evidence
    body = pr_body(evidence, meta)
    return FixChange(
        branch=branch_name(rec),
        base_branch=info.default_branch,
        title=pr_title(rec),
        body=body,
        commit_message=commit_message(rec, path),
        files=(FileChange(path, draft.source),),
        labels=tuple(config.labels),
        existing=existing,
    )


# ---------------------------------------------------------------------- reporting


async def _check(
    deps: AuditDeps,
    request: AuditRequest,
    info: RepoInfo,
    *,
    status: str,
    output: CheckOutput | None = None,
    conclusion_: str | None = None,
) -> int:
    """Create the audit's check run once (remembered across retries), then update it."""
    key = request.check_run_key
    known = await deps.memo.get(key)
    check_id = await deps.effects.check_run(
        CheckRun(
            info.head_sha,
            name=CHECK_NAME,
            status=status,
            output=output,
            conclusion=conclusion_,
            id=int(known) if known else None,
            external_id=request.trigger_key,
        )
    )
    if not known:
        await deps.memo.set(key, str(check_id), _MEMO_TTL_S)
    return check_id


async def _finish(
    deps: AuditDeps,
    request: AuditRequest,
    info: RepoInfo,
    check_id: int,
    output: Output,
    conclusion_: str,
    status: str,
    *,
    results: Mapping[str, str] | None = None,
    dry_run: bool = False,
    report: Report | None = None,
) -> AuditOutcome:
    can_publish = not (deps.effects.dry_run or deps.settings.dry_run)
    buttons = (
        (_BUTTONS["open_prs"],)
        if dry_run and can_publish
        else (_BUTTONS["dry_run"],)
        if status == "done" and not dry_run
        else ()
    )
    check_output = CheckOutput(output.title, output.summary, output.text, actions=buttons)
    await _check(
        deps, request, info, status="completed", output=check_output, conclusion_=conclusion_
    )
    if request.issue_number is not None:
        body = comment_body(output, check_url=None, requested_by=request.requested_by)
        try:
            await deps.effects.comment(request.issue_number, body, comment_id=request.comment_id)
        except GitHubError as err:
            if err.status != 404 or request.comment_id is None:
                raise
            await deps.effects.comment(request.issue_number, body)  # someone deleted it
    if deps.record is not None:
        summary = {
            "title": output.title,
            "conclusion": conclusion_,
            "results": dict(results or {}),
            "dry_run": dry_run,
        }
        try:
            await deps.record(request, status, summary, to_json(report) if report else None)
        except Exception:  # the audit is done and reported; the history must not undo that
            log.exception("audit_not_recorded", repository=request.full_name)
    return AuditOutcome(
        status=status,
        conclusion=conclusion_,
        results=dict(results or {}),
        dry_run=dry_run,
        check_run_id=check_id,
        title=output.title,
    )
