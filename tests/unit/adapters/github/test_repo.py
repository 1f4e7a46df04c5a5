"""GitHubRepo against the stateful fake: reading, reporting, and publishing pull requests."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest
from githubkit.cache import MemCacheStrategy

from app.adapters.github import (
    CheckAction,
    CheckOutput,
    CheckRun,
    FileChange,
    FixChange,
    GitHubError,
    GitHubRepo,
    GitHubTransient,
)
from app.adapters.github.repo import MAX_TEXT_BYTES
from tests.github_fake import BOT_LOGIN, FakeGitHub

REPO = "octo/shop"
ROOT = f"/repos/{REPO}"
CONFIG = ".github/db-architect.yml"
VERSIONS = "migrations/versions"
BRANCH = "db-architect/create_index/orders-3f9a1c2b"
REVISION = f"{VERSIONS}/b2_add_orders_customer_id_idx.py"


@pytest.fixture
def fake() -> FakeGitHub:
    fake = FakeGitHub()
    fake.add_repo(
        REPO,
        files={
            CONFIG: "version: 1\ntarget: shop\n",
            f"{VERSIONS}/a1_init.py": "revision = 'a1'\ndown_revision = None\n",
            f"{VERSIONS}/README": "not python\n",
            f"{VERSIONS}/nested/c3_other.py": "revision = 'c3'\n",
            "app/models.py": "x = 1\n",
        },
    )
    return fake


@pytest.fixture
async def repo(fake: FakeGitHub) -> AsyncIterator[GitHubRepo]:
    adapter = fake.github_repo(REPO, cache=MemCacheStrategy())
    with fake.mock():
        async with adapter.gh:  # one HTTP client for the whole test, as a job would hold it
            yield adapter


def change(**overrides: object) -> FixChange:
    values: dict[str, object] = {
        "branch": BRANCH,
        "base_branch": "main",
        "title": "perf(db): add index on orders (customer_id)",
        "body": "Evidence: 12.4 ms → 0.3 ms\n\n<!-- db-architect:meta e30= -->",
        "commit_message": "perf(db): add index on orders (customer_id)",
        "files": (FileChange(REVISION, "revision = 'b2'\ndown_revision = 'a1'\n"),),
        "labels": ("db-architect", "performance"),
    }
    return FixChange(**(values | overrides))  # type: ignore[arg-type]


def writes(fake: FakeGitHub) -> list[str]:
    """The changes made to the repository (token minting is not one), in order."""
    return [p for p in fake.paths("POST", "PATCH", "DELETE") if "/access_tokens" not in p]


# ---------------------------------------------------------------- reading


async def test_repo_info(fake: FakeGitHub, repo: GitHubRepo) -> None:
    info = await repo.repo_info()
    assert info.default_branch == "main"
    assert info.head_sha == fake.repo(REPO).refs["main"]


async def test_file_text_decodes_the_contents_api(repo: GitHubRepo) -> None:
    assert await repo.file_text(CONFIG, "main") == "version: 1\ntarget: shop\n"


async def test_missing_config_is_none(fake: FakeGitHub, repo: GitHubRepo) -> None:
    assert await repo.file_text(".github/nope.yml", "main") is None
    assert fake.requests[-1].status == 404


async def test_a_directory_is_not_a_file(repo: GitHubRepo) -> None:
    assert await repo.file_text(VERSIONS, "main") is None


async def test_large_files_are_read_through_the_blob_api(
    fake: FakeGitHub, repo: GitHubRepo
) -> None:
    big = "# padding\n" * 120_000
    fake.push(REPO, "main", {"big.sql": big})
    assert await repo.file_text("big.sql", "main") == big
    assert fake.paths()[-1].startswith(f"GET {ROOT}/git/blobs/")


async def test_a_file_over_the_cap_is_refused_without_downloading_it(
    fake: FakeGitHub, repo: GitHubRepo
) -> None:
    """A 100 MB config would be 133 MB of base64 JSON in the worker: its size says enough."""
    huge = "#" * (MAX_TEXT_BYTES + 1)
    fake.push(REPO, "main", {CONFIG: huge})
    with pytest.raises(GitHubError, match=r"is 4,194,305 bytes; files over 4 MiB are not read"):
        await repo.file_text(CONFIG, "main")
    assert not any("/git/blobs/" in path for path in fake.paths())


async def test_python_files_of_a_directory(fake: FakeGitHub, repo: GitHubRepo) -> None:
    fake.push(REPO, "main", {f"{VERSIONS}/zz_huge.py": "x" * (1024 * 1024 + 1)})
    files = await repo.python_files(VERSIONS, "main")
    assert files == {"a1_init.py": "revision = 'a1'\ndown_revision = None\n"}


async def test_python_files_follow_the_ref(fake: FakeGitHub, repo: GitHubRepo) -> None:
    fake.push(REPO, "feature", {f"{VERSIONS}/b2.py": "revision = 'b2'\n"})
    assert set(await repo.python_files(VERSIONS, "feature")) == {"a1_init.py", "b2.py"}
    assert set(await repo.python_files(VERSIONS, "main")) == {"a1_init.py"}


async def test_python_files_of_a_missing_directory(repo: GitHubRepo) -> None:
    assert await repo.python_files("db/migrations", "main") == {}


async def test_bot_pulls_filters_branch_and_author(fake: FakeGitHub, repo: GitHubRepo) -> None:
    ours = fake.open_pull(REPO, BRANCH, title="ours")
    fake.open_pull(REPO, "db-architect/spoofed", title="from a person", user="mallory")
    fake.open_pull(REPO, "feature/x", title="unrelated", user="octocat")
    closed = fake.open_pull(REPO, "db-architect/drop_index/old-1", title="closed")
    fake.close_pull(REPO, closed, merged=True)
    pulls = await repo.bot_pulls("db-architect/")
    assert [(p.number, p.state, p.merged) for p in pulls] == [
        (closed, "closed", True),
        (ours, "open", False),
    ]
    assert pulls[1].user_login == BOT_LOGIN
    assert pulls[1].html_url == f"https://github.com/{REPO}/pull/{ours}"
    query = fake.calls("GET", f"{ROOT}/pulls")[0].query
    assert query == {
        "state": "all",
        "sort": "created",
        "direction": "desc",
        "per_page": "100",
        "page": "1",
    }


async def test_bot_pulls_reads_up_to_three_pages(fake: FakeGitHub, repo: GitHubRepo) -> None:
    for i in range(205):
        fake.open_pull(REPO, f"db-architect/x/{i:03d}", title=str(i))
    pulls = await repo.bot_pulls("db-architect/")
    assert len(pulls) == 205
    assert [c.query["page"] for c in fake.calls("GET", f"{ROOT}/pulls")] == ["1", "2", "3"]


@pytest.mark.parametrize("role", ["admin", "maintain", "write", "triage", "read", "none"])
async def test_permission_roles(fake: FakeGitHub, repo: GitHubRepo, role: str) -> None:
    fake.set_permission(REPO, "alice", role)
    assert await repo.permission("alice") == role


async def test_custom_roles_fall_back_to_their_base_permission(
    fake: FakeGitHub, repo: GitHubRepo
) -> None:
    fake.set_permission(REPO, "bob", "security-reviewer", permission="write")
    assert await repo.permission("bob") == "write"


async def test_unknown_user_has_no_permission(fake: FakeGitHub, repo: GitHubRepo) -> None:
    fake.fail_next("GET", f"{ROOT}/collaborators/ghost/permission", status=404)
    assert await repo.permission("ghost") == "none"
    assert await repo.permission("stranger") == "none"


# ---------------------------------------------------------------- reporting


async def test_react(fake: FakeGitHub, repo: GitHubRepo) -> None:
    issue = fake.open_issue(REPO)
    comment_id = fake.add_comment(REPO, issue, "/audit")
    await repo.react(comment_id, "eyes")
    await repo.react(comment_id, "eyes")  # GitHub answers 200 the second time
    assert [r["content"] for r in fake.repo(REPO).reactions] == ["eyes"]
    assert fake.calls("POST", f"{ROOT}/issues/comments/{comment_id}/reactions")[0].json == {
        "content": "eyes"
    }


async def test_comment_then_edit_in_place(fake: FakeGitHub, repo: GitHubRepo) -> None:
    issue = fake.open_issue(REPO)
    first = await repo.comment(issue, "### DB Architect\n\nAuditing…")
    again = await repo.comment(issue, "### DB Architect\n\nDone.", comment_id=first)
    assert again == first
    comments = fake.repo(REPO).comments
    assert [c["body"] for c in comments.values()] == ["### DB Architect\n\nDone."]
    assert writes(fake)[-2:] == [
        f"POST {ROOT}/issues/{issue}/comments",
        f"PATCH {ROOT}/issues/comments/{first}",
    ]


async def test_long_comments_are_cut_to_fit(fake: FakeGitHub, repo: GitHubRepo) -> None:
    issue = fake.open_issue(REPO)
    comment_id = await repo.comment(issue, "x" * 100_000)
    body = fake.repo(REPO).comments[comment_id]["body"]
    assert len(body) == 65_000
    assert "truncated" in body


async def test_check_run_create_then_update(fake: FakeGitHub, repo: GitHubRepo) -> None:
    sha = fake.repo(REPO).refs["main"]
    run_id = await repo.check_run(
        CheckRun(sha, name="DB Architect / audit", status="queued", external_id="audit-42")
    )
    same = await repo.check_run(
        CheckRun(sha, name="DB Architect / audit", status="in_progress", id=run_id)
    )
    buttons = (CheckAction("Open PRs", "Open the held-back pull requests", "open_prs"),)
    output = CheckOutput("2 findings", "summary " * 10, text="details", actions=buttons)
    await repo.check_run(
        CheckRun(
            sha,
            name="DB Architect / audit",
            status="completed",
            conclusion="neutral",
            output=output,
            id=run_id,
        )
    )
    assert same == run_id
    create, start, finish = (r.json for r in fake.requests if "/check-runs" in r.path)
    assert create == {
        "head_sha": sha,
        "name": "DB Architect / audit",
        "status": "queued",
        "external_id": "audit-42",
    }
    assert start["status"] == "in_progress"
    assert "started_at" in start
    assert finish["status"] == "completed"
    assert finish["conclusion"] == "neutral"
    assert finish["completed_at"].endswith("Z")
    assert finish["actions"] == [
        {
            "label": "Open PRs",
            "description": "Open the held-back pull requests",
            "identifier": "open_prs",
        }
    ]
    run = fake.repo(REPO).check_runs[run_id]
    assert (run["status"], run["conclusion"], run["external_id"]) == (
        "completed",
        "neutral",
        "audit-42",
    )
    assert run["output"] == {"title": "2 findings", "summary": "summary " * 10, "text": "details"}


async def test_conclusion_alone_completes_the_run(fake: FakeGitHub, repo: GitHubRepo) -> None:
    sha = fake.repo(REPO).refs["main"]
    run_id = await repo.check_run(
        CheckRun(sha, name="n", status="in_progress", conclusion="failure")
    )
    assert fake.repo(REPO).check_runs[run_id]["status"] == "completed"


async def test_delete_branch_tolerates_a_missing_branch(fake: FakeGitHub, repo: GitHubRepo) -> None:
    fake.push(REPO, BRANCH, {"x": "y"})
    await repo.delete_branch(BRANCH)
    await repo.delete_branch(BRANCH)
    assert BRANCH not in fake.repo(REPO).refs
    assert fake.calls("DELETE", f"{ROOT}/git/refs/heads/{BRANCH}")[-1].status == 422


# ---------------------------------------------------------------- publishing


async def test_publish_creates_tree_commit_ref_pull_and_labels(
    fake: FakeGitHub, repo: GitHubRepo
) -> None:
    base_sha = fake.repo(REPO).refs["main"]
    published = await repo.publish(change())
    assert published.action == "created"
    assert writes(fake) == [
        f"POST {ROOT}/git/trees",
        f"POST {ROOT}/git/commits",
        f"POST {ROOT}/git/refs",
        f"POST {ROOT}/pulls",
        f"POST {ROOT}/issues/{published.number}/labels",
    ]
    tree, commit, ref, pull, labels = (
        r.json for r in fake.requests if r.method == "POST" and "/access_tokens" not in r.path
    )
    base_tree = fake.repo(REPO).commits[base_sha].tree_sha
    assert tree == {
        "base_tree": base_tree,
        "tree": [
            {
                "path": REVISION,
                "mode": "100644",
                "type": "blob",
                "content": "revision = 'b2'\ndown_revision = 'a1'\n",
            }
        ],
    }
    assert commit["parents"] == [base_sha]
    assert commit["message"] == change().commit_message
    assert "author" not in commit and "committer" not in commit  # GitHub signs it as the bot
    assert ref["ref"] == f"refs/heads/{BRANCH}"
    assert pull == {
        "title": change().title,
        "head": BRANCH,
        "base": "main",
        "body": change().body,
        "maintainer_can_modify": True,
    }
    assert labels == {"labels": ["db-architect", "performance"]}
    assert fake.file(REPO, REVISION, BRANCH) == "revision = 'b2'\ndown_revision = 'a1'\n"
    assert fake.file(REPO, CONFIG, BRANCH) is not None  # the rest of the tree is kept
    head = fake.head_commit(REPO, BRANCH)
    assert head["author"]["name"] == BOT_LOGIN
    assert head["verification"]["verified"] is True
    assert published.url == f"https://github.com/{REPO}/pull/{published.number}"


async def test_unchanged_pull_makes_no_commit(fake: FakeGitHub, repo: GitHubRepo) -> None:
    first = await repo.publish(change())
    (existing,) = await repo.bot_pulls("db-architect/")
    head = fake.repo(REPO).refs[BRANCH]
    before = len(writes(fake))
    again = await repo.publish(dataclasses.replace(change(), existing=existing))
    assert again == dataclasses.replace(first, action="unchanged")
    assert len(writes(fake)) == before
    assert fake.repo(REPO).refs[BRANCH] == head


async def test_new_body_only_edits_the_pull(fake: FakeGitHub, repo: GitHubRepo) -> None:
    await repo.publish(change())
    (existing,) = await repo.bot_pulls("db-architect/")
    before = len(writes(fake))
    result = await repo.publish(change(body="New evidence", existing=existing))
    assert result.action == "updated"
    assert writes(fake)[before:] == [f"PATCH {ROOT}/pulls/{existing.number}"]
    assert fake.pulls(REPO)[0]["body"] == "New evidence"


async def test_body_edited_by_githubs_editor_counts_as_the_same(
    fake: FakeGitHub, repo: GitHubRepo
) -> None:
    await repo.publish(change())
    (existing,) = await repo.bot_pulls("db-architect/")
    crlf = dataclasses.replace(existing, body=existing.body.replace("\n", "\r\n"))
    result = await repo.publish(change(existing=crlf))
    assert result.action == "unchanged"


async def test_new_files_rebuild_on_the_current_base(fake: FakeGitHub, repo: GitHubRepo) -> None:
    await repo.publish(change())
    (existing,) = await repo.bot_pulls("db-architect/")
    new_base = fake.push(REPO, "main", {"app/models.py": "x = 2\n"}, message="someone merged")
    new_files = (FileChange(REVISION, "revision = 'b2'\ndown_revision = 'a1'\n# v2\n"),)
    before = len(writes(fake))
    result = await repo.publish(change(files=new_files, existing=existing))
    assert result == dataclasses.replace(result, number=existing.number, action="updated")
    assert writes(fake)[before:] == [
        f"POST {ROOT}/git/trees",
        f"POST {ROOT}/git/commits",
        f"PATCH {ROOT}/git/refs/heads/{BRANCH}",
    ]  # title and body are unchanged: no PATCH of the pull
    assert fake.calls("PATCH", f"{ROOT}/git/refs/heads/.*")[-1].json["force"] is True
    head = fake.head_commit(REPO, BRANCH)
    assert [p["sha"] for p in head["parents"]] == [new_base]
    assert fake.file(REPO, "app/models.py", BRANCH) == "x = 2\n"
    assert fake.file(REPO, REVISION, BRANCH).endswith("# v2\n")  # type: ignore[union-attr]
    assert fake.pulls(REPO)[0]["head"]["sha"] == head["sha"]


async def test_human_commit_blocks_the_update(fake: FakeGitHub, repo: GitHubRepo) -> None:
    await repo.publish(change())
    (existing,) = await repo.bot_pulls("db-architect/")
    human = fake.push(REPO, BRANCH, {REVISION: "revision = 'b2'  # tuned by hand\n"})
    before = len(writes(fake))
    result = await repo.publish(change(body="New", existing=existing))
    assert (result.action, result.number) == ("blocked", existing.number)
    assert len(writes(fake)) == before
    assert fake.repo(REPO).refs[BRANCH] == human


async def test_recreate_rebuilds_the_branch_over_a_human_commit(
    fake: FakeGitHub, repo: GitHubRepo
) -> None:
    """``@db-architect recreate``: a fresh commit on the base head replaces the branch."""
    await repo.publish(change())
    (existing,) = await repo.bot_pulls("db-architect/")
    human = fake.push(REPO, BRANCH, {REVISION: "revision = 'b2'  # tuned by hand\n"})
    result = await repo.publish(change(existing=existing, force=True))
    assert (result.action, result.number) == ("updated", existing.number)
    head = fake.head_commit(REPO, BRANCH)
    assert head["sha"] != human and head["author"]["name"] == fake.bot_login
    assert fake.file(REPO, REVISION, BRANCH) == "revision = 'b2'\ndown_revision = 'a1'\n"


async def test_recreate_takes_over_a_branch_a_human_made(
    fake: FakeGitHub, repo: GitHubRepo
) -> None:
    human = fake.push(REPO, BRANCH, {"notes.txt": "mine"})
    result = await repo.publish(change(force=True))
    assert result.action == "created"
    assert fake.repo(REPO).refs[BRANCH] != human


async def test_close_pull_closes_without_merging(fake: FakeGitHub, repo: GitHubRepo) -> None:
    published = await repo.publish(change())
    await repo.close_pull(published.number)
    (pull,) = fake.pulls(REPO)
    assert pull["state"] == "closed" and not pull["merged"]
    assert (await repo.pull(published.number)).state == "closed"  # type: ignore[union-attr]
    assert await repo.pull(999) is None


async def test_reference_already_exists_moves_our_branch(
    fake: FakeGitHub, repo: GitHubRepo
) -> None:
    """A retried job: the branch was pushed before the PR could be opened."""
    fake.fail_next("POST", f"{ROOT}/pulls", status=502)
    with pytest.raises(GitHubTransient):
        await repo.publish(change())
    assert BRANCH in fake.repo(REPO).refs
    result = await repo.publish(change())
    assert result.action == "created"
    ref_calls = [r for r in fake.requests if "/git/ref" in r.path and r.method != "GET"]
    assert [(r.method, r.status) for r in ref_calls] == [
        ("POST", 201),
        ("POST", 422),
        ("PATCH", 200),
    ]
    assert len(fake.pulls(REPO)) == 1


async def test_reference_already_exists_with_a_human_commit_is_blocked(
    fake: FakeGitHub, repo: GitHubRepo
) -> None:
    human = fake.push(REPO, BRANCH, {"notes.txt": "mine"})
    result = await repo.publish(change())
    assert result.action == "blocked"
    assert fake.repo(REPO).refs[BRANCH] == human
    assert fake.pulls(REPO) == []
    assert not fake.calls("PATCH", f"{ROOT}/git/refs/heads/.*")


async def test_pull_request_already_exists_is_updated(fake: FakeGitHub, repo: GitHubRepo) -> None:
    """The caller did not know of the PR (a lost response): GitHub says it exists."""
    await repo.publish(change())
    result = await repo.publish(change(body="Refreshed"))
    assert result.action == "updated"
    lookup = fake.calls("GET", f"{ROOT}/pulls")[-1]
    assert lookup.query == {"head": f"octo:{BRANCH}", "state": "open"}
    (pull,) = fake.pulls(REPO)
    assert pull["body"] == "Refreshed"


async def test_a_closed_existing_pull_is_not_updated(fake: FakeGitHub, repo: GitHubRepo) -> None:
    await repo.publish(change())
    (existing,) = await repo.bot_pulls("db-architect/")
    closed = dataclasses.replace(existing, state="closed")
    fake.close_pull(REPO, existing.number)
    fake.repo(REPO).refs.pop(BRANCH)
    result = await repo.publish(change(existing=closed))
    assert result.action == "created"
    assert result.number != existing.number


async def test_permanent_failures_surface(fake: FakeGitHub, repo: GitHubRepo) -> None:
    with pytest.raises(GitHubError) as caught:
        await repo.publish(change(base_branch="no-such-branch"))
    assert caught.value.status == 404
    assert not isinstance(caught.value, GitHubTransient)


async def test_secondary_rate_limit_during_publish_is_transient(
    fake: FakeGitHub, repo: GitHubRepo
) -> None:
    fake.secondary_rate_limit("POST", f"{ROOT}/git/trees", retry_after=61)
    with pytest.raises(GitHubTransient) as caught:
        await repo.publish(change())
    assert caught.value.retry_after == 61
    assert (await repo.publish(change())).action == "created"
