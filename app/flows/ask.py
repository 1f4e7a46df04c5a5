"""Answer `/ask`: SQL from the asker or Claude, proven read-only by the guard, run read-only."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

import structlog

from app.adapters.errors import TargetError, TargetUnavailable
from app.adapters.github.repo import RepoReader
from app.adapters.llm import ClaudeDeclined, ClaudeUnavailable
from app.adapters.target_pg.ask import Answer, run_select
from app.adapters.target_pg.target import Target
from app.adapters.yaml_config import load_config
from app.bot.commands.ask import AskCommand
from app.bot.replies.ask import answer_markdown, problem_markdown, refusal_markdown
from app.bot.repo_config import CONFIG_PATH, ConfigError
from app.engine.guard import UnsafeSql, allowed_from, check_select, schema_text
from app.engine.model import Snapshot
from app.flows.targets import TargetProblem, resolve_target
from app.settings import Settings

__all__ = ["ROW_CAP", "AskDeps", "SqlDrafter", "answer"]

log = structlog.get_logger(__name__)

#: Rows shown in the answer; the query is capped one above to say "there were more".
ROW_CAP = 50
#: The asked query's own statement timeout on the target.
QUERY_TIMEOUT_MS = 5_000
#: Everything `/ask` does (snapshot, Claude, the query) ends within this.
ASK_DEADLINE_S = 120.0
_FENCE_HINT = (
    "write the SQL yourself: `/ask` on one line, then a fenced code block "
    "(```` ```sql ````) holding one SELECT"
)


class SqlDrafter(Protocol):
    """Claude's side of `/ask` (``app.adapters.llm.Claude.draft_sql``)."""

    async def draft_sql(self, question: str, schema: str) -> str: ...


@dataclass(slots=True)
class AskDeps:
    """What answering needs: the operator's targets, and Claude when configured."""

    settings: Settings
    drafter: SqlDrafter | None = None


_problem = problem_markdown


async def answer(deps: AskDeps, reader: RepoReader, command: AskCommand) -> str:
    """The comment that answers ``command``: a table, or what went wrong and what to do.

    Only the target's schema (names and types) ever reaches Claude; the rows go only to
    the comment. Nothing here raises for the asker's mistakes or the target's state.
    """
    try:
        async with asyncio.timeout(ASK_DEADLINE_S):
            return await _answer(deps, reader, command)
    except TimeoutError:
        return _problem(
            command.question,
            f"answering took longer than {ASK_DEADLINE_S:.0f} s",
            "ask a narrower question, or try again later",
        )


async def _answer(deps: AskDeps, reader: RepoReader, command: AskCommand) -> str:
    info = await reader.repo_info()
    text = await reader.file_text(CONFIG_PATH, info.default_branch)
    if text is None:
        return _problem(
            command.question,
            f"this repository has no `{CONFIG_PATH}`, so there is no target to ask",
            "add one that names the target (see docs/repo-config.md)",
        )
    try:
        resolved = resolve_target(load_config(text), deps.settings.targets)
    except ConfigError as err:
        return _problem(command.question, f"`{CONFIG_PATH}` is broken: {err}", "fix it first")
    except TargetProblem as err:
        return _problem(command.question, err.problem, err.what_to_do)
    if not deps.settings.targets[resolved.name].allow_ask:
        return _problem(
            command.question,
            f"the operator has not allowed `/ask` on target `{resolved.name}`: its answers "
            "are rows of that database",
            f'the operator can set `"allow_ask": true` for `{resolved.name}` in DBARCH_TARGETS',
        )
    try:
        snapshot = await asyncio.to_thread(_snapshot, resolved.dsn)
    except TargetError as err:
        return _target_problem(command.question, resolved.name, err)
    sql, drafted_by = command.sql, None
    if sql is None:
        drafted = await _draft(deps, command.question, snapshot)
        if not isinstance(drafted, tuple):
            return drafted
        sql, drafted_by = drafted
    try:
        checked = check_select(sql, allowed_from(snapshot), row_cap=ROW_CAP)
    except UnsafeSql as err:
        log.info("ask_refused", drafted_by=drafted_by, problem=err.problem)
        return refusal_markdown(
            command.question,
            sql,
            err.problem,
            "ask for a single read-only SELECT over the application's tables",
        )
    try:
        result: Answer = await asyncio.to_thread(
            run_select, resolved.dsn, checked, row_cap=ROW_CAP, timeout_ms=QUERY_TIMEOUT_MS
        )
    except TargetError as err:
        return _target_problem(command.question, resolved.name, err)
    log.info("ask_answered", rows=len(result.rows), truncated=result.truncated)
    return answer_markdown(
        command.question,
        sql,
        result.columns,
        result.rows,
        truncated=result.truncated,
        row_cap=ROW_CAP,
        elapsed_ms=result.elapsed_ms,
        drafted_by=drafted_by,
    )


def _snapshot(dsn: str) -> Snapshot:
    with Target.open(dsn, statement_timeout_ms=QUERY_TIMEOUT_MS * 2) as target:
        return target.snapshot()


async def _draft(deps: AskDeps, question: str, snapshot: Snapshot) -> tuple[str, str] | str:
    """Claude's SQL for ``question`` (and who drafted it), or the comment saying why not."""
    if deps.drafter is None:
        return _problem(
            question,
            "turning questions into SQL needs Claude, and this DB Architect has no "
            "Anthropic API key (DBARCH_ANTHROPIC_API_KEY)",
            _FENCE_HINT,
        )
    try:
        return await deps.drafter.draft_sql(question, schema_text(snapshot)), "Claude"
    except ClaudeDeclined as err:
        return _problem(question, f"Claude declined: {err.reason}", _FENCE_HINT)
    except ClaudeUnavailable as err:
        return _problem(question, str(err), _FENCE_HINT)


def _target_problem(question: str, name: str, err: TargetError) -> str:
    if isinstance(err, TargetUnavailable):
        # Connection errors name hosts and users: the operator's log gets them, not the issue.
        log.warning("ask_target_unavailable", target=name, error=str(err))
        return _problem(
            question,
            f"target `{name}` did not accept the connection",
            "the worker's log has the details; try again when the database is up",
        )
    return _problem(question, f"the query failed on `{name}`: {err}", "change the question")
