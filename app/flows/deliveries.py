"""Act on one accepted webhook delivery: commands, dispatches, check-run buttons, lifecycle."""
# Long module: one dispatch over every webhook event kind, each branch a short call.

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

import structlog

from app.adapters.github.models import CheckOutput, RepoRef
from app.adapters.github.repo import Effects, RepoReader
from app.bot.commands.ask import AskCommand, AskError, parse_ask_command
from app.bot.commands.audit import AuditCommand, CommandError, parse_audit_command
from app.bot.commands.pr import PrCommand, PrCommandError, parse_pr_command
from app.bot.pulls.fixpr import BRANCH_PREFIX
from app.bot.replies.checkrun import (
    CHECK_NAME,
    command_error_comment,
    queued_comment,
    refusal_comment,
)
from app.bot.replies.pr import command_error_reply, command_refusal_reply, queued_reply
from app.bot.repo_config import CONFIG_PATH
from app.engine import markdown as md
from app.flows import feedback
from app.flows.feedback import BotPull, FeedbackDeps, bot_pull, record_feedback
from app.flows.requests import AuditRequest, Memo

__all__ = ["DISPATCH_EVENT_TYPE", "DeliveryDeps", "Lifecycle", "handle"]

log = structlog.get_logger(__name__)

DISPATCH_EVENT_TYPE = "db-architect-audit"
WRITE_ROLES = frozenset({"admin", "maintain", "write"})
_MEMO_TTL_S = 7 * 24 * 3600


class Lifecycle(Protocol):
    """The store's side of installations: onboard, pause, purge."""

    async def upsert_installation(self, installation_id: int, account: str) -> None: ...
    async def suspend_installation(self, installation_id: int, suspended: bool) -> None: ...
    async def purge_installation(self, installation_id: int) -> None: ...
    async def add_repositories(
        self, installation_id: int, repos: list[tuple[int, str]]
    ) -> None: ...
    async def remove_repositories(self, installation_id: int, repo_ids: list[int]) -> None: ...
    async def is_paused(self, installation_id: int) -> bool: ...


@dataclass(slots=True)
class DeliveryDeps:
    """What handling a delivery talks to; the worker builds it per job."""

    bot_login: str
    github: Callable[[RepoRef], Awaitable[tuple[RepoReader, Effects]]]
    enqueue_audit: Callable[[AuditRequest], Awaitable[bool]]
    memo: Memo
    lifecycle: Lifecycle | None = None
    #: Reviewer memory; None without a store (feedback is then not kept, commands refused).
    feedback: FeedbackDeps | None = None
    #: Answers an `/ask` (``app.flows.ask.answer`` bound to its deps); None: not offered.
    ask: Callable[[RepoReader, AskCommand], Awaitable[str]] | None = None

    @property
    def slug(self) -> str:
        """The App's slug, as people mention it (``db-architect``)."""
        return self.bot_login.removesuffix("[bot]")


async def handle(job: Mapping[str, Any], deps: DeliveryDeps) -> str:
    """Do what the delivery asks and return a short outcome for the inbox and the logs."""
    event, action = job["event"], job.get("action")
    payload: Mapping[str, Any] = job.get("payload") or {}
    installation_id = job.get("installation_id")
    if event in ("installation", "installation_repositories"):
        return await _lifecycle(event, action, payload, deps)
    if installation_id is None or not job.get("repository"):
        return "ignored: no installation or repository"
    if deps.lifecycle is not None and await deps.lifecycle.is_paused(int(installation_id)):
        return "ignored: installation suspended"
    owner, name = str(job["repository"]).split("/", 1)
    repo = RepoRef(int(installation_id), owner, name)
    sender = payload.get("sender") or {}
    if sender.get("login") == deps.bot_login:
        return "ignored: our own event"
    if event == "issue_comment":
        if (payload.get("issue") or {}).get("pull_request") is not None:
            return await _pull_comment(job, payload, repo, deps)
        return await _comment(job, payload, repo, deps)
    if event == "pull_request_review" and action == "submitted":
        return await _review(payload, repo, deps)
    if event == "pull_request_review_comment" and action == "created":
        return await _review_comment(payload, repo, deps)
    if event == "repository_dispatch":
        return await _dispatch(job, payload, repo, deps)
    if event == "check_run":
        return await _check_run(job, payload, repo, deps)
    if event == "pull_request" and action == "closed":
        return await _closed(job, payload, repo, deps)
    return f"ignored: {event}.{action}"


# ---------------------------------------------------------------------- triggers


async def _comment(
    job: Mapping[str, Any], payload: Mapping[str, Any], repo: RepoRef, deps: DeliveryDeps
) -> str:
    issue = payload.get("issue") or {}
    comment = payload.get("comment") or {}
    sender = payload.get("sender") or {}
    if sender.get("type") != "User":
        return "ignored: commands come from people"
    asked = _parse_ask(str(comment.get("body") or ""))
    if asked is not None:
        return await _ask(job, payload, repo, deps, asked)
    problem: CommandError | None = None
    try:
        command = parse_audit_command(str(comment.get("body") or ""))
    except CommandError as err:
        command, problem = AuditCommand(), err
    if command is None:
        return "ignored: no command"
    reader, effects = await deps.github(repo)
    login = str(sender.get("login"))
    await effects.react(int(comment["id"]), "eyes")
    permission = await reader.permission(login)
    number = int(issue["number"])
    if permission not in WRITE_ROLES:
        await _reply_once(deps, effects, job, number, refusal_comment(login, permission))
        return f"refused: {login} has {permission} access"
    if problem is not None:
        await _reply_once(deps, effects, job, number, command_error_comment(login, problem))
        return "refused: bad command"
    comment_id = await _reply_once(deps, effects, job, number, queued_comment(login, command))
    request = _request(
        job,
        repo,
        "comment",
        login,
        dry_run=command.dry_run,
        tables=command.tables,
        min_confidence=command.min_confidence,
        issue_number=number,
        comment_id=comment_id,
    )
    return await _queue_audit(deps, repo, request)


def _parse_ask(body: str) -> AskCommand | AskError | None:
    try:
        return parse_ask_command(body)
    except AskError as err:
        return err


async def _ask(
    job: Mapping[str, Any],
    payload: Mapping[str, Any],
    repo: RepoRef,
    deps: DeliveryDeps,
    asked: AskCommand | AskError,
) -> str:
    """`/ask`: people with write access, private repositories only (answers hold data)."""
    issue, comment = payload.get("issue") or {}, payload.get("comment") or {}
    reader, effects = await deps.github(repo)
    login = str(_sender(payload))
    number = int(issue["number"])
    await effects.react(int(comment["id"]), "eyes")
    permission = await reader.permission(login)
    if permission not in WRITE_ROLES:
        await _reply_once(deps, effects, job, number, _ask_refusal(login, permission))
        return f"refused: {login} has {permission} access"
    if isinstance(asked, AskError):
        await _reply_once(deps, effects, job, number, f"@{login}, {asked}")
        return "refused: bad /ask"
    if (payload.get("repository") or {}).get("private") is not True:
        await _reply_once(deps, effects, job, number, _ASK_PUBLIC.format(login=login))
        return "refused: /ask in a public repository"
    if deps.ask is None:
        return "refused: /ask is not available"
    text = await deps.ask(reader, asked)
    await _reply_once(deps, effects, job, number, f"@{login}\n\n{text}")
    return "answered /ask"


def _ask_refusal(login: str, permission: str) -> str:
    held = "no access" if permission in ("", "none") else f"`{permission}` access"
    return (
        f"@{login}, only people with write access to this repository can use `/ask` (its "
        f"answers come from the database); you have {held}."
    )


_ASK_PUBLIC = (
    "@{login}, `/ask` answers with rows from the database, and this repository is public, so "
    "DB Architect does not answer here. Ask in a private repository that uses the same target."
)


def _request(
    job: Mapping[str, Any], repo: RepoRef, trigger: str, requested_by: str | None, **options: Any
) -> AuditRequest:
    """The audit this delivery asks for; the delivery id makes it unique (and its job id)."""
    return AuditRequest(
        installation_id=repo.installation_id,
        owner=repo.owner,
        name=repo.name,
        trigger=trigger,
        trigger_key=str(job["delivery_id"]),
        requested_by=requested_by,
        **options,
    )


def _sender(payload: Mapping[str, Any]) -> str | None:
    login = (payload.get("sender") or {}).get("login")
    return str(login) if login else None


async def _queue_audit(deps: DeliveryDeps, repo: RepoRef, request: AuditRequest) -> str:
    """Show a queued check run on the default branch's head, then enqueue the audit.

    The check run is created first and remembered under the request's key, so the audit job
    (which may start at once) moves that run forward instead of creating a second one.
    """
    if await deps.memo.get(request.check_run_key) is None:
        reader, effects = await deps.github(repo)
        info = await reader.repo_info()
        check_id = await effects.check_run(
            info.head_sha,
            name=CHECK_NAME,
            status="queued",
            output=CheckOutput("Audit queued", _queued_summary(request)),
            external_id=request.trigger_key,
        )
        await deps.memo.set(request.check_run_key, str(check_id), _MEMO_TTL_S)
    return "audit queued" if await deps.enqueue_audit(request) else "audit already queued"


def _queued_summary(request: AuditRequest) -> str:
    who = f" by {md.text('@' + request.requested_by, 60)}" if request.requested_by else ""
    return (
        f"An audit was requested{who} ({md.text(request.trigger, 40)}) and waits for a worker. "
        "Audits of one repository run one at a time."
    )


async def _reply_once(
    deps: DeliveryDeps, effects: Effects, job: Mapping[str, Any], number: int, body: str
) -> int:
    """One reply per delivery, even when the job runs twice."""
    key = f"dbarch:reply:{job['delivery_id']}"
    known = await deps.memo.get(key)
    comment_id = await effects.comment(number, body, comment_id=int(known) if known else None)
    if not known:
        await deps.memo.set(key, str(comment_id), _MEMO_TTL_S)
    return comment_id


async def _dispatch(
    job: Mapping[str, Any], payload: Mapping[str, Any], repo: RepoRef, deps: DeliveryDeps
) -> str:
    if job.get("action") != DISPATCH_EVENT_TYPE:
        return f"ignored: event_type {job.get('action')!r}"
    try:
        tables, dry_run, min_confidence = _dispatch_options(payload.get("client_payload"))
    except ValueError as err:
        log.warning("dispatch_refused", problem=str(err))
        return f"refused: client_payload {err}"
    request = _request(
        job,
        repo,
        "dispatch",
        _sender(payload),
        dry_run=dry_run,
        tables=tables,
        min_confidence=min_confidence,
    )
    return await _queue_audit(deps, repo, request)


def _dispatch_options(options: object) -> tuple[tuple[str, ...], bool | None, float | None]:
    """``tables`` (list or comma-separated), ``dry_run`` and ``min_confidence`` (≥ 0.8)."""
    if options in (None, ""):
        return (), None, None
    if not isinstance(options, dict):
        raise ValueError("must be an object")
    tables = options.get("tables") or ()
    if isinstance(tables, str):
        tables = [t.strip() for t in tables.split(",") if t.strip()]
    if not isinstance(tables, list | tuple) or not all(isinstance(t, str) for t in tables):
        raise ValueError("`tables` must be a list of names or a comma-separated string")
    dry_run = options.get("dry_run")
    if dry_run is not None and not isinstance(dry_run, bool):
        raise ValueError("`dry_run` must be true or false")
    bar = options.get("min_confidence")
    if bar is not None and (
        isinstance(bar, bool) or not isinstance(bar, int | float) or not 0.8 <= bar <= 1
    ):
        raise ValueError("`min_confidence` must be a number from 0.8 to 1")
    return tuple(tables), dry_run, None if bar is None else float(bar)


async def _check_run(
    job: Mapping[str, Any], payload: Mapping[str, Any], repo: RepoRef, deps: DeliveryDeps
) -> str:
    check = payload.get("check_run") or {}
    if (check.get("app") or {}).get("slug") not in (None, deps.bot_login.removesuffix("[bot]")):
        return "ignored: another app's check run"
    dry_run: bool | None = None
    if job.get("action") == "requested_action":
        identifier = (payload.get("requested_action") or {}).get("identifier")
        if identifier not in ("open_prs", "dry_run"):
            return f"ignored: unknown button {identifier!r}"
        dry_run = identifier == "dry_run"
        login = str((payload.get("sender") or {}).get("login"))
        reader, _ = await deps.github(repo)
        if identifier == "open_prs" and await reader.permission(login) not in WRITE_ROLES:
            return f"refused: {login} may not open pull requests"
    request = _request(job, repo, "check_run", _sender(payload), dry_run=dry_run)
    return await _queue_audit(deps, repo, request)


async def _closed(
    job: Mapping[str, Any], payload: Mapping[str, Any], repo: RepoRef, deps: DeliveryDeps
) -> str:
    """Delete our branch when its PR closes; a close without merge is remembered as "ignored"."""
    pull = payload.get("pull_request") or {}
    branch = str((pull.get("head") or {}).get("ref") or "")
    author = (pull.get("user") or {}).get("login")
    if not branch.startswith(BRANCH_PREFIX) or author != deps.bot_login:
        return "ignored: not our pull request"
    _, effects = await deps.github(repo)
    await effects.delete_branch(branch)
    merged = bool(pull.get("merged"))
    remembered = await _remember_close(payload, repo, deps, merged)
    if merged:
        return f"merged: deleted {branch}{remembered}"
    await _reply_once(deps, effects, job, int(pull["number"]), _IGNORE_NOTICE)
    return (
        f"closed unmerged: deleted {branch}; ignored until the recommendation changes{remembered}"
    )


async def _remember_close(
    payload: Mapping[str, Any], repo: RepoRef, deps: DeliveryDeps, merged: bool
) -> str:
    """A merge accepts the recommendation and a close rejects it: both go into memory."""
    pull = bot_pull(payload.get("pull_request"), deps.bot_login)
    if deps.feedback is None or pull is None:
        return ""
    if pull.fingerprint:
        state = "merged" if merged else "ignored"
        await deps.feedback.memory.set_state(repo.full_name, pull.fingerprint, state, pull.number)
    outcome = await record_feedback(
        deps.feedback,
        repo.full_name,
        pull,
        source="merge" if merged else "close",
        source_id=f"pull:{pull.number}",
        author=_sender(payload),
        merged=merged,
    )
    return f"; {outcome}"


_IGNORE_NOTICE = (
    "### DB Architect ignore notification\n\n"
    "Because this pull request was closed without merging, DB Architect will not propose "
    "this change again unless the recommendation itself changes (other columns, another "
    "table, a different index). Its branch was deleted; to get the change back, restore the "
    "branch (the button above) and reopen this pull request.\n\n"
    f"To silence a whole table or rule, use `ignore` in `{CONFIG_PATH}`."
)


# ---------------------------------------------------------------------- our pull requests


def _from_person(payload: Mapping[str, Any]) -> bool:
    return (payload.get("sender") or {}).get("type") == "User"


#: Whose words count as feedback: people of the repository, not drive-by commenters (on a
#: public repository anyone can comment, and memory would let them sway later audits).
MEMBERS = frozenset({"OWNER", "MEMBER", "COLLABORATOR"})


def _from_member(item: Mapping[str, Any]) -> bool:
    return str(item.get("author_association") or "") in MEMBERS


def _unheard(
    pull: BotPull | None, deps: DeliveryDeps, payload: Mapping[str, Any], item: Mapping[str, Any]
) -> str | None:
    """Why a review or comment is not feedback, or None when it is."""
    if pull is None:
        return "ignored: not our pull request"
    if deps.feedback is None:
        return "ignored: no store for feedback"
    if not _from_person(payload):
        return "ignored: feedback counts from people"
    if not _from_member(item):
        return "ignored: feedback counts from the repository's members"
    return None


async def _review(payload: Mapping[str, Any], repo: RepoRef, deps: DeliveryDeps) -> str:
    """A submitted review on our PR: approved, changes requested, or commented."""
    pull = bot_pull(payload.get("pull_request"), deps.bot_login)
    review = payload.get("review") or {}
    unheard = _unheard(pull, deps, payload, review)
    if unheard or pull is None or deps.feedback is None:
        return unheard or "ignored"
    state = str(review.get("state") or "").lower()
    text = str(review.get("body") or "")
    if state == "commented" and not text.strip():
        # GitHub wraps every lone review comment in an empty "commented" review: the comment
        # itself arrives as pull_request_review_comment.
        return "ignored: empty review"
    return await record_feedback(
        deps.feedback,
        repo.full_name,
        pull,
        source="review",
        source_id=f"review:{review.get('id')}",
        author=_sender(payload),
        text=text,
        review_state=state,
    )


async def _review_comment(payload: Mapping[str, Any], repo: RepoRef, deps: DeliveryDeps) -> str:
    """A comment on the migration's lines of our PR."""
    pull = bot_pull(payload.get("pull_request"), deps.bot_login)
    comment = payload.get("comment") or {}
    unheard = _unheard(pull, deps, payload, comment)
    if unheard or pull is None or deps.feedback is None:
        return unheard or "ignored"
    return await record_feedback(
        deps.feedback,
        repo.full_name,
        pull,
        source="review_comment",
        source_id=f"review_comment:{comment.get('id')}",
        author=_sender(payload),
        text=str(comment.get("body") or ""),
    )


async def _pull_comment(
    job: Mapping[str, Any], payload: Mapping[str, Any], repo: RepoRef, deps: DeliveryDeps
) -> str:
    """A comment in our PR's conversation: a command, or feedback."""
    pull = bot_pull(payload.get("issue"), deps.bot_login)
    comment = payload.get("comment") or {}
    if pull is None:
        return "ignored: comment on a pull request that is not ours"
    if not _from_person(payload):
        return "ignored: commands come from people"
    body = str(comment.get("body") or "")
    problem: PrCommandError | None = None
    try:
        command = parse_pr_command(body, deps.slug)
    except PrCommandError as err:
        command, problem = None, err
    if command is None and problem is None:
        if deps.feedback is None:
            return "ignored: no store for feedback"
        if not _from_member(comment):
            return "ignored: feedback counts from the repository's members"
        return await record_feedback(
            deps.feedback,
            repo.full_name,
            pull,
            source="comment",
            source_id=f"comment:{comment.get('id')}",
            author=_sender(payload),
            text=body,
        )
    reader, effects = await deps.github(repo)
    login = str(_sender(payload))
    await effects.react(int(comment["id"]), "eyes")
    if command is not None and command.verb == "explain":
        if deps.feedback is None:
            await _reply_once(deps, effects, job, pull.number, _no_store_reply(login))
            return "refused: no store"
        text = await feedback.explain(deps.feedback, deps.memo, repo.full_name, pull, login=login)
        await _reply_once(deps, effects, job, pull.number, text)
        return "explained"
    permission = await reader.permission(login)
    if permission not in WRITE_ROLES:
        reply = command_refusal_reply(login, permission, deps.slug)
        await _reply_once(deps, effects, job, pull.number, reply)
        return f"refused: {login} has {permission} access"
    if command is None:
        if problem is not None:
            reply = command_error_reply(login, problem, deps.slug)
            await _reply_once(deps, effects, job, pull.number, reply)
        return "refused: bad command"
    if command.verb in ("ignore", "ignore_table"):
        return await _ignore(job, repo, deps, pull, command, login, int(comment["id"]))
    return await _reaudit(job, repo, deps, effects, pull, command.verb, login)


async def _ignore(
    job: Mapping[str, Any],
    repo: RepoRef,
    deps: DeliveryDeps,
    pull: BotPull,
    command: PrCommand,
    login: str,
    comment_id: int,
) -> str:
    """``ignore`` / ``ignore table``: remember, close the PR if it is covered, answer."""
    reader, effects = await deps.github(repo)
    if deps.feedback is None:
        await _reply_once(deps, effects, job, pull.number, _no_store_reply(login))
        return "refused: no store"
    if pull.branch is None:  # the issue side of a PR does not name its branch
        found = await reader.pull(pull.number)
        if found is not None and found.head_ref.startswith(BRANCH_PREFIX):
            pull = replace(pull, branch=found.head_ref)
    text = await feedback.ignore(
        deps.feedback,
        effects,
        repo.full_name,
        pull,
        command,
        login=login,
        source_id=f"command:{comment_id}",
    )
    await _reply_once(deps, effects, job, pull.number, text)
    return f"{command.verb}: done"


def _no_store_reply(login: str) -> str:
    return (
        f"{md.mention(login)}, this DB Architect runs without its store (DBARCH_STORE_DSN), so "
        "it cannot remember ignores or explain its history. The operator can configure one."
    )


async def _reaudit(
    job: Mapping[str, Any],
    repo: RepoRef,
    deps: DeliveryDeps,
    effects: Effects,
    pull: BotPull,
    verb: str,
    login: str,
) -> str:
    """``recheck`` / ``recreate``: audit the PR's table again; the audit edits our reply."""
    if pull.table is None:
        return "refused: the pull request has no DB Architect marker"
    reply = await _reply_once(
        deps, effects, job, pull.number, queued_reply(login, verb, pull.table)
    )
    request = _request(
        job,
        repo,
        "command",
        login,
        tables=(pull.table,),
        issue_number=pull.number,
        comment_id=reply,
        force_fingerprint=pull.fingerprint if verb == "recreate" else None,
        extra={"verb": verb},
    )
    return await _queue_audit(deps, repo, request)


# ---------------------------------------------------------------------- lifecycle


async def _lifecycle(
    event: str, action: str | None, payload: Mapping[str, Any], deps: DeliveryDeps
) -> str:
    installation = payload.get("installation") or {}
    installation_id = installation.get("id")
    store = deps.lifecycle
    if installation_id is None or store is None:
        return "ignored: no installation or no store"
    iid = int(installation_id)
    account = str((installation.get("account") or {}).get("login") or "")
    if event == "installation":
        if action == "deleted":
            await store.purge_installation(iid)
            return "purged"
        if action in ("suspend", "unsuspend"):
            await store.suspend_installation(iid, action == "suspend")
            return "paused" if action == "suspend" else "resumed"
        await store.upsert_installation(iid, account)
        repos = _repos(payload.get("repositories"))
        if repos:
            await store.add_repositories(iid, repos)
        return f"onboarded {len(repos)} repositories"
    await store.upsert_installation(iid, account)
    if action == "added":
        added = _repos(payload.get("repositories_added"))
        await store.add_repositories(iid, added)
        return f"added {len(added)} repositories"
    removed = [rid for rid, _ in _repos(payload.get("repositories_removed"))]
    await store.remove_repositories(iid, removed)
    return f"removed {len(removed)} repositories"


def _repos(items: object) -> list[tuple[int, str]]:
    if not isinstance(items, list):
        return []
    return [
        (int(r["id"]), str(r["full_name"]))
        for r in items
        if isinstance(r, dict) and "id" in r and "full_name" in r
    ]
