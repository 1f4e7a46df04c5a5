"""The admin guard in process: throttled bearer tokens (429 + Retry-After), the cookie's flags."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from litestar import Litestar, Request, Response, get
from litestar.datastructures import State
from litestar.testing import TestClient

from app.settings import Settings
from app.web.api import api_router
from app.web.auth import session_cookie

TOKEN = "unit-admin-token-0123456789"


@get("/cookie", sync_to_thread=False)
def _cookie(request: Request[Any, Any, Any]) -> Response[str]:
    return Response("", cookies=[session_cookie(request, "session-id")])


def _app(**settings: Any) -> Litestar:
    web = SimpleNamespace(settings=Settings(admin_token=TOKEN, **settings))
    return Litestar([api_router, _cookie], state=State({"web": web}), logging_config=None)


@pytest.fixture
def client() -> Iterator[TestClient[Any]]:
    with TestClient(_app()) as client:
        yield client


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_wrong_bearer_tokens_are_throttled_with_retry_after(client: TestClient[Any]) -> None:
    statuses = [
        client.get("/api/audits", headers=_bearer(f"guess-{n}")).status_code for n in range(8)
    ]

    assert statuses == [401] * 5 + [429] * 3
    throttled = client.get("/api/audits", headers=_bearer(TOKEN))  # even the right one waits
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "60"
    assert "wait 60 s" in throttled.json()["error"]
    assert "DBARCH_ADMIN_TOKEN" in throttled.json()["error"]


def test_a_missing_token_is_not_counted_as_a_guess(client: TestClient[Any]) -> None:
    statuses = {client.get("/api/audits").status_code for _ in range(20)}

    assert statuses == {401}


@pytest.mark.parametrize(
    ("public_url", "host", "secure"),
    [
        (None, "dbarch.example.com", False),
        ("http://dbarch.example.com", "dbarch.example.com", False),
        ("https://dbarch.example.com", "dbarch.example.com", True),  # TLS ends at the proxy
        ("https://dbarch.example.com", "127.0.0.1:8000", False),  # the host itself, plain http
        ("https://dbarch.example.com", "localhost:8000", False),
    ],
)
def test_the_cookie_is_secure_when_the_browser_speaks_https(
    public_url: str | None, host: str, secure: bool
) -> None:
    with TestClient(_app(public_url=public_url)) as client:
        cookie = client.get("/cookie", headers={"Host": host}).headers["set-cookie"]

    flags = [flag.strip().lower() for flag in cookie.split(";")]
    assert ("secure" in flags) is secure
    assert {"httponly", "path=/", "samesite=lax"} <= set(flags)


def test_an_https_request_always_gets_a_secure_cookie() -> None:
    with TestClient(_app(), base_url="https://dbarch.example.com") as client:
        cookie = client.get("/cookie").headers["set-cookie"]

    assert "secure" in cookie.lower()
