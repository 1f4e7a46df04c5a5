"""The GitHub App setup flow over real HTTP: the app under uvicorn, GitHub mocked by respx."""

from __future__ import annotations

import contextlib
import html
import json
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx
import yaml

from app.github_app_file import app_file_path
from app.settings import Settings
from app.web.manifest import APP_YML
from tests.contract.session import answering
from tests.integration.webhook_app import AppServer
from tests.manifest_payloads import CLIENT_SECRET, WEBHOOK_SECRET, conversion

CODE = "a180b1a3d263c81bc6441d7b990bae27d4c10679"
CONVERSIONS = f"https://api.github.com/app-manifests/{CODE}/conversions"
INSTALL = "https://github.com/apps/octoapp/installations/new"
_FORM = re.compile(
    r'<form method="post" action="([^"]+)">\s*<input type="hidden" name="manifest"'
    r' value="([^"]+)">'
)


@pytest.fixture(scope="module")
def store_dsn(module_store: str) -> str:
    return module_store


ADMIN_TOKEN = "setup-admin-token-0123"


def _serve(settings: Settings, store_dsn: str) -> AppServer:
    return AppServer(settings, store_dsn)


def _settings(data_dir: Path, redis_url: str, **values: Any) -> Settings:
    # No App from the environment (or from a file elsewhere): the flow must start unregistered.
    return Settings(
        data_dir=data_dir,
        redis_url=redis_url,
        github_app_id=None,
        github_private_key=None,
        github_webhook_secret=None,
        **({"admin_token": ADMIN_TOKEN} | values),
    )


@contextlib.contextmanager
def _operator(base_url: str) -> Iterator[httpx.Client]:
    """A browser that opened /setup?token=… once: it holds the /setup cookie."""
    with httpx.Client(base_url=base_url, timeout=10) as http:
        login = http.get("/setup", params={"token": ADMIN_TOKEN})
        assert login.status_code == 303, login.text
        assert "token" not in login.headers["location"]
        yield http


@pytest.fixture
def app(tmp_path: Path, store_dsn: str, redis_url: str) -> Iterator[AppServer]:
    with _serve(_settings(tmp_path, redis_url), store_dsn) as server:
        yield server


@pytest.fixture
def client(app: AppServer) -> Iterator[httpx.Client]:
    with _operator(app.url) as http:
        yield http


@pytest.fixture
def github() -> Iterator[respx.Route]:
    """GitHub's conversion endpoint; everything to the app on loopback goes through."""
    with respx.mock(assert_all_called=False) as router:
        answer = answering(httpx.Response(201, json=conversion()))
        route = router.post(CONVERSIONS).mock(side_effect=answer)
        router.route(host="127.0.0.1").pass_through()
        yield route


def _form(page: str) -> tuple[str, dict[str, Any]]:
    """The POST-to-GitHub form's action and its manifest."""
    match = _FORM.search(page)
    assert match is not None, "no manifest form on the page"
    return html.unescape(match[1]), json.loads(html.unescape(match[2]))


def _state(action: str) -> str:
    [state] = parse_qs(urlsplit(action).query)["state"]
    return state


def test_the_setup_page_posts_the_manifest_to_github(app: AppServer, client: httpx.Client) -> None:
    response = client.get("/setup")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    action, manifest = _form(response.text)
    assert action.startswith("https://github.com/settings/apps/new?state=")
    assert len(_state(action)) >= 32
    assert manifest["hook_attributes"]["url"] == f"{app.url}/webhooks/github"
    assert manifest["redirect_url"] == f"{app.url}/setup/callback"
    assert manifest["public"] is False
    template = yaml.safe_load(APP_YML.read_text())
    assert manifest["default_permissions"] == template["default_permissions"]
    assert manifest["default_events"] == template["default_events"]
    assert "DBARCH_PUBLIC_URL" in response.text  # 127.0.0.1: GitHub cannot reach it
    assert _state(_form(client.get("/setup").text)[0]) != _state(action)  # one per page


def test_an_organisation_gets_its_own_registration_url(client: httpx.Client) -> None:
    action, _ = _form(client.get("/setup", params={"org": "acme-inc"}).text)

    assert action.startswith("https://github.com/organizations/acme-inc/settings/apps/new?state=")

    bad = client.get("/setup", params={"org": "acme/../x"})
    assert bad.status_code == 400
    assert "not a GitHub organisation name" in bad.text
    assert 'name="manifest"' not in bad.text


def test_a_wrong_state_is_refused_and_nothing_is_stored(
    app: AppServer, client: httpx.Client, github: respx.Route, tmp_path: Path
) -> None:
    client.get("/setup")  # a real state exists, just not this one

    response = client.get("/setup/callback", params={"code": CODE, "state": "forged"})

    assert response.status_code == 403
    assert "unknown or expired" in response.text
    assert github.call_count == 0
    assert not app_file_path(tmp_path).exists()


def test_the_callback_stores_the_app_and_shows_the_install_link(
    client: httpx.Client, github: respx.Route, tmp_path: Path
) -> None:
    state = _state(_form(client.get("/setup").text)[0])

    response = client.get("/setup/callback", params={"code": CODE, "state": state})

    assert response.status_code == 200, response.text
    assert github.call_count == 1
    assert github.calls.last.request.url == CONVERSIONS
    path = app_file_path(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())
    expected = conversion()
    assert stored == {
        "id": 1,
        "slug": "octoapp",
        "pem": expected["pem"],
        "webhook_secret": WEBHOOK_SECRET,
        "client_id": "Iv1.8a61f9b3a7aba766",
        "client_secret": CLIENT_SECRET,
        "html_url": "https://github.com/apps/octoapp",
        "owner": "github",
    }
    assert f'href="{INSTALL}"' in response.text
    for secret in (WEBHOOK_SECRET, CLIENT_SECRET, "PRIVATE KEY", CODE):
        assert secret not in response.text
    assert response.headers["referrer-policy"] == "no-referrer"

    again = client.get("/setup/callback", params={"code": CODE, "state": state})
    assert again.status_code == 403  # a state works once
    assert github.call_count == 1

    page = client.get("/setup")
    assert page.status_code == 200
    assert "already has a GitHub App" in page.text
    assert f'href="{INSTALL}"' in page.text
    assert 'name="manifest"' not in page.text
    assert CLIENT_SECRET not in page.text and "PRIVATE KEY" not in page.text


def test_a_refused_code_stores_nothing(
    client: httpx.Client, github: respx.Route, tmp_path: Path
) -> None:
    github.mock(return_value=httpx.Response(404, json={"message": "Not Found"}))
    state = _state(_form(client.get("/setup").text)[0])

    response = client.get("/setup/callback", params={"code": CODE, "state": state})

    assert response.status_code == 400
    assert "work once and for one hour" in response.text
    assert not app_file_path(tmp_path).exists()
    assert "App was not" not in client.get("/setup").text


def test_a_second_registration_is_refused_while_one_exists(
    client: httpx.Client, github: respx.Route, tmp_path: Path
) -> None:
    state = _state(_form(client.get("/setup").text)[0])
    # Meanwhile, another tab finished its registration.
    stored = json.dumps(conversion(id=77, owner="someone"))
    app_file_path(tmp_path).write_text(stored)

    response = client.get("/setup/callback", params={"code": CODE, "state": state})

    assert response.status_code == 409
    assert github.call_count == 0
    assert app_file_path(tmp_path).read_text() == stored


def test_a_public_url_is_what_github_is_given(
    tmp_path: Path, store_dsn: str, redis_url: str
) -> None:
    settings = _settings(tmp_path, redis_url, public_url="https://dbarch.example.com/")
    with _serve(settings, store_dsn) as server, _operator(server.url) as http:
        page = http.get("/setup").text

    _, manifest = _form(page)
    assert manifest["hook_attributes"]["url"] == "https://dbarch.example.com/webhooks/github"
    assert manifest["redirect_url"] == "https://dbarch.example.com/setup/callback"
    assert "DBARCH_PUBLIC_URL" not in page


def test_an_app_from_the_environment_counts_as_registered(
    tmp_path: Path, store_dsn: str, redis_url: str
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        redis_url=redis_url,
        github_app_id=5,
        github_private_key="-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----",
        github_app_slug="our-architect",
        admin_token=ADMIN_TOKEN,
    )
    with _serve(settings, store_dsn) as server, _operator(server.url) as http:
        page = http.get("/setup").text

    assert "already has a GitHub App" in page
    assert 'href="https://github.com/apps/our-architect/installations/new"' in page
    assert "PRIVATE KEY" not in page


def test_only_the_admin_token_holder_may_register(
    tmp_path: Path, store_dsn: str, redis_url: str
) -> None:
    open_settings = _settings(tmp_path, redis_url)
    with _serve(open_settings, store_dsn) as server, httpx.Client(base_url=server.url) as http:
        refused = http.get("/setup")
        wrong = http.get("/setup", params={"token": "guess"})
        login = http.get("/setup", params={"token": ADMIN_TOKEN, "org": "acme"})
        page = http.get(login.headers["location"])
    closed_settings = _settings(tmp_path, redis_url, admin_token=None)
    with _serve(closed_settings, store_dsn) as server, httpx.Client(base_url=server.url) as http:
        closed = http.get("/setup")

    assert refused.status_code == 401 and "admin token" in refused.text
    assert wrong.status_code == 401
    assert login.status_code == 303 and login.headers["location"] == "/setup?org=acme"
    cookie = login.headers["set-cookie"]
    assert "Path=/;" in cookie and "HttpOnly" in cookie and ADMIN_TOKEN not in cookie
    assert page.status_code == 200 and "acme" in page.text
    assert closed.status_code == 403 and "DBARCH_ADMIN_TOKEN" in closed.text
    assert not (tmp_path / "github-app.json").exists()
