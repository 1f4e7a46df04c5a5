"""The manifest built from app.yml, GitHub's URLs, and the code conversion (GitHub via respx)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import respx
import yaml

from app.web.manifest import (
    APP_YML,
    ConversionError,
    ManifestError,
    build_manifest,
    convert_code,
    github_web_url,
    load_template,
    registration_url,
    valid_org,
)
from tests.contract.session import answering
from tests.manifest_payloads import WEBHOOK_SECRET, conversion

BASE = "https://dbarch.example.com"
CONVERSIONS = "https://api.github.com/app-manifests/abc123/conversions"


def test_the_manifest_is_app_yml_with_this_deployments_urls() -> None:
    template = load_template()

    manifest = build_manifest(template, BASE + "/")

    assert manifest["url"] == BASE
    assert manifest["hook_attributes"] == {"url": f"{BASE}/webhooks/github", "active": True}
    assert manifest["redirect_url"] == f"{BASE}/setup/callback"
    assert manifest["setup_url"] == f"{BASE}/setup"
    assert manifest["public"] is False
    assert manifest["name"] == "DB Architect"
    assert manifest["default_permissions"]["pull_requests"] == "write"
    assert "issue_comment" in manifest["default_events"]
    assert "example.invalid" not in str(manifest)
    assert template == yaml.safe_load(APP_YML.read_text())  # the template is left alone


def test_a_public_template_becomes_private() -> None:
    manifest = build_manifest({"name": "X", "public": True, "default_permissions": {}}, BASE)

    assert manifest["public"] is False
    assert "setup_url" not in manifest


def test_a_missing_template_says_where_it_was_looked_for(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=f"{tmp_path}/app.yml is missing"):
        load_template(tmp_path / "app.yml")


@pytest.mark.parametrize("text", ["- a\n- b\n", "name: X\n", "name: [unclosed\n"])
def test_a_template_that_is_no_manifest_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "app.yml"
    path.write_text(text)

    with pytest.raises(ManifestError, match=str(path)):
        load_template(path)


@pytest.mark.parametrize(
    ("api", "web"),
    [
        ("https://api.github.com", "https://github.com"),
        ("https://api.github.com/", "https://github.com"),
        ("https://ghe.corp.example/api/v3", "https://ghe.corp.example"),
        ("http://127.0.0.1:9999", "http://127.0.0.1:9999"),
    ],
)
def test_githubs_web_url_follows_its_api_url(api: str, web: str) -> None:
    assert github_web_url(api) == web


def test_registration_goes_to_the_account_or_the_organisation() -> None:
    assert (
        registration_url("https://github.com", "s+t/ate")
        == "https://github.com/settings/apps/new?state=s%2Bt%2Fate"
    )
    assert (
        registration_url("https://ghe.corp", "x", org="acme-inc")
        == "https://ghe.corp/organizations/acme-inc/settings/apps/new?state=x"
    )


@pytest.mark.parametrize("org", ["-acme", "acme-", "ac--me", "a/b", "", "a" * 40, "acme inc"])
def test_organisation_names_are_checked(org: str) -> None:
    assert not valid_org(org)
    with pytest.raises(ValueError, match="not a GitHub organisation name"):
        registration_url("https://github.com", "x", org=org or "/")


@pytest.mark.parametrize("org", ["acme", "Acme-Inc-2", "a" * 39])
def test_good_organisation_names_pass(org: str) -> None:
    assert valid_org(org)


@respx.mock(assert_all_mocked=True)
async def test_the_code_is_exchanged_without_authentication(respx_mock: respx.MockRouter) -> None:
    answer = answering(httpx.Response(201, json=conversion()))
    route = respx_mock.post(CONVERSIONS).mock(side_effect=answer)

    app = await convert_code("https://api.github.com/", "abc123")

    assert route.call_count == 1
    request = route.calls.last.request
    assert "authorization" not in request.headers
    assert request.headers["accept"] == "application/vnd.github+json"
    assert (app.id, app.slug, app.webhook_secret) == (1, "octoapp", WEBHOOK_SECRET)


@pytest.mark.parametrize(
    ("answer", "status", "retry", "says"),
    [
        (httpx.Response(404, json={"message": "Not Found"}), 400, False, "work once"),
        (httpx.Response(422, json={"message": "Validation Failed"}), 400, False, "Validation"),
        (httpx.Response(500, json={"message": "Server Error"}), 502, True, "answered 500"),
        (httpx.Response(201, json=conversion(pem=None)), 502, False, "mistypes pem"),
        (httpx.Response(201, text="<html>"), 502, False, "not JSON"),
        (httpx.ConnectError("refused"), 502, True, "cannot reach GitHub"),
    ],
)
async def test_a_failed_conversion_says_what_to_do(
    answer: httpx.Response | Exception, status: int, retry: bool, says: str
) -> None:
    with respx.mock:
        route = respx.post(CONVERSIONS)
        if isinstance(answer, Exception):
            route.mock(side_effect=answer)
        else:
            route.mock(return_value=answer)

        with pytest.raises(ConversionError, match=says) as caught:
            await convert_code("https://api.github.com", "abc123")

    assert (caught.value.status, caught.value.retry) == (status, retry)
    assert "PRIVATE KEY" not in str(caught.value)
