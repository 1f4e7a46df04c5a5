"""The GitHub fake itself: it must reject what GitHub rejects, or the other tests prove little."""

from __future__ import annotations

import asyncio
import base64
import threading

import httpx
import pytest
from githubkit.cache import MemCacheStrategy

from app.adapters.github import FileChange, FixChange, Published
from tests.contract.session import CONTRACT
from tests.github_fake import FakeGitHub

REPO = "octo/shop"
API = "https://api.github.com"


@pytest.fixture
def fake() -> FakeGitHub:
    fake = FakeGitHub()
    fake.add_repo(REPO, installation_id=7, files={"a.txt": "é" * 100})
    fake.add_repo("octo/other", installation_id=7)
    return fake


def token(client: httpx.Client, fake: FakeGitHub, **body: object) -> str:
    """Mint a token the way the App does: a JWT from githubkit's own auth flow."""
    gh = fake.github_repo(REPO, cache=MemCacheStrategy()).gh
    jwt = gh.auth.get_auth_flow(gh).get_jwt()
    answer = client.post(
        f"{API}/app/installations/7/access_tokens",
        json=body,
        headers={"Authorization": f"Bearer {jwt}"},
    )
    assert answer.status_code == 201
    assert answer.json()["expires_at"].endswith("Z")
    return str(answer.json()["token"])


def test_token_endpoint_wants_a_jwt(fake: FakeGitHub) -> None:
    with fake.mock(), httpx.Client() as client:
        for auth in ("Bearer not-a-jwt", "token ghs_x", "Bearer a.b.c"):
            answer = client.post(
                f"{API}/app/installations/7/access_tokens", headers={"Authorization": auth}
            )
            assert answer.status_code == 401
        assert token(client, fake).startswith("ghs_")


def test_repository_endpoints_want_an_installation_token(fake: FakeGitHub) -> None:
    with fake.mock(), httpx.Client() as client:
        assert client.get(f"{API}/repos/{REPO}").json()["message"] == "Bad credentials"
        narrow = token(client, fake, repositories=["shop"])
        auth = {"Authorization": f"token {narrow}"}
        assert client.get(f"{API}/repos/{REPO}", headers=auth).status_code == 200
        assert client.get(f"{API}/repos/octo/other", headers=auth).status_code == 404


def test_contents_are_base64_in_lines_of_60(fake: FakeGitHub) -> None:
    with fake.mock(), httpx.Client() as client:
        auth = {"Authorization": f"token {token(client, fake)}"}
        data = client.get(f"{API}/repos/{REPO}/contents/a.txt", headers=auth).json()
        missing = client.get(f"{API}/repos/{REPO}/contents/b.txt", headers=auth)
    lines = data["content"].split("\n")
    assert lines[-1] == ""
    assert all(len(line) == 60 for line in lines[:-2])
    assert base64.b64decode(data["content"]).decode() == "é" * 100
    assert (data["type"], data["encoding"], data["name"], data["path"]) == (
        "file",
        "base64",
        "a.txt",
        "a.txt",
    )
    assert missing.status_code == 404
    assert missing.json()["message"] == "Not Found"
    assert missing.json()["documentation_url"].startswith("https://docs.github.com/")


def test_github_validation_is_enforced(fake: FakeGitHub) -> None:
    sha = fake.repo(REPO).refs["main"]
    with fake.mock(), httpx.Client() as client, CONTRACT.tolerating() as broken:
        auth = {"Authorization": f"token {token(client, fake)}"}
        runs = f"{API}/repos/{REPO}/check-runs"
        incomplete = client.post(
            runs, json={"name": "n", "head_sha": sha, "status": "completed"}, headers=auth
        )
        buttons = [{"label": f"b{i}", "description": "d", "identifier": f"i{i}"} for i in range(4)]
        too_many = client.post(
            runs, json={"name": "n", "head_sha": sha, "actions": buttons}, headers=auth
        )
        issue = fake.open_issue(REPO)
        too_long = client.post(
            f"{API}/repos/{REPO}/issues/{issue}/comments",
            json={"body": "x" * 65_537},
            headers=auth,
        )
        unserved = client.get(f"{API}/repos/{REPO}/actions/runs", headers=auth)
    assert incomplete.status_code == too_many.status_code == too_long.status_code == 422
    assert "maximum is 65536" in too_long.json()["errors"][0]["message"]
    assert unserved.status_code == 501
    assert fake.unserved == [f"GET /repos/{REPO}/actions/runs"]
    # GitHub answers these, and its description documents neither the request nor the answer
    if CONTRACT.available:
        assert any("request body at /actions" in v and "is too long" in v for v in broken)
        assert any("checks/create" in v and "status 422 is not documented" in v for v in broken)
        assert any("actions/list-workflow-runs-for-repo" in v and "501" in v for v in broken)


def test_code_in_another_thread_and_event_loop_reaches_the_fake(fake: FakeGitHub) -> None:
    results: list[Published] = []

    def worker() -> None:
        async def job() -> None:
            repo = fake.github_repo(REPO, cache=MemCacheStrategy())
            change = FixChange(
                "db-architect/x/1", "main", "t", "b", "m", (FileChange("m.py", "x"),), ()
            )
            results.append(await repo.publish(change))

        asyncio.run(job())

    with fake.mock():
        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert sorted(r.action for r in results) == ["created", "updated"]
    assert len(fake.pulls(REPO)) == 1
    head = fake.head_commit(REPO, "db-architect/x/1")
    assert head["author"]["name"] == head["committer"]["name"] == "db-architect[bot]"


def test_human_pushes_are_not_the_bots(fake: FakeGitHub) -> None:
    fake.push(REPO, "feature", {"b.txt": "b"})
    head = fake.head_commit(REPO, "feature")
    assert head["author"]["name"] == "Octo Cat"
    assert head["verification"]["verified"] is False
    assert fake.file(REPO, "b.txt", "feature") == "b"
    assert fake.file(REPO, "b.txt") is None
