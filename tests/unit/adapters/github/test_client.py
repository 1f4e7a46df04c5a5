"""The githubkit clients: token minting and caching, headers, and the error mapping."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from githubkit import AppInstallationAuthStrategy, GitHub
from githubkit.cache import MemCacheStrategy

from app.adapters.github import GitHubError, GitHubTransient, api, app_client, call
from app.adapters.github.client import (
    API_VERSION,
    TOKEN_CACHE_PREFIX,
    installation_client,
    redis_token_cache,
    user_agent,
)
from app.settings import Settings
from tests.github_fake import FakeGitHub, private_key_pem

REPO = "octo/shop"
ROOT = f"/repos/{REPO}"


@pytest.fixture
def fake() -> FakeGitHub:
    fake = FakeGitHub()
    fake.add_repo(REPO, installation_id=7)
    return fake


class MemoryRedis:
    """Just the two calls githubkit's Redis token cache makes (``get``, ``set`` with expiry)."""

    def __init__(self) -> None:
        self.data: dict[str, tuple[str, timedelta]] = {}

    async def get(self, key: str) -> bytes | None:
        return self.data[key][0].encode() if key in self.data else None

    async def set(self, key: str, value: str, ex: timedelta) -> None:
        self.data[key] = (value, ex)


async def test_token_minted_once_and_reused(fake: FakeGitHub) -> None:
    gh = installation_client(fake.settings(), 7, REPO, cache=MemCacheStrategy())
    with fake.mock():
        await api(gh, "GET", ROOT)
        await api(gh, "GET", f"{ROOT}/git/ref/heads/main")
    assert fake.paths() == [
        "POST /app/installations/7/access_tokens",
        f"GET {ROOT}",
        f"GET {ROOT}/git/ref/heads/main",
    ]
    token_request = fake.requests[0]
    assert token_request.json == {
        "repositories": ["shop"],
        "permissions": {
            "contents": "write",
            "pull_requests": "write",
            "checks": "write",
            "issues": "write",
            "metadata": "read",
        },
    }
    assert token_request.headers["authorization"].startswith("Bearer ey")
    (token,) = fake.tokens
    assert all(r.headers["authorization"] == f"token {token}" for r in fake.requests[1:])


async def test_requests_pin_the_api_version_and_name_the_app(fake: FakeGitHub) -> None:
    gh = installation_client(fake.settings(), 7, cache=MemCacheStrategy())
    with fake.mock():
        await api(gh, "GET", ROOT)
    request = fake.requests[-1]
    assert request.headers["x-github-api-version"] == API_VERSION == "2022-11-28"
    assert request.headers["user-agent"] == user_agent()
    assert user_agent().startswith("db-architect/")


async def test_workers_share_tokens_through_the_redis_cache(fake: FakeGitHub) -> None:
    redis = MemoryRedis()
    cache = redis_token_cache(redis)  # type: ignore[arg-type]
    first = installation_client(fake.settings(), 7, REPO, cache=cache)
    second = installation_client(fake.settings(), 7, REPO, cache=redis_token_cache(redis))  # type: ignore[arg-type]
    with fake.mock():
        await api(first, "GET", ROOT)
        await api(second, "GET", ROOT)
    assert fake.tokens_minted == 1
    assert redis.data and all(key.startswith(TOKEN_CACHE_PREFIX) for key in redis.data)
    installation_keys = [k for k in redis.data if ":installation:" in k]
    (key,) = installation_keys
    assert redis.data[key][1] <= timedelta(minutes=59)


def test_without_credentials_the_clients_refuse() -> None:
    with pytest.raises(GitHubError, match="DBARCH_GITHUB_APP_ID"):
        app_client(Settings(github_app_id=None, github_private_key=None))
    with pytest.raises(GitHubError, match="DBARCH_GITHUB_PRIVATE_KEY"):
        installation_client(Settings(github_app_id=1, github_private_key=None), 7)


async def test_app_client_authenticates_with_the_jwt(fake: FakeGitHub) -> None:
    gh = app_client(fake.settings(), cache=MemCacheStrategy())
    with fake.mock():
        response = await api(gh, "POST", "/app/installations/7/access_tokens", json={})
    assert response.status_code == 201
    assert response.json()["token"].startswith("ghs_")


async def test_a_jwt_for_another_app_is_rejected(fake: FakeGitHub) -> None:
    gh = app_client(fake.settings(github_app_id=999), cache=MemCacheStrategy())
    with fake.mock(), pytest.raises(GitHubError, match="credentials") as caught:
        await api(gh, "POST", "/app/installations/7/access_tokens", json={})
    assert caught.value.status == 401
    assert not isinstance(caught.value, GitHubTransient)


async def _fail(fake: FakeGitHub, setup: Any) -> GitHubError:
    gh = installation_client(fake.settings(), 7, REPO, cache=MemCacheStrategy())
    setup()
    with fake.mock(), pytest.raises(GitHubError) as caught:
        await api(gh, "POST", f"{ROOT}/pulls", json={"title": "t", "head": "x", "base": "main"})
    return caught.value


async def test_server_errors_are_transient(fake: FakeGitHub) -> None:
    error = await _fail(fake, lambda: fake.fail_next("POST", f"{ROOT}/pulls", status=502))
    assert isinstance(error, GitHubTransient)
    assert error.status == 502
    assert error.retry_after is None
    assert len(fake.calls("POST", f"{ROOT}/pulls")) == 1  # githubkit did not retry by itself


async def test_secondary_rate_limit_waits_as_told(fake: FakeGitHub) -> None:
    error = await _fail(
        fake, lambda: fake.secondary_rate_limit("POST", f"{ROOT}/pulls", retry_after=42)
    )
    assert isinstance(error, GitHubTransient)
    assert error.retry_after == 42
    assert "secondary rate limit" in error.message


async def test_secondary_rate_limit_without_headers_waits_a_minute(fake: FakeGitHub) -> None:
    body = {"message": "You have exceeded a secondary rate limit.", "status": "403"}
    error = await _fail(
        fake, lambda: fake.fail_next("POST", f"{ROOT}/pulls", status=403, json=body)
    )
    assert isinstance(error, GitHubTransient)
    assert error.retry_after == 60


async def test_too_many_requests_waits_as_told(fake: FakeGitHub) -> None:
    error = await _fail(
        fake, lambda: fake.too_many_requests("POST", f"{ROOT}/pulls", retry_after=9)
    )
    assert isinstance(error, GitHubTransient)
    assert (error.status, error.retry_after) == (429, 9)


async def test_primary_rate_limit_waits_until_the_reset(fake: FakeGitHub) -> None:
    error = await _fail(
        fake, lambda: fake.primary_rate_limit("POST", f"{ROOT}/pulls", reset_in=300)
    )
    assert isinstance(error, GitHubTransient)
    assert error.retry_after is not None
    assert 290 <= error.retry_after <= 300
    assert "primary rate limit" in error.message


async def test_missing_permission_says_what_to_accept(fake: FakeGitHub) -> None:
    fake.installation_permissions[7] = {"metadata": "read", "contents": "write"}
    gh = installation_client(fake.settings(), 7, REPO, cache=MemCacheStrategy())
    with fake.mock(), pytest.raises(GitHubError) as caught:
        # the token cannot even be minted with permissions the installation lacks
        await api(gh, "GET", ROOT)
    assert caught.value.status == 422
    narrow = GitHub(
        AppInstallationAuthStrategy(
            fake.app_id,
            private_key_pem(),
            7,
            permissions={"contents": "write", "metadata": "read"},
        ),
        cache_strategy=MemCacheStrategy(),
        auto_retry=False,
        http_cache=False,
    )
    with fake.mock(), pytest.raises(GitHubError) as caught:
        await api(narrow, "POST", f"{ROOT}/pulls", json={"title": "t", "head": "x", "base": "main"})
    error = caught.value
    assert not isinstance(error, GitHubTransient)
    assert error.status == 403
    assert "the App lacks pull_requests=write" in error.message
    assert "accept the new permissions in the installation settings" in error.message


async def test_not_found_is_permanent_with_advice(fake: FakeGitHub) -> None:
    gh = installation_client(fake.settings(), 7, cache=MemCacheStrategy())
    with fake.mock(), pytest.raises(GitHubError) as caught:
        await api(gh, "GET", "/repos/octo/elsewhere")
    assert caught.value.status == 404
    assert "not installed" in caught.value.message


async def test_validation_errors_carry_githubs_details(fake: FakeGitHub) -> None:
    gh = installation_client(fake.settings(), 7, cache=MemCacheStrategy())
    with fake.mock(), pytest.raises(GitHubError) as caught:
        await api(gh, "POST", f"{ROOT}/pulls", json={"title": "t", "head": "nope", "base": "main"})
    assert caught.value.status == 422
    assert "Validation Failed" in caught.value.message


async def test_token_endpoint_outage_is_transient(fake: FakeGitHub) -> None:
    fake.fail_next("POST", "/app/installations/7/access_tokens", status=503)
    gh = installation_client(fake.settings(), 7, cache=MemCacheStrategy())
    with fake.mock(), pytest.raises(GitHubTransient) as caught:
        await api(gh, "GET", ROOT)
    assert caught.value.status == 503


async def test_timeouts_and_connection_errors_are_transient(fake: FakeGitHub) -> None:
    gh = installation_client(fake.settings(), 7, cache=MemCacheStrategy())
    fake.raise_next("GET", f"{ROOT}/pulls", httpx.ConnectTimeout("slow"))
    fake.raise_next("GET", f"{ROOT}/issues/1/comments", httpx.ConnectError("refused"))
    with fake.mock():
        with pytest.raises(GitHubTransient, match="in time"):
            await api(gh, "GET", f"{ROOT}/pulls")
        with pytest.raises(GitHubTransient, match="ConnectError"):
            await api(gh, "GET", f"{ROOT}/issues/1/comments")
        await api(gh, "GET", f"{ROOT}/pulls")  # the next attempt goes through


async def test_call_maps_raw_httpx_failures() -> None:
    async def broken() -> None:
        raise httpx.ReadError("reset by peer")

    with pytest.raises(GitHubTransient):
        await call(broken())
