"""GitHub's contract: the App's operation table against GitHub's descriptions, and the checker.

The descriptions come from `make github-spec` (pinned npm packages); without them these tests
skip on a developer's machine and fail in CI.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from githubkit.cache import MemCacheStrategy

from app.adapters.github import CheckRun, FileChange, FixChange
from app.adapters.github.operations import OPERATIONS, Operation
from app.web.manifest import convert_code
from tests import payloads
from tests.contract.openapi import NO_BODY, Description
from tests.contract.plugin import GitHubContractViolation, _guarded, coverage_line
from tests.contract.session import CONTRACT, DOTCOM, GHES, Contract, answering
from tests.contract.spec_files import FILES, PACKAGES, check_spec_dir
from tests.github_fake import FakeGitHub
from tests.manifest_payloads import conversion

REPO = "acme/shop"


def _require_descriptions() -> None:
    """Skip locally, fail in CI (nothing is skipped there), when the files are missing."""
    if CONTRACT.available:
        return
    reason = CONTRACT.missing_message()
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{reason} (CI must provide it: nothing is skipped in CI)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def dotcom() -> Description:
    _require_descriptions()
    return CONTRACT.description(DOTCOM)


@pytest.fixture(scope="module")
def ghes() -> Description:
    _require_descriptions()
    return CONTRACT.description(GHES)


def table_problems(description: Description, operations: tuple[Operation, ...]) -> list[str]:
    """Every entry of ``operations`` whose id, method or path the description does not have."""
    problems = []
    for op in operations:
        if not description.has(op.operation_id):
            problems.append(f"{op.operation_id}: no such operation in {description.name}")
        elif description.operation(op.operation_id) != (op.method, op.template):
            documented = " ".join(description.operation(op.operation_id))
            problems.append(f"{op.operation_id}: {op.method} {op.template} ≠ {documented}")
    return problems


# ---------------------------------------------------------------------- the App's table


def test_the_description_files_are_provisioned() -> None:
    _require_descriptions()
    assert CONTRACT.problems() == []


@pytest.mark.parametrize("which", ["dotcom", "ghes"])
def test_every_operation_the_app_calls_is_documented(
    which: str, request: pytest.FixtureRequest
) -> None:
    description: Description = request.getfixturevalue(which)
    assert table_problems(description, OPERATIONS) == []
    assert len({op.operation_id for op in OPERATIONS}) == len(OPERATIONS)


def test_a_typo_in_the_table_is_caught(dotcom: Description) -> None:
    typos = (
        Operation("pulls/get", "GET", "/repos/{owner}/{repo}/pull/{pull_number}"),
        Operation("pulls/update", "PUT", "/repos/{owner}/{repo}/pulls/{pull_number}"),
        Operation("pulls/gett", "GET", "/repos/{owner}/{repo}/pulls/{pull_number}"),
    )
    assert table_problems(dotcom, typos) == [
        "pulls/get: GET /repos/{owner}/{repo}/pull/{pull_number} ≠ "
        "GET /repos/{owner}/{repo}/pulls/{pull_number}",
        "pulls/update: PUT /repos/{owner}/{repo}/pulls/{pull_number} ≠ "
        "PATCH /repos/{owner}/{repo}/pulls/{pull_number}",
        "pulls/gett: no such operation in api.github.com",
    ]


def test_operation_paths_encode_each_segment_and_keep_slashes_in_paths() -> None:
    content = next(op for op in OPERATIONS if op.operation_id == "repos/get-content")
    assert content.path(owner="a b", repo="r/x", path="migrations/ü.py") == (
        "/repos/a%20b/r%2Fx/contents/migrations/%C3%BC.py"
    )


# ---------------------------------------------------------------------- the checker


def test_literal_segments_beat_parameters_and_a_last_parameter_may_hold_slashes(
    dotcom: Description,
) -> None:
    comments = dotcom.match("GET", "/repos/o/r/pulls/comments")
    assert comments is not None and comments.operation_id == "pulls/list-review-comments-for-repo"
    ref = dotcom.match("GET", "/repos/o/r/git/ref/heads/feature/x")
    assert ref is not None and ref.path_params["ref"] == "heads/feature/x"
    assert dotcom.match("GET", "/repos/o/r/contents/") is None  # not repos/get with repo "r/…"
    assert dotcom.match("GET", "/repos/o/r/no-such-thing") is None


def test_a_request_violation_names_the_operation_the_pointer_and_what_was_sent(
    dotcom: Description,
) -> None:
    body = {"name": "n", "head_sha": "a" * 40, "status": "done", "started_at": "yesterday"}
    found, problems = dotcom.check_request("POST", "/repos/o/r/check-runs", [], body)
    assert found is not None and found.operation_id == "checks/create"
    text = sorted(str(p) for p in problems)
    assert len(text) == 2
    assert text[0].startswith(
        "[api.github.com] checks/create (POST /repos/{owner}/{repo}/check-runs): "
        "request body at /started_at: 'yesterday' is not a 'date-time'"
    )
    assert "request body at /status: 'done' is not one of" in text[1]
    assert text[1].endswith('(sent: "done")')


def test_query_parameters_are_typed_and_must_be_documented(dotcom: Description) -> None:
    ok = [("state", "all"), ("per_page", "100"), ("page", "2")]
    assert dotcom.check_request("GET", "/repos/o/r/pulls", ok, NO_BODY)[1] == []
    bad = [("per_page", "lots"), ("states", "all")]
    problems = sorted(
        str(p) for p in dotcom.check_request("GET", "/repos/o/r/pulls", bad, NO_BODY)[1]
    )
    assert "query parameter 'per_page' at /: 'lots' is not of type 'integer'" in problems[0]
    assert "query parameter at /states: not a documented parameter" in problems[1]


def test_a_body_where_none_is_documented_and_a_missing_one_are_violations(
    dotcom: Description,
) -> None:
    assert dotcom.check_request("GET", "/repos/o/r", [], {"x": 1})[1][0].problem == (
        "the operation takes no body"
    )
    assert dotcom.check_request("POST", "/repos/o/r/git/refs", [], NO_BODY)[1][0].problem == (
        "required but not sent"
    )


def test_nullable_lets_null_through_only_where_documented(dotcom: Description) -> None:
    fake = FakeGitHub()
    fake.add_repo(REPO)
    pull = fake.pulls(REPO)[0] if fake.pulls(REPO) else None
    assert pull is None
    fake.open_pull(REPO, "db-architect/x")
    pull = fake.pulls(REPO)[0]
    assert dotcom.check_response("pulls/get", 200, pull | {"body": None}) == []
    [problem] = dotcom.check_response("pulls/get", 200, pull | {"title": None})
    assert (problem.pointer, problem.problem) == ("/title", "None is not of type 'string'")


def test_statuses_must_be_documented_except_the_ones_any_endpoint_may_answer(
    dotcom: Description,
) -> None:
    [undocumented] = dotcom.check_response("checks/create", 422, {"message": "no"})
    assert undocumented.problem == "status 422 is not documented (documented: 201)"
    assert dotcom.check_response("checks/create", 502, {"message": "Server Error"}) == []
    assert dotcom.check_response("checks/create", 403, {"message": "rate limit"}) == []
    [wrong] = dotcom.check_response("pulls/get", 404, {"message": 404})
    assert wrong.pointer == "/message"


def test_a_violation_fails_the_phase_that_caused_it() -> None:
    _require_descriptions()
    phase = _guarded("the test")
    next(phase)
    CONTRACT.exchange(
        enterprise=False,
        method="PATCH",
        path="/repos/o/r/pulls/1",
        query=[],
        body={"state": "merged"},
        status=200,
        answer=_pull() | {"state": "merged"},
    )
    with pytest.raises(GitHubContractViolation) as raised:
        phase.send(None)
    message = str(raised.value)
    assert "violation(s) during the test" in message
    assert (
        "pulls/update (PATCH /repos/{owner}/{repo}/pulls/{pull_number}): request body at /state"
        in message
    )
    assert "'merged' is not one of ['open', 'closed']" in message
    assert "response 200 body at /state: 'merged' is not one of ['open', 'closed']" in message
    assert message.count("'merged' is not one of") == 2


def test_tolerating_collects_instead_of_failing() -> None:
    _require_descriptions()
    with CONTRACT.tolerating() as broken:
        CONTRACT.webhook("issue_comment", {"action": "created"})
    assert CONTRACT.take() == []
    assert any("'issue' is a required property" in v for v in broken)


# ---------------------------------------------------------------------- end to end


@pytest.mark.parametrize(
    ("base_url", "name"),
    [("https://api.github.com", DOTCOM), ("https://ghe.example/api/v3", GHES)],
)
async def test_publishing_a_fix_keeps_to_the_contract(base_url: str, name: str) -> None:
    _require_descriptions()
    fake = FakeGitHub(base_url=base_url)
    big = "y" * (1024 * 1024 + 1)  # past what the contents API inlines: read as a blob
    fake.add_repo(REPO, files={"migrations/versions/0001.py": "x = 1\n", "big.txt": big})
    change = FixChange(
        "db-architect/idx/1",
        "main",
        "Add an index",
        "Why: measured.",
        "Add an index",
        (FileChange("migrations/versions/0002.py", "y = 2\n"),),
        ("db-architect",),
    )
    issue = fake.open_issue(REPO)
    human = fake.add_comment(REPO, issue, "/audit")
    before = CONTRACT.requests
    with fake.mock():
        repo = fake.github_repo(REPO, cache=MemCacheStrategy())
        assert (await repo.repo_info()).default_branch == "main"
        assert await repo.file_text("big.txt", "main") == big
        published = await repo.publish(change)
        head = fake.repo(REPO).refs["main"]
        run = await repo.check_run(CheckRun(head, name="audit", status="in_progress"))
        await repo.check_run(
            CheckRun(head, name="audit", status="completed", conclusion="neutral", id=run)
        )
        assert await repo.python_files("migrations/versions", "main")
        await repo.react(human, "eyes")
        said = await repo.comment(issue, "Auditing…")
        await repo.comment(issue, "Done.", comment_id=said)
        assert await repo.permission("octocat") == "none"
        [ours] = await repo.bot_pulls("db-architect/")
        files = (FileChange("migrations/versions/0002.py", "y = 3\n"),)
        renamed = dataclasses.replace(change, title="Add the index", files=files, existing=ours)
        assert (await repo.publish(renamed)).action == "updated"
        assert await repo.pull(ours.number) is not None
        await repo.close_pull(ours.number)
        await repo.delete_branch(change.branch)
    assert published.action == "created"
    assert CONTRACT.requests - before == len(fake.requests)
    used = {op.operation_id for op in OPERATIONS}
    exercised = used & CONTRACT.exercised[name]
    # Everything but the manifest conversion (tests/unit/web/test_manifest.py), which an
    # earlier test of the session may have exercised already.
    assert used - exercised <= {"apps/create-from-manifest"}
    assert f"({CONTRACT.requests} requests validated" in coverage_line()


def _pull(*, merged: bool = False) -> dict[str, Any]:
    fake = FakeGitHub()
    fake.add_repo(REPO)
    number = fake.open_pull(REPO, "db-architect/x", body="Why")
    if merged:
        fake.close_pull(REPO, number, merged=True)
    return fake.pulls(REPO)[0]


WEBHOOKS: list[tuple[str, Callable[[], dict[str, Any]]]] = [
    ("issue_comment", lambda: payloads.issue_comment("/audit")),
    ("issue_comment", lambda: payloads.pull_comment(_pull(), "@db-architect why")),
    ("repository_dispatch", lambda: payloads.repository_dispatch({"ref": "main"})),
    ("check_run", lambda: payloads.check_run("requested_action", "apply")),
    ("check_run", lambda: payloads.check_run("rerequested")),
    ("installation", lambda: payloads.installation_event("created")),
    ("installation", lambda: payloads.installation_event("deleted")),
    ("pull_request", lambda: payloads.pull_request_closed(_pull(merged=True))),
    ("pull_request_review", lambda: payloads.pull_request_review(_pull(), "approved", "ok")),
    ("pull_request_review_comment", lambda: payloads.pull_request_review_comment(_pull(), "no")),
    ("star", payloads.star),
    ("ping", payloads.ping),
    ("check_suite", payloads.check_suite),
]


@pytest.mark.parametrize(("event", "build"), WEBHOOKS)
def test_every_webhook_fixture_fits_its_published_schema(
    event: str, build: Callable[[], dict[str, Any]]
) -> None:
    _require_descriptions()
    assert CONTRACT.webhook_schemas().check(event, build()) == []


# ---------------------------------------------------------------------- provisioning


def test_missing_descriptions_fail_every_exchange_in_ci_and_check_nothing_locally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    contract = Contract(tmp_path)
    exchange: dict[str, Any] = {
        "enterprise": False,
        "method": "GET",
        "path": "/repos/o/r",
        "query": [],
        "body": NO_BODY,
        "status": 200,
        "answer": {},
    }
    monkeypatch.delenv("CI", raising=False)
    assert contract.exchange(**exchange) == [] and contract.take() == []
    monkeypatch.setenv("CI", "true")
    contract.exchange(**exchange)
    [problem] = contract.take()
    assert f"GitHub's description files are missing in {tmp_path}" in problem
    assert "api.github.com.json: missing" in problem and "make github-spec" in problem


def test_the_spec_dir_check_names_each_wrong_file(tmp_path: Path) -> None:
    first, second, *_ = FILES
    (tmp_path / first.name).write_bytes(b"{}")
    (tmp_path / second.name).write_bytes(b"x" * second.size)
    problems = check_spec_dir(tmp_path)
    assert problems[0] == f"{first.name}: 2 bytes, expected {first.size}"
    assert problems[1].startswith(f"{second.name}: sha256 ")
    assert problems[2:] == [f"{spec.name}: missing" for spec in FILES[2:]]
    assert [p.tarball for p in PACKAGES] == [
        "octokit-openapi-23.0.2.tgz",
        "octokit-webhooks-schemas-7.6.1.tgz",
    ]


async def test_the_manifest_conversion_keeps_to_the_enterprise_contract() -> None:
    _require_descriptions()
    url = "https://ghe.example/api/v3/app-manifests/abc/conversions"
    answer = answering(httpx.Response(201, json=conversion()), enterprise=True, root="/api/v3")
    with respx.mock(assert_all_mocked=True) as router:
        router.post(url).mock(side_effect=answer)
        await convert_code("https://ghe.example/api/v3", "abc")
    assert "apps/create-from-manifest" in CONTRACT.exercised[GHES]
