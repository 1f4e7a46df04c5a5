"""The dashboard's pages under ``/ui``: overview, audits, ledger, memory, and the token login.

Every page but the login needs an admin session (the ``dbarch_session`` cookie, see
:mod:`app.web.sessions`) or the bearer token; ``?token=<admin token>`` on any GET logs in once
and is dropped from the URL. Wrong tokens are throttled (:mod:`app.web.throttle`). Login and
logout are the only forms (POST); no page changes anything on GET, so a SameSite=Lax cookie
needs no CSRF token.
Pages read the store through :class:`~app.adapters.history.History`, a few bounded queries each.
"""
# Long module: five pages share one login and one layout; split them when a sixth comes.

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import psycopg
import structlog
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from litestar import Request, Response, Router, get, post
from litestar.datastructures import ResponseHeader
from litestar.params import FromPath, FromQuery, QueryParameter, URLEncodedBody
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.template.config import TemplateConfig
from markupsafe import Markup

from app.adapters.history import MAX_LIMIT, History
from app.web.auth import (
    ADMIN_COOKIE,
    TooManyAttempts,
    check_token,
    forget_cookie,
    session_cookie,
    sessions_of,
    settings_of,
    ui_authenticated,
)
from app.web.sessions import SessionsUnavailable
from app.web.state import web_state
from app.web.ui import charts, views

__all__ = ["UI_PREFIX", "root_redirect", "template_config", "ui_router"]

log = structlog.get_logger(__name__)

UI_PREFIX = "/ui"
TEMPLATES_DIR = Path(__file__).parent / "templates"
#: The overview counts statuses over this many latest audits (one bounded query).
OVERVIEW_AUDITS = MAX_LIMIT
LATEST_AUDITS = 20
AUDITS_PAGE = 50
LEDGER_PAGE = 100
FEEDBACK_PAGE = 50
CHART_AUDITS, CHART_BARS = 20, 15
_PUBLIC = {"public": True}

# No script runs on these pages; styles are inline; forms post to ourselves only.
_HEADERS = [
    ResponseHeader(
        name="Content-Security-Policy",
        value="default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ResponseHeader(name="Referrer-Policy", value="no-referrer"),
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
    ResponseHeader(name="Cache-Control", value="no-store"),
]


def template_config(github_web: str = "https://github.com") -> TemplateConfig[JinjaTemplateEngine]:
    """Jinja2 over ``app/web/ui/templates`` with autoescaping on (``create_app`` passes it).

    ``github_web`` is where pull-request links point (GitHub Enterprise Server's host).
    """
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        ms=charts.fmt_ms,
        ratio=charts.fmt_ratio,
        duration=views.fmt_duration,
        when=views.fmt_when,
        label=lambda value: str(value).replace("_", " "),
    )
    env.globals.update(
        confidence=_confidence_svg, pull_url=functools.partial(views.pull_url, web=github_web)
    )
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(env))


def _confidence_svg(value: float | None, threshold: float = 0.80) -> Markup:
    return Markup(charts.confidence_bar(value, threshold=threshold))  # noqa: S704 - escaped SVG


def _page(name: str, *, status_code: int = 200, **context: Any) -> Template:
    return Template(template_name=name, context=context, status_code=status_code)


def _history(request: Request[Any, Any, Any]) -> History:
    return History(web_state(request.app).store)


# ---------------------------------------------------------------- the session


def _safe_next(target: str | None) -> str:
    """Where to go after logging in: a dashboard path only (never another site)."""
    home = f"{UI_PREFIX}/"
    if not target or "\\" in target or any(ord(ch) < 0x20 for ch in target):
        return home
    if target == UI_PREFIX or target.startswith((home, f"{UI_PREFIX}?")):
        return target
    return home


def _here(request: Request[Any, Any, Any], *, drop: str | None = None) -> str:
    """This request's path and query string, without the ``drop`` parameter."""
    pairs = [(k, v) for k, v in request.query_params.multi_items() if k != drop]
    raw: bytes = request.scope.get("raw_path") or b""  # as sent: routing drops a trailing /
    path = raw.decode("latin-1") or request.url.path
    return path + (f"?{urlencode(pairs)}" if pairs else "")


async def _logged_in(request: Request[Any, Any, Any], target: str, via: str) -> Response[Any]:
    """Open a session for the operator and go on to ``target`` (503 while Redis is down)."""
    settings = settings_of(request)
    assert settings.admin_token is not None  # noqa: S101 - the right token was just checked
    try:
        session_id = await sessions_of(request.app).open(settings.admin_token.get_secret_value())
    except SessionsUnavailable as err:
        log.warning("ui.login_failed", via=via, reason=str(err))
        return _login_page(target, error=f"Cannot log in now: {err}.", status_code=503)
    log.info("ui.login", via=via)
    return Redirect(target, cookies=[session_cookie(request, session_id)], status_code=303)


def _login_page(
    next_: str,
    *,
    error: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Template:
    return Template(
        template_name="login.html",
        context={"next": next_, "error": error, "nav": None},
        status_code=status_code,
        headers=headers,
    )


def _throttled(target: str, err: TooManyAttempts) -> Template:
    return _login_page(
        target,
        error=f"Too many wrong tokens from your address: wait {err.retry_after} s, then try "
        "again with the token from DBARCH_ADMIN_TOKEN (or <data dir>/admin-token).",
        status_code=429,
        headers={"Retry-After": str(err.retry_after)},
    )


def _unavailable(heading: str, message: str) -> Template:
    """503: Redis, where sessions live, did not answer."""
    return _page("problem.html", status_code=503, nav=None, heading=heading, message=message)


async def _token_login(
    request: Request[Any, Any, Any], presented: str, target: str, via: str
) -> Response[Any]:
    """Check a token from the login form or ``?token=``: a session, 401, or 429."""
    try:
        right = check_token(request, presented)
    except TooManyAttempts as err:
        return _throttled(target, err)
    if not right:
        log.warning("ui.login_refused", via=via)
        return _login_page(target, error="That is not the admin token.", status_code=401)
    return await _logged_in(request, target, via)


async def _gate(request: Request[Any, Any, Any]) -> Response[Any] | None:
    """Runs before every ``/ui`` handler: the dashboard off, ``?token=``, or the session."""
    settings = settings_of(request)
    if settings.admin_token is None:
        return _page("off.html", status_code=403, nav=None)
    if request.method == "GET" and "token" in request.query_params:
        target = _safe_next(_here(request, drop="token"))
        return await _token_login(request, request.query_params.get("token", ""), target, "query")
    if request.route_handler.opt.get("public"):
        return None
    try:
        if await ui_authenticated(request):
            return None
    except TooManyAttempts as err:
        return _throttled(_safe_next(_here(request)), err)
    except SessionsUnavailable as err:
        log.warning("ui.sessions_unavailable", reason=str(err))
        return _unavailable("Sessions are unavailable", f"{err}. Reload once Redis is back.")
    return Redirect(
        f"{UI_PREFIX}/login", query_params={"next": _safe_next(_here(request))}, status_code=303
    )


@get("/login", opt=_PUBLIC)
async def login_form(
    request: Request[Any, Any, Any], next: FromQuery[str | None] = None
) -> Response[Any]:
    """The token form (already logged in: straight on)."""
    try:
        if await ui_authenticated(request):
            return Redirect(_safe_next(next), status_code=303)
    except (TooManyAttempts, SessionsUnavailable):
        pass  # the form itself says nothing about either
    return _login_page(_safe_next(next))


@post("/login", opt=_PUBLIC, status_code=303)
async def login(
    request: Request[Any, Any, Any],
    data: URLEncodedBody[dict[str, str]],
) -> Response[Any]:
    """Check the posted token: a new session and on, 401 with the form again, or 429."""
    target = _safe_next(data.get("next"))
    return await _token_login(request, data.get("token", "").strip(), target, "form")


@post("/logout", opt=_PUBLIC, status_code=303)
async def logout(request: Request[Any, Any, Any]) -> Response[Any]:
    """End the session on the server (its cookie is refused from now on) and in the browser."""
    session_id = request.cookies.get(ADMIN_COOKIE)
    if session_id:
        try:
            await sessions_of(request.app).close(session_id)
        except SessionsUnavailable as err:
            log.warning("ui.logout_failed", reason=str(err))
            return _unavailable(
                "Logout did not reach the server",
                f"{err}. The session still counts until it expires: log out again once Redis "
                "is back, or change DBARCH_ADMIN_TOKEN to end every session.",
            )
        log.info("ui.logout")
    return Redirect(f"{UI_PREFIX}/login", cookies=[forget_cookie(request)], status_code=303)


# ---------------------------------------------------------------- pages


@get("/")
async def overview(
    request: Request[Any, Any, Any], repository: FromQuery[str | None] = None
) -> Template:
    """Counts, the latest audits and the speed-up chart."""
    history = _history(request)
    recent = await history.audits(limit=OVERVIEW_AUDITS, repository=repository)
    open_prs = await history.recommendations(
        state="pr_open", limit=MAX_LIMIT, repository=repository
    )
    learned = await history.learned(repository=repository)
    speedups = await history.speedups(
        repository=repository, audits=CHART_AUDITS, limit=CHART_BARS * 4
    )
    bars = views.speedup_bars(speedups, limit=CHART_BARS)
    return _page(
        "overview.html",
        nav="overview",
        repository=repository,
        statuses=views.status_counts(recent),
        audits_counted=len(recent),
        audits_capped=len(recent) == OVERVIEW_AUDITS,
        open_prs=len(open_prs),
        open_prs_capped=len(open_prs) == MAX_LIMIT,
        memory_size=sum(item.count for item in learned),
        memory_embedded=sum(item.embedded for item in learned),
        audits=recent[:LATEST_AUDITS],
        chart=Markup(charts.speedup_chart(bars)),  # noqa: S704 - escaped SVG
        bars=bars,
    )


@get("/audits")
async def audits_page(
    request: Request[Any, Any, Any],
    before: FromQuery[int | None] = None,
    repository: FromQuery[str | None] = None,
) -> Template:
    """Audit history, newest first, a page at a time."""
    rows = await _history(request).audits(limit=AUDITS_PAGE, before=before, repository=repository)
    older = rows[-1].id if len(rows) == AUDITS_PAGE else None
    return _page("audits.html", nav="audits", audits=rows, older=older, repository=repository)


@get("/audits/{audit_id:int}")
async def audit_page(request: Request[Any, Any, Any], audit_id: FromPath[int]) -> Template:
    """One audit: each recommendation with its confidence, evidence and result."""
    detail = await _history(request).audit(audit_id)
    if detail is None:
        return _page(
            "problem.html",
            status_code=404,
            nav="audits",
            heading="No such audit",
            message=f"There is no audit {audit_id} (it may have been pruned).",
        )
    report = detail.report or {}
    threshold = report.get("min_confidence")
    return _page(
        "audit.html",
        nav="audits",
        audit=detail.audit,
        summary=detail.summary,
        has_report=detail.report is not None,
        recs=views.audit_recommendations(detail.report, detail.summary),
        threshold=threshold if isinstance(threshold, int | float) else 0.80,
        rejected=len(report.get("rejected") or ()),
        skipped=len(report.get("skipped_queries") or ()),
    )


@get("/recommendations")
async def recommendations_page(
    request: Request[Any, Any, Any],
    choice: Annotated[str, QueryParameter(name="state")] = "open",  # `state` is reserved
    before: FromQuery[int | None] = None,
    repository: FromQuery[str | None] = None,
) -> Template:
    """The ledger: open (PR open, proposed) or closed (merged, ignored, superseded)."""
    try:
        states = views.states_for(choice)
    except ValueError as err:
        return _page(
            "problem.html",
            status_code=400,
            nav="recommendations",
            heading="Unknown state",
            message=str(err),
        )
    history = _history(request)
    groups = [
        await history.recommendations(
            state=s, limit=LEDGER_PAGE, before=before, repository=repository
        )
        for s in states
    ]
    rows = views.merge_newest_first(groups, LEDGER_PAGE)
    older = rows[-1].id if len(rows) == LEDGER_PAGE else None
    return _page(
        "recommendations.html",
        nav="recommendations",
        state=choice,
        states=states,
        rows=rows,
        older=older,
        repository=repository,
    )


@get("/memory")
async def memory_page(
    request: Request[Any, Any, Any], repository: FromQuery[str | None] = None
) -> Template:
    """What reviewer memory learned: verdicts with reasons, recent feedback, ignores."""
    history = _history(request)
    return _page(
        "memory.html",
        nav="memory",
        repository=repository,
        learned=await history.learned(repository=repository),
        feedback=await history.feedback(limit=FEEDBACK_PAGE, repository=repository),
        ignores=await history.ignores(repository=repository),
    )


def _store_down(request: Request[Any, Any, Any], exc: psycopg.Error) -> Response[Any]:
    log.error("ui.store_error", path=request.url.path, error=type(exc).__name__)
    return _page("store_down.html", status_code=503, nav=None)


@get("/", include_in_schema=False, sync_to_thread=False)
def root_redirect() -> Redirect:
    """``/`` → the dashboard."""
    return Redirect(f"{UI_PREFIX}/", status_code=302)


def ui_router() -> Router:
    """The ``/ui`` pages (kept out of the OpenAPI schema)."""
    return Router(
        UI_PREFIX,
        route_handlers=[
            login_form,
            login,
            logout,
            overview,
            audits_page,
            audit_page,
            recommendations_page,
            memory_page,
        ],
        before_request=_gate,
        include_in_schema=False,
        response_headers=_HEADERS,
        exception_handlers={psycopg.Error: _store_down},
    )
