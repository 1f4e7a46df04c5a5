"""The client notes the rate limit each response reports, for the job's metrics."""

from __future__ import annotations

import pytest
from githubkit.cache import MemCacheStrategy

from app.adapters.github import GitHubTransient, api
from app.adapters.github.client import app_client, installation_client, rate_limits_seen
from tests.github_fake import FakeGitHub

REPO = "octo/shop"
ROOT = f"/repos/{REPO}"


@pytest.fixture
def fake() -> FakeGitHub:
    fake = FakeGitHub()
    fake.add_repo(REPO, installation_id=7)
    return fake


async def test_the_last_rate_limit_left_is_noted_per_installation(fake: FakeGitHub) -> None:
    gh = installation_client(fake.settings(), 7, REPO, cache=MemCacheStrategy())
    seen: dict[str, int] = {}
    token = rate_limits_seen.set(seen)
    try:
        with fake.mock():
            await api(gh, "GET", ROOT)
            await api(gh, "GET", f"{ROOT}/git/ref/heads/main")
    finally:
        rate_limits_seen.reset(token)

    assert seen == {"7": fake.rate_remaining}
    assert fake.rate_remaining < 5000


async def test_a_rate_limited_call_notes_that_nothing_is_left(fake: FakeGitHub) -> None:
    gh = installation_client(fake.settings(), 7, REPO, cache=MemCacheStrategy())
    fake.primary_rate_limit("GET", ROOT)
    seen: dict[str, int] = {}
    token = rate_limits_seen.set(seen)
    try:
        with fake.mock(), pytest.raises(GitHubTransient):
            await api(gh, "GET", ROOT)
    finally:
        rate_limits_seen.reset(token)

    assert seen == {"7": 0}


async def test_the_apps_own_calls_are_noted_as_app(fake: FakeGitHub) -> None:
    gh = app_client(fake.settings(), cache=MemCacheStrategy())
    seen: dict[str, int] = {}
    token = rate_limits_seen.set(seen)
    try:
        with fake.mock():
            await api(gh, "POST", "/app/installations/7/access_tokens", json={})
    finally:
        rate_limits_seen.reset(token)

    assert seen == {"app": fake.rate_remaining}


async def test_outside_a_job_nothing_is_noted(fake: FakeGitHub) -> None:
    gh = installation_client(fake.settings(), 7, REPO, cache=MemCacheStrategy())
    with fake.mock():
        await api(gh, "GET", ROOT)
    assert rate_limits_seen.get() is None
