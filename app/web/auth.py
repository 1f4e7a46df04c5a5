"""Who may read the admin API and the dashboard: one operator token, as a bearer or a cookie."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from app.settings import Settings

__all__ = [
    "ADMIN_COOKIE",
    "api_guard",
    "cookie_for",
    "settings_of",
    "token_matches",
    "ui_authenticated",
]

#: The dashboard's session cookie: an HMAC of the token, never the token itself.
ADMIN_COOKIE = "dbarch_admin"
_COOKIE_CONTEXT = b"db-architect dashboard session v1"


def settings_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Settings:
    """The app's settings (``create_app`` keeps them in ``app.state["web"]``)."""
    settings: Settings = connection.app.state["web"].settings
    return settings


def token_matches(settings: Settings, presented: str | None) -> bool:
    """Constant-time comparison with the configured admin token (False when none is set)."""
    if settings.admin_token is None or not presented:
        return False
    expected = settings.admin_token.get_secret_value().encode()
    return hmac.compare_digest(expected, presented.encode())


def cookie_for(settings: Settings) -> str:
    """The session cookie value for the configured token (changes when the token does)."""
    if settings.admin_token is None or not settings.admin_token.get_secret_value():
        raise ValueError("no admin token is configured")
    key = settings.admin_token.get_secret_value().encode()
    return hmac.new(key, _COOKIE_CONTEXT, hashlib.sha256).hexdigest()


def ui_authenticated(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """The dashboard cookie, or the bearer token, is right."""
    settings = settings_of(connection)
    if settings.admin_token is None:
        return False
    cookie = connection.cookies.get(ADMIN_COOKIE)
    if cookie and hmac.compare_digest(cookie.encode(), cookie_for(settings).encode()):
        return True
    return token_matches(settings, _bearer(connection))


def _bearer(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    scheme, _, value = connection.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def api_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Litestar guard for ``/api``: ``Authorization: Bearer <DBARCH_ADMIN_TOKEN>``.

    Raises:
        PermissionDeniedException: 403 when no token is configured (the API is off).
        NotAuthorizedException: 401 for a missing or wrong token.
    """
    settings = settings_of(connection)
    if settings.admin_token is None:
        raise PermissionDeniedException(
            "the admin API is off: set DBARCH_ADMIN_TOKEN (dbarchitect run makes one in "
            "<data dir>/admin-token)"
        )
    if not token_matches(settings, _bearer(connection)):
        raise NotAuthorizedException(
            "send the admin token as `Authorization: Bearer <DBARCH_ADMIN_TOKEN>`"
        )
