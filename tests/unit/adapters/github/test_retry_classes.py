"""Which GitHub answers are retried (rate limits, 5xx, network) and which are final (4xx).

Answers are shaped like GitHub's (error JSON with ``message``, ``documentation_url`` and a
string ``status``; real rate-limit headers), served by the respx fake; the classification is
made by githubkit and :func:`app.adapters.github.client.as_github_error` together.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from githubkit.cache import MemCacheStrategy

from app.adapters.github import GitHubError, GitHubTransient, api
from app.adapters.github.client import installation_client
from tests.contract.session import CONTRACT
from tests.github_fake import FakeGitHub

REPO = "octo/shop"
ROOT = f"/repos/{REPO}"
PULLS = f"{ROOT}/pulls"
DOCS = "https://docs.github.com/rest/pulls/pulls#create-a-pull-request"


@pytest.fixture
def fake() -> FakeGitHub:
    fake = FakeGitHub()
    fake.add_repo(REPO, installation_id=7)
    return fake


def _body(status: int, message: str, **extra: Any) -> dict[str, Any]:
    return {"message": message, "documentation_url": DOCS, "status": str(status), **extra}


async def _open_pull(fake: FakeGitHub, gh: Any = None) -> GitHubError:
    """POST a pull request and return the error. GitHub answers more statuses than an
    operation documents (a 404 for a repository the App lost, a 409 for an empty one), so only
    "status not documented" is tolerated here; anything else still fails the test."""
    gh = gh or installation_client(fake.settings(), 7, REPO, cache=MemCacheStrategy())
    with CONTRACT.tolerating() as broken, fake.mock(), pytest.raises(GitHubError) as caught:
        await api(gh, "POST", PULLS, json={"title": "t", "head": "x", "base": "main"})
    assert all("is not documented" in violation for violation in broken), broken
    return caught.value


PERMANENT = [
    (404, _body(404, "Not Found"), {}, "was not found"),
    (409, _body(409, "Git Repository is empty."), {}, "Git Repository is empty"),
    (410, _body(410, "Issues are disabled for this repo"), {}, "Issues are disabled"),
    (
        422,
        _body(
            422,
            "Validation Failed",
            errors=[
                {
                    "resource": "PullRequest",
                    "code": "custom",
                    "message": "A pull request already exists for octo:x.",
                }
            ],
        ),
        {},
        "A pull request already exists for octo:x.",
    ),
    (
        403,
        _body(403, "Resource not accessible by integration"),
        {"x-accepted-github-permissions": "contents=write"},
        "the App lacks contents=write",
    ),
    (
        403,
        _body(403, "Repository was archived so is read-only."),
        {},
        "archived",
    ),
]


@pytest.mark.parametrize(
    ("status", "body", "headers", "said"),
    PERMANENT,
    ids=["404", "409", "410", "422", "403-permission", "403-archived"],
)
async def test_client_errors_are_final_and_say_why(
    fake: FakeGitHub, status: int, body: dict[str, Any], headers: dict[str, str], said: str
) -> None:
    fake.fail_next("POST", PULLS, status=status, json=body, headers=headers, times=5)

    error = await _open_pull(fake)

    assert not isinstance(error, GitHubTransient)
    assert error.status == status and said in error.message
    assert len(fake.calls("POST", PULLS)) == 1


TRANSIENT = [
    ("500", lambda f: f.fail_next("POST", PULLS, status=500), None),
    ("502", lambda f: f.fail_next("POST", PULLS, status=502), None),
    ("503", lambda f: f.fail_next("POST", PULLS, status=503, headers={"retry-after": "7"}), 7),
    ("primary", lambda f: f.primary_rate_limit("POST", PULLS, reset_in=120), 120),
    ("secondary-403", lambda f: f.secondary_rate_limit("POST", PULLS, retry_after=42), 42),
    ("secondary-429", lambda f: f.too_many_requests("POST", PULLS, retry_after=9), 9),
    (
        "secondary-no-header",
        lambda f: f.fail_next(
            "POST",
            PULLS,
            status=403,
            json=_body(403, "You have exceeded a secondary rate limit. Please wait."),
        ),
        60,
    ),
    ("connect", lambda f: f.raise_next("POST", PULLS, httpx.ConnectError("refused")), None),
    ("read-timeout", lambda f: f.raise_next("POST", PULLS, httpx.ReadTimeout("slow")), None),
]


@pytest.mark.parametrize(
    ("setup", "wait_s"), [(t[1], t[2]) for t in TRANSIENT], ids=[t[0] for t in TRANSIENT]
)
async def test_rate_limits_server_errors_and_network_failures_are_retried_later(
    fake: FakeGitHub, setup: Any, wait_s: float | None
) -> None:
    setup(fake)

    error = await _open_pull(fake)

    assert isinstance(error, GitHubTransient)
    if wait_s is None:
        assert error.retry_after is None  # the worker's own backoff
    else:
        assert error.retry_after is not None
        assert wait_s - 10 <= error.retry_after <= wait_s


async def test_a_revoked_installation_token_is_replaced_once(fake: FakeGitHub) -> None:
    gh = installation_client(fake.settings(), 7, REPO, cache=MemCacheStrategy())
    with fake.mock():
        assert (await api(gh, "GET", ROOT)).status_code == 200
        fake.tokens.clear()  # GitHub revoked it early (App reinstalled, key rotated)
        again = await api(gh, "GET", ROOT)

    assert again.status_code == 200
    assert [c.status for c in fake.calls("GET", ROOT)] == [200, 401, 200]
    assert len(fake.calls("POST", r"/app/installations/7/access_tokens")) == 2


async def test_bad_credentials_twice_are_final_after_one_refresh(fake: FakeGitHub) -> None:
    fake.fail_next("POST", PULLS, status=401, json=_body(401, "Bad credentials"), times=5)

    error = await _open_pull(fake)

    assert not isinstance(error, GitHubTransient)
    assert error.status == 401 and "DBARCH_GITHUB_PRIVATE_KEY" in error.message
    assert len(fake.calls("POST", PULLS)) == 2
    assert len(fake.calls("POST", r"/app/installations/7/access_tokens")) == 2


async def test_a_refused_app_jwt_is_not_retried(fake: FakeGitHub) -> None:
    gh = installation_client(
        fake.settings(github_app_id=999), 7, REPO, cache=MemCacheStrategy()
    )  # another App's id: GitHub cannot verify the JWT

    error = await _open_pull(fake, gh)

    assert error.status == 401 and not isinstance(error, GitHubTransient)
    assert len(fake.calls("POST", r"/app/installations/7/access_tokens")) == 1
    assert not fake.calls("POST", PULLS)
