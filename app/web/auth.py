"""Who may read the admin API and the dashboard: the operator token (bearer) or a session.

Every check of a presented token goes through the login throttle (:mod:`app.web.throttle`),
keyed on the connection's peer address: ``X-Forwarded-For`` counts only when uvicorn was told
to believe the proxy that sends it (``DBARCH_TRUSTED_PROXIES``). A throttled client gets 429
with ``Retry-After`` and its token is not even compared. The dashboard's cookie holds a random
session id (:mod:`app.web.sessions`), never the token or anything derived from it.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

import structlog
from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.exceptions import (
    NotAuthorizedException,
    PermissionDeniedException,
    TooManyRequestsException,
)
from litestar.handlers.base import BaseRouteHandler

from app.settings import Settings
from app.web.sessions import ABSOLUTE_S, SessionStore
from app.web.state import web_state
from app.web.throttle import LoginThrottle, client_key

__all__ = [
    "ADMIN_COOKIE",
    "TooManyAttempts",
    "api_guard",
    "check_token",
    "forget_cookie",
    "session_cookie",
    "sessions_of",
    "settings_of",
    "throttle_of",
    "token_matches",
    "ui_authenticated",
]

log = structlog.get_logger(__name__)

#: The dashboard's session cookie: a random session id.
ADMIN_COOKIE = "dbarch_session"
_THROTTLE_KEY = "login_throttle"
_SESSIONS_KEY = "admin_sessions"


class TooManyAttempts(TooManyRequestsException):
    """429: this client sent too many wrong tokens; ``retry_after`` says how long to wait."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = int(retry_after)
        super().__init__(
            f"too many wrong admin tokens from your address: wait {self.retry_after} s, then "
            "try again with the token from DBARCH_ADMIN_TOKEN (or <data dir>/admin-token)",
            headers={"Retry-After": str(self.retry_after)},
        )


def settings_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Settings:
    """The app's settings (``create_app`` keeps them in ``app.state["web"]``)."""
    settings: Settings = connection.app.state["web"].settings
    return settings


def throttle_of(app: Litestar) -> LoginThrottle:
    """The app's login throttle, made on first use."""
    if _THROTTLE_KEY not in app.state:
        app.state[_THROTTLE_KEY] = LoginThrottle()
    throttle: LoginThrottle = app.state[_THROTTLE_KEY]
    return throttle


def sessions_of(app: Litestar) -> SessionStore:
    """The app's dashboard sessions, in the web's Redis (made on first use)."""
    if _SESSIONS_KEY not in app.state:
        app.state[_SESSIONS_KEY] = SessionStore(web_state(app).queue.connect)
    sessions: SessionStore = app.state[_SESSIONS_KEY]
    return sessions


def token_matches(settings: Settings, presented: str | None) -> bool:
    """Constant-time comparison with the configured admin token (False when none is set)."""
    if settings.admin_token is None or not presented:
        return False
    expected = settings.admin_token.get_secret_value().encode()
    return hmac.compare_digest(expected, presented.encode())


def check_token(connection: ASGIConnection[Any, Any, Any, Any], presented: str | None) -> bool:
    """Whether ``presented`` is the admin token, counted by the login throttle.

    Nothing presented is no guess and is not counted.

    Raises:
        TooManyAttempts: the client must wait first (its token was not compared).
    """
    if not presented:
        return False
    throttle = throttle_of(connection.app)
    client = client_key(connection.client.host if connection.client else None)
    wait = throttle.retry_after(client)
    if wait is not None:
        log.warning("auth.throttled", client=client, retry_after_s=wait)
        raise TooManyAttempts(wait)
    if token_matches(settings_of(connection), presented):
        throttle.succeeded(client)
        return True
    locked_for = throttle.failed(client)
    log.warning("auth.wrong_token", client=client, locked_for_s=locked_for)
    return False


async def ui_authenticated(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """A live dashboard session, or the right bearer token.

    Raises:
        TooManyAttempts: a bearer token from a throttled client.
        SessionsUnavailable: a session cookie came, and Redis cannot say whether it is live.
    """
    settings = settings_of(connection)
    if settings.admin_token is None:
        return False
    session_id = connection.cookies.get(ADMIN_COOKIE)
    token = settings.admin_token.get_secret_value()
    if session_id and await sessions_of(connection.app).check(session_id, token):
        return True
    return check_token(connection, _bearer(connection))


def _secure(settings: Settings, connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """HTTPS as the browser sees it: this request's scheme, or an https public URL.

    Behind a TLS-terminating proxy or tunnel the request arrives as http, so an https
    ``DBARCH_PUBLIC_URL`` decides, except for a request addressed to this machine's loopback
    (``http://127.0.0.1:8000`` on the host itself), where no TLS is in play and a secure
    cookie would never come back to a plain-http client.
    """
    if connection.url.scheme == "https":
        return True
    public = (settings.public_url or "").lower()
    return public.startswith("https://") and not _loopback(connection.url.hostname)


def _loopback(host: str | None) -> bool:
    if not host or host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def session_cookie(connection: ASGIConnection[Any, Any, Any, Any], session_id: str) -> Cookie:
    """The cookie that carries ``session_id``: HttpOnly, SameSite=Lax, Path=/, Secure on HTTPS.

    Lax, not Strict: GitHub sends the operator back to ``/setup`` after the App is installed,
    a cross-site navigation a strict cookie would not survive. No dashboard page changes
    anything on GET, and cross-site POSTs carry no Lax cookie.
    """
    return Cookie(
        key=ADMIN_COOKIE,
        value=session_id,
        path="/",
        max_age=ABSOLUTE_S,
        httponly=True,
        samesite="lax",
        secure=_secure(settings_of(connection), connection),
    )


def forget_cookie(connection: ASGIConnection[Any, Any, Any, Any]) -> Cookie:
    """A cookie that deletes the session cookie in the browser."""
    return Cookie(
        key=ADMIN_COOKIE,
        value="",
        path="/",
        max_age=0,
        httponly=True,
        samesite="lax",
        secure=_secure(settings_of(connection), connection),
    )


def _bearer(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    scheme, _, value = connection.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def api_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Litestar guard for ``/api``: ``Authorization: Bearer <DBARCH_ADMIN_TOKEN>``.

    Raises:
        PermissionDeniedException: 403 when no token is configured (the API is off).
        NotAuthorizedException: 401 for a missing or wrong token.
        TooManyAttempts: 429 after too many wrong tokens from this client.
    """
    settings = settings_of(connection)
    if settings.admin_token is None:
        raise PermissionDeniedException(
            "the admin API is off: set DBARCH_ADMIN_TOKEN (dbarchitect run makes one in "
            "<data dir>/admin-token)"
        )
    if not check_token(connection, _bearer(connection)):
        raise NotAuthorizedException(
            "send the admin token as `Authorization: Bearer <DBARCH_ADMIN_TOKEN>`"
        )
