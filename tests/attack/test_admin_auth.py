"""Attacks on the operator's login over real HTTP: token guessing, and a cookie kept after logout.

The app runs under uvicorn as ``dbarchitect serve`` runs it (``uvicorn_config``), with the
store on PostgreSQL 18 and sessions in a real Redis. The attacker connects from 127.0.0.1, the
operator from 127.0.0.2 (another loopback address, so another client to the throttle).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from app.settings import Settings
from app.web.auth import ADMIN_COOKIE
from tests.integration.webhook_app import AppServer

TOKEN = "attack-suite-admin-token-0123456789"
NEW_TOKEN = "attack-suite-rotated-token-9876543210"
GUESSES = 500


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return Settings(admin_token=TOKEN, redis_url=redis_url, github_webhook_secret="s3cret")


@pytest.fixture
def app(module_store: str, settings: Settings) -> Iterator[AppServer]:
    with AppServer(settings, module_store) as server:
        yield server


def _client(app: AppServer, source: str = "127.0.0.1") -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=source)
    return httpx.Client(base_url=app.url, transport=transport, follow_redirects=False, timeout=10)


def _login(client: httpx.Client, token: str) -> httpx.Response:
    return client.post("/ui/login", data={"token": token, "next": "/ui/"})


def test_guessing_the_token_is_stopped_and_the_operator_still_gets_in(app: AppServer) -> None:
    started = time.monotonic()
    with _client(app) as attacker:
        answers = Counter(
            # A forged X-Forwarded-For per guess: uvicorn believes none (no trusted proxy).
            attacker.post(
                "/ui/login",
                data={"token": f"guess-{n:04d}", "next": "/ui/"},
                headers={"X-Forwarded-For": f"198.51.100.{n % 250}"},
            ).status_code
            for n in range(GUESSES)
        )
        blocked = _login(attacker, TOKEN)  # the right token, from the locked-out address
        api = attacker.get("/api/audits", headers={"Authorization": f"Bearer {TOKEN}"})
    elapsed = time.monotonic() - started
    print(f"{GUESSES} guesses in {elapsed:.2f} s: {dict(answers)}")

    assert answers[401] == 5 and answers[429] == GUESSES - 5, answers
    assert blocked.status_code == 429 and api.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert "Too many wrong tokens" in blocked.text and "wait" in blocked.text
    assert not blocked.cookies.get(ADMIN_COOKIE)
    with _client(app, "127.0.0.2") as operator:
        login = _login(operator, TOKEN)
        page = operator.get("/ui/")
    assert login.status_code == 303 and login.cookies.get(ADMIN_COOKIE)
    assert page.status_code == 200


def test_guessing_through_the_api_is_stopped_too(app: AppServer) -> None:
    with _client(app) as attacker:
        answers = Counter(
            attacker.get("/api/audits", headers={"Authorization": f"Bearer g{n:04d}"}).status_code
            for n in range(GUESSES)
        )
        throttled = attacker.get("/api/audits", headers={"Authorization": "Bearer x"})

    assert answers[401] == 5 and answers[429] == GUESSES - 5, answers
    assert throttled.headers["retry-after"].isdigit()
    assert "too many wrong admin tokens" in throttled.json()["error"]
    with _client(app, "127.0.0.2") as operator:
        own = operator.get("/api/audits", headers={"Authorization": f"Bearer {TOKEN}"})
    assert own.status_code == 200


def test_a_cookie_kept_after_logout_is_refused(app: AppServer) -> None:
    with _client(app) as operator:
        assert _login(operator, TOKEN).status_code == 303
        stolen = operator.cookies[ADMIN_COOKIE]
        assert operator.get("/ui/").status_code == 200
        logout = operator.post("/ui/logout")
    assert logout.status_code == 303

    with _client(app, "127.0.0.3") as thief:
        replay = thief.get("/ui/", headers={"Cookie": f"{ADMIN_COOKIE}={stolen}"})
        api = thief.get("/api/audits", headers={"Cookie": f"{ADMIN_COOKIE}={stolen}"})
    assert replay.status_code == 303 and replay.headers["location"].startswith("/ui/login")
    assert api.status_code == 401  # the API never took cookies


def test_a_new_admin_token_ends_every_session(
    app: AppServer, module_store: str, settings: Settings
) -> None:
    with _client(app) as operator:
        assert _login(operator, TOKEN).status_code == 303
        kept = operator.cookies[ADMIN_COOKIE]
    rotated = Settings(
        admin_token=NEW_TOKEN, redis_url=settings.redis_url, github_webhook_secret="s3cret"
    )

    with (
        AppServer(rotated, module_store) as restarted,
        httpx.Client(base_url=restarted.url, follow_redirects=False, timeout=10) as client,
    ):
        old = client.get("/ui/", headers={"Cookie": f"{ADMIN_COOKIE}={kept}"})
    assert old.status_code == 303  # same Redis, same session id: refused under the new token


def test_the_cookie_is_secure_behind_a_tls_proxy(module_store: str, redis_url: str) -> None:
    settings = Settings(
        admin_token=TOKEN,
        redis_url=redis_url,
        github_webhook_secret="s3cret",
        public_url="https://dbarch.example.com",
    )
    with (
        AppServer(settings, module_store) as server,
        httpx.Client(base_url=server.url, follow_redirects=False, timeout=10) as client,
    ):
        # What a TLS-terminating proxy forwards: plain http, the public host.
        proxied = client.post(
            "/ui/login",
            data={"token": TOKEN, "next": "/ui/"},
            headers={"Host": "dbarch.example.com"},
        )
    flags = [flag.strip().lower() for flag in proxied.headers["set-cookie"].split(";")]
    assert proxied.status_code == 303
    assert {"secure", "httponly", "path=/", "samesite=lax"} <= set(flags)


def test_behind_a_named_proxy_clients_are_told_apart_by_its_header(
    module_store: str, redis_url: str
) -> None:
    """A local tunnel (DBARCH_TRUSTED_PROXIES=127.0.0.1): its X-Forwarded-For names the client."""
    settings = Settings(
        admin_token=TOKEN,
        redis_url=redis_url,
        github_webhook_secret="s3cret",
        trusted_proxies="127.0.0.1",
    )
    with AppServer(settings, module_store) as server, _client(server) as tunnel:
        attacker = {"X-Forwarded-For": "198.51.100.7"}
        guesses = Counter(
            tunnel.post("/ui/login", data={"token": f"g{n}"}, headers=attacker).status_code
            for n in range(20)
        )
        operator = tunnel.post(
            "/ui/login", data={"token": TOKEN}, headers={"X-Forwarded-For": "203.0.113.9"}
        )

    assert guesses == Counter({401: 5, 429: 15})
    assert operator.status_code == 303
