"""The admin API under ``/api``: audits, the recommendation ledger, feedback, memory; start audits.

Every route needs ``Authorization: Bearer <DBARCH_ADMIN_TOKEN>`` (``app.web.auth.api_guard``).
Lists are keyset-paginated: pass a page's ``next_before`` as ``before`` for the next one.
Every error is ``{"error": "...", "field": ...}`` (``field`` names the refused value on 400):
400 bad value, 401 wrong token, 403 API off (no token configured), 404 unknown, 503 the store
or Redis is unreachable (try again).

Wiring (``app.web.asgi.create_app``): ``api_router`` in ``route_handlers`` and
:data:`API_COMPONENTS` in ``OpenAPIConfig(components=...)`` (the bearer scheme).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Annotated, Any

import psycopg
import structlog
from litestar import Request, Response, Router, get, post
from litestar.exceptions import (
    HTTPException,
    NotFoundException,
    ServiceUnavailableException,
    ValidationException,
)
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Components, SecurityScheme
from litestar.params import JSONBody, PathParameter, QueryParameter

from app.adapters.history import History
from app.adapters.queue import audit_job_id
from app.flows.requests import AuditRequest
from app.web.api_models import (
    PAGE_MAX,
    REPOSITORY_PATTERN,
    ApiError,
    AuditPage,
    AuditQueued,
    AuditStart,
    AuditView,
    FeedbackPage,
    LedgerState,
    MemoryView,
    RecommendationPage,
    audit_view,
    page,
    start_problem,
    validation_problem,
)
from app.web.auth import api_guard
from app.web.state import QueueUnavailable, WebState, web_state

__all__ = ["API_COMPONENTS", "LOCAL_INSTALLATION_ID", "SECURITY_SCHEME", "api_router"]

log = structlog.get_logger(__name__)

#: The OpenAPI name of the bearer scheme the routes require.
SECURITY_SCHEME = "bearer"
#: For ``OpenAPIConfig(components=...)``: declares :data:`SECURITY_SCHEME`.
API_COMPONENTS = Components(
    security_schemes={
        SECURITY_SCHEME: SecurityScheme(
            type="http",
            scheme="bearer",
            description="The operator's admin token: `Authorization: Bearer "
            "<DBARCH_ADMIN_TOKEN>` (`dbarchitect run` writes one to <data dir>/admin-token).",
        )
    }
)
#: Without App credentials every audit is a dry run; ``dbarchitect deliver`` uses this id too.
LOCAL_INSTALLATION_ID = 1
#: Who the audits this API starts are recorded as requested by.
REQUESTED_BY = "admin-api"

STORE_DOWN = "the store (PostgreSQL) is not reachable; try again"
QUEUE_DOWN = "the queue (Redis) is not reachable; try again"

_ERRORS = {
    400: "A value is not valid; `field` names it.",
    401: "The admin token is missing or wrong.",
    403: "The admin API is off: DBARCH_ADMIN_TOKEN is not set.",
    404: "Not found.",
    503: "The store or Redis is not reachable; try again.",
}


def _errors(*codes: int) -> dict[int, ResponseSpec]:
    return {
        code: ResponseSpec(ApiError, description=_ERRORS[code], generate_examples=False)
        for code in (400, 401, 403, *codes, 503)
    }


Limit = Annotated[
    int, QueryParameter(ge=1, le=PAGE_MAX, description=f"Items per page (1 to {PAGE_MAX}).")
]
Before = Annotated[
    int | None,
    QueryParameter(ge=1, description="The previous page's `next_before`: items with smaller ids."),
]
RepositoryFilter = Annotated[
    str | None,
    QueryParameter(pattern=REPOSITORY_PATTERN, description="Only this repository (`owner/name`)."),
]


@contextlib.contextmanager
def _services() -> Iterator[None]:
    """An unreachable store or Redis becomes a 503 that says which (logged once, no trace)."""
    try:
        yield
    except psycopg.OperationalError as err:  # PoolTimeout included
        log.warning("api.store_unreachable", error=type(err).__name__)
        raise ServiceUnavailableException(STORE_DOWN) from err
    except QueueUnavailable as err:
        log.warning("api.queue_unreachable", error=str(err))
        raise ServiceUnavailableException(QUEUE_DOWN) from err


def _history(request: Request[Any, Any, Any]) -> History:
    return History(web_state(request.app).store)


@get(
    "/audits",
    summary="List audits",
    description="Audits newest first (running ones included), with their duration and outcome.",
    responses=_errors(),
)
async def list_audits(
    request: Request[Any, Any, Any],
    limit: Limit = 50,
    before: Before = None,
    repository: RepositoryFilter = None,
) -> AuditPage:
    """``GET /api/audits``."""
    with _services():
        rows = await _history(request).audits(limit=limit + 1, before=before, repository=repository)
    audits, next_before = page(rows, limit)
    return AuditPage(audits=audits, next_before=next_before)


@get(
    "/audits/{audit_id:int}",
    summary="One audit",
    description="The audit, what happened to each recommendation, and each one's evidence: "
    "confidence breakdown, reviewer memory, validation, and the statements measured before "
    "and after.",
    responses=_errors(404),
)
async def get_audit(
    request: Request[Any, Any, Any],
    audit_id: Annotated[int, PathParameter(description="The audit's id.")],
) -> AuditView:
    """``GET /api/audits/{audit_id}``."""
    with _services():
        detail = await _history(request).audit(audit_id)
    if detail is None:
        raise NotFoundException(f"there is no audit {audit_id}: GET /api/audits lists them")
    return audit_view(detail)


@get(
    "/recommendations",
    summary="The recommendation ledger",
    description="Every recommendation made per repository and where it stands (proposed, "
    "pr_open, merged, ignored, superseded), most recently recorded first.",
    responses=_errors(),
)
async def list_recommendations(
    request: Request[Any, Any, Any],
    limit: Limit = 50,
    before: Before = None,
    repository: RepositoryFilter = None,
    ledger_state: Annotated[
        LedgerState | None, QueryParameter(name="state", description="Only this state.")
    ] = None,
) -> RecommendationPage:
    """``GET /api/recommendations``."""
    with _services():
        rows = await _history(request).recommendations(
            repository=repository, state=ledger_state, limit=limit + 1, before=before
        )
    items, next_before = page(rows, limit)
    return RecommendationPage(recommendations=items, next_before=next_before)


@get(
    "/feedback",
    summary="Reviewer feedback",
    description="What reviewers said on DB Architect's pull requests, as memory keeps it, "
    "newest first (bodies cut to 500 characters).",
    responses=_errors(),
)
async def list_feedback(
    request: Request[Any, Any, Any],
    limit: Limit = 50,
    before: Before = None,
    repository: RepositoryFilter = None,
) -> FeedbackPage:
    """``GET /api/feedback``."""
    with _services():
        rows = await _history(request).feedback(
            repository=repository, limit=limit + 1, before=before
        )
    items, next_before = page(rows, limit)
    return FeedbackPage(feedback=items, next_before=next_before)


@get(
    "/memory",
    summary="What memory has learned",
    description="Feedback counted by verdict with the latest reasons, and explicit ignores.",
    responses=_errors(),
)
async def get_memory(
    request: Request[Any, Any, Any], repository: RepositoryFilter = None
) -> MemoryView:
    """``GET /api/memory``."""
    history = _history(request)
    with _services():
        learned = await history.learned(repository=repository)
        ignores = await history.ignores(repository=repository)
    return MemoryView(learned=learned, ignores=ignores)


@post(
    "/audits",
    status_code=202,
    summary="Start an audit",
    description="Queue an audit of one repository (trigger `api`). Without GitHub App "
    "credentials every audit is a dry run and any repository is accepted; with them, the "
    "App must be installed on the repository.",
    responses=_errors(404),
)
async def start_audit(request: Request[Any, Any, Any], data: JSONBody[AuditStart]) -> AuditQueued:
    """``POST /api/audits``."""
    problem = start_problem(data)
    if problem is not None:
        field, message = problem
        raise ValidationException(extra=[{"key": field, "message": message, "source": "body"}])
    web = web_state(request.app)
    installation_id = await _installation(web, data.repository)
    owner, name = data.repository.split("/", 1)
    audit = AuditRequest(
        installation_id=installation_id,
        owner=owner,
        name=name,
        trigger="api",
        trigger_key=f"api:{uuid.uuid4()}",
        requested_by=REQUESTED_BY,
        dry_run=data.dry_run,
        tables=tuple(dict.fromkeys(data.tables)),
        min_confidence=data.min_confidence,
    )
    with _services():
        created = await web.queue.enqueue_audit(audit)
    job_id = audit_job_id(audit.full_name, audit.trigger_key)
    log.info(
        "api.audit_queued",
        repository=audit.full_name,
        job_id=job_id,
        tables=len(audit.tables),
        dry_run=audit.dry_run,
    )
    return AuditQueued(
        status="queued" if created else "already_queued",
        job_id=job_id,
        trigger_key=audit.trigger_key,
        repository=audit.full_name,
        installation_id=installation_id,
    )


async def _installation(web: WebState, repository: str) -> int:
    """The repository's installation; any repository in local (credential-less) mode."""
    if not web.settings.has_app_credentials:
        return LOCAL_INSTALLATION_ID
    with _services():
        installation_id = await web.store.installation_of(repository)
    if installation_id is None:
        raise NotFoundException(
            f"the GitHub App is not installed on {repository} (or the repository was removed "
            "from its installation): install it there, or check the name's spelling "
            "(`owner/name` as GitHub spells it)"
        )
    return installation_id


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[ApiError]:
    """Litestar's and our HTTP errors as ``{"error": ..., "field": ...}``."""
    headers = dict(exc.headers or {})
    if isinstance(exc, ValidationException):
        field, message = validation_problem(exc.extra)
        return Response(ApiError(message, field or None), status_code=400, headers=headers)
    if exc.status_code == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="db-architect"')
    return Response(ApiError(exc.detail), status_code=exc.status_code, headers=headers)


def _internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[ApiError]:
    """Anything else: a 500 that says where to look (the app's hook logged it)."""
    return Response(
        ApiError("internal error (logged by the web process as web.unhandled)"), status_code=500
    )


api_router = Router(
    path="/api",
    guards=[api_guard],
    route_handlers=[
        list_audits,
        get_audit,
        start_audit,
        list_recommendations,
        list_feedback,
        get_memory,
    ],
    tags=["admin"],
    security=[{SECURITY_SCHEME: []}],
    exception_handlers={HTTPException: _http_error, Exception: _internal_error},
)
