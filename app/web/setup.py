"""``GET /setup`` and ``/setup/callback``: register the GitHub App from ``app.yml`` (manifest flow).

While the process has no App credentials, ``/setup`` offers a form that POSTs the manifest to
GitHub (personal account or an organisation) with a one-time ``state``; GitHub creates the App
and returns the browser to ``/setup/callback``, which checks the state, exchanges the code for
the App's id, key and webhook secret, stores them in ``<data_dir>/github-app.json`` (0600,
read by :class:`app.settings.GitHubAppFileSource` at the next start) and shows the install
link. Once credentials exist, both pages only say so: nothing is registered twice, and no
page ever shows a secret.
"""
# Long module: the manifest flow is two requests sharing one state and one page.

from __future__ import annotations

import asyncio
import html
import ipaddress
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlencode, urlsplit

import structlog
from litestar import Litestar, MediaType, Request, Response, get

from app.github_app_file import AppFile, AppFileError, app_file_path, read_app_file
from app.settings import Settings
from app.web.auth import (
    TooManyAttempts,
    check_token,
    session_cookie,
    sessions_of,
    ui_authenticated,
)
from app.web.manifest import (
    CALLBACK_PATH,
    SETUP_PATH,
    ConversionError,
    ManifestError,
    build_manifest,
    convert_code,
    github_web_url,
    load_template,
    registration_url,
    valid_org,
)
from app.web.sessions import SessionsUnavailable
from app.web.state import web_state

__all__ = ["SETUP_HANDLERS", "PendingStates", "setup_callback", "setup_page"]

log = structlog.get_logger(__name__)

STATE_TTL_S = 3600.0
"""A state lives as long as GitHub's code: one hour."""
MAX_PENDING = 256
"""At most this many states are remembered (the oldest go first)."""
_STATE_KEY = "setup_states"


class PendingStates:
    """The ``state`` values ``/setup`` handed out: each is accepted once, within the hour.

    In memory, so one web process (``dbarchitect run``, or one ``serve``) must serve both
    pages; a restart forgets them (the operator opens ``/setup`` again).
    """

    def __init__(
        self,
        *,
        ttl_s: float = STATE_TTL_S,
        max_pending: int = MAX_PENDING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._max = max_pending
        self._clock = clock
        self._issued: dict[str, float] = {}  # state -> when; insertion order is age order
        self.lock = asyncio.Lock()
        """Held while a callback checks, converts and stores: one registration at a time."""

    def issue(self) -> str:
        """A new random state, remembered for ``ttl_s``."""
        self._forget_expired()
        while len(self._issued) >= self._max:
            del self._issued[next(iter(self._issued))]
        state = secrets.token_urlsafe(24)
        self._issued[state] = self._clock()
        return state

    def valid(self, state: str | None) -> bool:
        """Whether ``state`` was issued and has not expired or been taken."""
        self._forget_expired()
        return state is not None and state in self._issued

    def take(self, state: str | None) -> bool:
        """Accept ``state`` once: True the first time within ``ttl_s``, False ever after."""
        self._forget_expired()
        return state is not None and self._issued.pop(state, None) is not None

    def _forget_expired(self) -> None:
        oldest_allowed = self._clock() - self._ttl_s
        for state, issued in list(self._issued.items()):
            if issued >= oldest_allowed:
                break
            del self._issued[state]


def pending_states(app: Litestar) -> PendingStates:
    """The app's :class:`PendingStates`, made on first use."""
    return cast("PendingStates", app.state.setdefault(_STATE_KEY, PendingStates()))


@dataclass(frozen=True, slots=True)
class _Registered:
    """An App this process already has (from the credentials file or the environment)."""

    app_id: int | None
    slug: str
    owner: str | None
    install_url: str
    credentials: str
    """The credentials file's path, or ``environment``."""


@get(SETUP_PATH, include_in_schema=False)
async def setup_page(request: Request[Any, Any, Any]) -> Response[str]:
    """The registration page (``?org=NAME`` for an organisation), or the App's install link."""
    settings = web_state(request.app).settings
    # Whoever registers the App decides whose webhooks this deployment trusts: only the
    # holder of the admin token may, and without one nobody can.
    if settings.admin_token is None:
        body = _p(
            "Registering the GitHub App needs an admin token, and none is configured: set "
            "DBARCH_ADMIN_TOKEN (16 characters or more). `dbarchitect run` and `dbarchitect "
            "serve` make one in <data dir>/admin-token when it is unset."
        )
        return _page("Setup needs an admin token", body, 403)
    try:
        if check_token(request, request.query_params.get("token")):
            return await _logged_in(settings, request)
        authenticated = await ui_authenticated(request)
    except TooManyAttempts as err:
        return _page(
            "Too many wrong tokens", _p(str(err)), 429, {"Retry-After": str(err.retry_after)}
        )
    except SessionsUnavailable as err:
        return _page("Sessions are unavailable", _p(f"{err}. Reload once Redis is back."), 503)
    if not authenticated:
        body = _p(
            "Registering the GitHub App needs the admin token: open this page as "
            "/setup?token=<DBARCH_ADMIN_TOKEN> (dbarchitect run and serve keep one in "
            "<data dir>/admin-token)."
        )
        return _page("The admin token is needed", body, 401)
    org = request.query_params.get("org")
    try:
        registered = _registered(settings)
    except AppFileError as err:
        return _page("The App's credentials file is broken", _p(str(err)), 500)
    if registered is not None:
        return _page("DB Architect is registered", _registered_html(registered))
    org = (org or "").strip() or None
    if org is not None and not valid_org(org):
        body = _p(
            f"“{org}” is not a GitHub organisation name (letters, digits and single "
            "hyphens, at most 39). Check the name in the organisation's URL on GitHub."
        ) + _p(f'<a href="{SETUP_PATH}">Back</a>', raw=True)
        return _page("Not an organisation name", body, 400)
    try:
        template = load_template()
    except ManifestError as err:
        return _page("The App manifest cannot be read", _p(str(err)), 500)
    base = settings.public_url or str(request.base_url).rstrip("/")
    manifest = build_manifest(template, base)
    state = pending_states(request.app).issue()
    action = registration_url(github_web_url(settings.github_api_url), state, org)
    return _page("Register DB Architect as a GitHub App", _form_html(manifest, action, org, base))


@get(CALLBACK_PATH, include_in_schema=False)
async def setup_callback(request: Request[Any, Any, Any]) -> Response[str]:
    """GitHub's return (``?code=…&state=…``): check the state, exchange the code, store the App."""
    # Read by hand: `state` is one of Litestar's reserved handler argument names.
    code = request.query_params.get("code")
    state = request.query_params.get("state")
    settings = web_state(request.app).settings
    pending = pending_states(request.app)
    if not pending.valid(state):
        log.warning("setup.unknown_state")
        body = _p(
            "This registration link is unknown or expired: links from the setup page work "
            "once, for one hour, on the process that showed the page. If GitHub created an "
            "App meanwhile, delete it (Settings → Developer settings → GitHub Apps), then "
            "start again."
        ) + _p(f'<a href="{SETUP_PATH}">Start again</a>', raw=True)
        return _page("Registration link not accepted", body, 403)
    if not code:
        return _page("No code from GitHub", _p("GitHub's return carried no code."), 400)
    async with pending.lock:
        return await _register(settings, pending, code, state)


async def _register(
    settings: Settings, pending: PendingStates, code: str, state: str | None
) -> Response[str]:
    """Exchange ``code`` and store the App, unless one is registered already."""
    try:
        registered = _registered(settings)
    except AppFileError as err:
        return _page("The App's credentials file is broken", _p(str(err)), 500)
    if registered is not None:
        body = _p(
            "This process already has App credentials, so the new App was not stored. Delete "
            "the App GitHub just created, or delete the stored credentials "
            f"({app_file_path(settings.data_dir)}) and reload this page within the hour."
        ) + _registered_html(registered)
        return _page("An App is registered already", body, 409)
    try:
        app = await convert_code(settings.github_api_url, code)
    except ConversionError as err:
        if not err.retry:  # the code is used up: so is the state
            pending.take(state)
        log.warning("setup.conversion_failed", status=err.status, retry=err.retry)
        return _page("GitHub did not hand over the App", _p(str(err)), err.status)
    pending.take(state)
    try:
        path = await asyncio.to_thread(app.write, settings.data_dir)
    except OSError as err:
        log.error("setup.store_failed", app_id=app.id, slug=app.slug, error=type(err).__name__)
        body = _p(
            f"GitHub created the App {app.slug} (id {app.id}), but its credentials could "
            f"not be written to {app_file_path(settings.data_dir)} ({err.strerror or err}). "
            "GitHub hands the key over only once: fix the directory, delete the App on "
            "GitHub (Settings → Developer settings → GitHub Apps) and register again."
        )
        return _page("The credentials could not be stored", body, 500)
    log.info("setup.app_registered", app_id=app.id, slug=app.slug, owner=app.owner)
    return _page("DB Architect is registered", _success_html(app, str(path)))


SETUP_HANDLERS = [setup_page, setup_callback]
"""The route handlers to register on the app."""


def _registered(settings: Settings) -> _Registered | None:
    """The App this process has credentials for: the file first, then the settings.

    Raises:
        AppFileError: the credentials file exists but is broken.
    """
    stored = read_app_file(app_file_path(settings.data_dir))
    if stored is not None:
        return _Registered(
            stored.id,
            stored.slug,
            stored.owner,
            stored.install_url,
            str(app_file_path(settings.data_dir)),
        )
    if settings.has_app_credentials:
        web = github_web_url(settings.github_api_url)
        install = f"{web}/apps/{settings.github_app_slug}/installations/new"
        return _Registered(
            settings.github_app_id, settings.github_app_slug, None, install, "environment"
        )
    return None


# ---------------------------------------------------------------- HTML

_CSS = """
body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;
color:#1f2328}
h1{font-size:1.6rem}code,pre{font:14px ui-monospace,monospace;background:#f6f8fa}
pre{padding:.75rem;overflow:auto}.warn{background:#fff8c5;border:1px solid #d4a72c;
padding:.5rem .75rem;border-radius:6px}.card{border:1px solid #d0d7de;border-radius:6px;
padding:.75rem 1rem;margin:1rem 0}button,.button{background:#1f883d;color:#fff;border:0;
border-radius:6px;padding:.45rem .9rem;font-size:1rem;cursor:pointer;text-decoration:none}
input[type=text]{font-size:1rem;padding:.3rem}table{border-collapse:collapse}
td,th{text-align:left;padding:.15rem .75rem .15rem 0}
"""

_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the callback's URL carries GitHub's code
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
    ),
}


async def _logged_in(settings: Settings, request: Request[Any, Any, Any]) -> Response[str]:
    """Open a session (the cookie) and drop the token from the address bar and logs."""
    rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
    target = SETUP_PATH + (f"?{urlencode(rest)}" if rest else "")
    assert settings.admin_token is not None  # noqa: S101 - the right token was just checked
    try:
        session_id = await sessions_of(request.app).open(settings.admin_token.get_secret_value())
    except SessionsUnavailable as err:
        return _page("Sessions are unavailable", _p(f"{err}. Reload once Redis is back."), 503)
    headers = {**_HEADERS, "Location": target}
    cookie = session_cookie(request, session_id)
    return Response("", status_code=303, headers=headers, cookies=[cookie])


def _page(
    title: str, body: str, status: int = 200, headers: dict[str, str] | None = None
) -> Response[str]:
    text = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)} · DB Architect</title><style>{_CSS}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    )
    return Response(
        text, status_code=status, media_type=MediaType.HTML, headers={**_HEADERS, **(headers or {})}
    )


def _p(text: str, *, raw: bool = False) -> str:
    return f"<p>{text if raw else html.escape(text)}</p>\n"


def _e(value: object) -> str:
    return html.escape(str(value))


def _form_html(manifest: dict[str, Any], action: str, org: str | None, base: str) -> str:
    hook = manifest["hook_attributes"]["url"]
    account = f"the organisation <b>{_e(org)}</b>" if org else "your personal account"
    parts = [
        _p(
            "DB Architect has no GitHub App credentials yet, so it runs dry: nothing leaves "
            "this machine. Register it as a GitHub App: GitHub creates a private App from "
            "this checkout's <code>app.yml</code> (the permissions and events below), you "
            "confirm its name, and GitHub sends you back here. DB Architect then stores the "
            "App's id, private key and webhook secret in "
            "<code>&lt;data_dir&gt;/github-app.json</code> (readable by this user only) and "
            "shows you the link to install it.",
            raw=True,
        ),
        _reachability_html(hook, base),
        '<div class="card">',
        _p(f"The App will belong to {account}.", raw=True),
        f'<form method="post" action="{_e(action)}">',
        f'<input type="hidden" name="manifest" value="{_e(json.dumps(manifest))}">',
        f'<button type="submit">Register on GitHub for {"this organisation" if org else "me"}'
        "</button></form>",
        _p(
            "GitHub asks for the App's name: it must be unique on GitHub (for example "
            "“DB Architect (your company)”).",
        ),
        "</div>",
    ]
    if org:
        parts.append(
            _p(f'<a href="{SETUP_PATH}">Register on your personal account instead</a>', raw=True)
        )
    else:
        parts += [
            '<div class="card"><form method="get" action="' + SETUP_PATH + '">',
            '<label>Or for an organisation you own: <input type="text" name="org" '
            'required maxlength="39" placeholder="organisation"></label> ',
            '<button type="submit">Continue</button></form></div>',
        ]
    parts.append(_summary_html(manifest))
    return "\n".join(parts)


def _reachability_html(hook: str, base: str) -> str:
    """Where GitHub will send webhooks, with a warning when that is a local address."""
    where = _p(
        f"GitHub will send webhooks to <code>{_e(hook)}</code> and return you to "
        f"<code>{_e(base)}{CALLBACK_PATH}</code>.",
        raw=True,
    )
    if not _looks_local(base):
        return where
    return (
        where + '<p class="warn">GitHub must be able to reach that address, and a local one it '
        "cannot, unless it is on the network of your GitHub Enterprise Server. Expose this port "
        "through a tunnel that "
        "forwards every path (<code>ngrok http 8000</code>, <code>cloudflared tunnel</code>) "
        "or a reverse proxy, set <code>DBARCH_PUBLIC_URL</code> to its https URL, restart, "
        "and open <code>/setup</code> there.</p>\n"
    )


def _looks_local(base: str) -> bool:
    host = urlsplit(base).hostname or ""
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "." not in host  # a bare host name: a container's or this machine's
    return address.is_private or address.is_loopback or address.is_link_local


def _summary_html(manifest: dict[str, Any]) -> str:
    permissions = manifest.get("default_permissions") or {}
    events = manifest.get("default_events") or []
    rows = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in permissions.items())
    return (
        f"<h2>What the App may do</h2><table><tr><th>Permission</th><th>Access</th></tr>{rows}"
        f"</table>{_p('Events: ' + ', '.join(str(e) for e in events))}"
        "<details><summary>The manifest sent to GitHub</summary>"
        f"<pre>{_e(json.dumps(manifest, indent=2))}</pre></details>"
    )


def _registered_html(app: _Registered) -> str:
    owner = f" owned by <b>{_e(app.owner)}</b>" if app.owner else ""
    where = (
        "the environment (<code>DBARCH_GITHUB_APP_ID</code>, <code>DBARCH_GITHUB_PRIVATE_KEY"
        "</code>)"
        if app.credentials == "environment"
        else f"<code>{_e(app.credentials)}</code>"
    )
    ident = f" (App id {_e(app.app_id)})" if app.app_id is not None else ""
    return _p(
        f"This DB Architect already has a GitHub App: <b>{_e(app.slug)}</b>{ident}{owner}, "
        f"with credentials from {where}.",
        raw=True,
    ) + _install_html(app.install_url)


def _install_html(install_url: str) -> str:
    return _p(
        f'<a class="button" href="{_e(install_url)}">Install the App on your repositories</a>'
        f" &nbsp;<code>{_e(install_url)}</code>",
        raw=True,
    )


def _success_html(app: AppFile, path: str) -> str:
    owner = f", owned by <b>{_e(app.owner)}</b>" if app.owner else ""
    return (
        _p(
            f"GitHub created the App <b>{_e(app.slug)}</b> (App id {_e(app.id)}){owner}. Its "
            f"id, private key and webhook secret are stored in <code>{_e(path)}</code> "
            "(mode 0600); environment variables, when set, still take precedence.",
            raw=True,
        )
        + "<h2>Next</h2><ol>"
        + f"<li>Install the App on the repositories to audit:{_install_html(app.install_url)}</li>"
        + "<li>Restart DB Architect (Ctrl-C and <code>make run</code> again, or restart the "
        "web and worker processes) so that every process reads the new credentials; until "
        "then this one keeps running dry.</li>"
        + "<li>Add <code>.github/db-architect.yml</code> to a repository and comment "
        "<code>/audit</code> on an issue or pull request.</li></ol>"
    )
