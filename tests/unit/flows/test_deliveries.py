"""Deliveries become the right actions: commands need write access, our bot is never obeyed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from app.adapters.github.models import CheckRun, FixChange, Published, PullInfo, RepoInfo
from app.flows.deliveries import DeliveryDeps, handle
from app.flows.requests import AuditRequest
from tests import payloads
from tests.fakes import DictMemo


class Recorder:
    """A repository that records what the flow asked of it (reader and effects in one)."""

    dry_run = False

    def __init__(self, permission: str = "write") -> None:
        self.calls: list[tuple[str, Any]] = []
        self._permission = permission
        self._next_id = 900

    async def repo_info(self) -> RepoInfo:
        return RepoInfo("main", "a" * 40)

    async def file_text(self, path: str, ref: str) -> str | None:
        return None

    async def python_files(self, directory: str, ref: str) -> dict[str, str]:
        return {}

    async def bot_pulls(self, branch_prefix: str) -> list[PullInfo]:
        return []

    async def permission(self, login: str) -> str:
        self.calls.append(("permission", login))
        return self._permission

    async def pull(self, number: int) -> PullInfo | None:
        self.calls.append(("pull", number))
        created = datetime(2026, 11, 27, tzinfo=UTC)
        url = f"https://github.com/acme/shop/pull/{number}"
        return PullInfo(
            number, "open", False, "db-architect/index/events-3f9a1c2b", "t", "", created, url, "b"
        )

    async def react(self, comment_id: int, content: str) -> None:
        self.calls.append(("react", (comment_id, content)))

    async def comment(self, issue_number: int, body: str, comment_id: int | None = None) -> int:
        self.calls.append(("comment", (issue_number, body, comment_id)))
        self._next_id += 1
        return comment_id or self._next_id

    async def check_run(self, run: CheckRun) -> int:
        self.calls.append(("check_run", (run.head_sha, run.status, run.external_id)))
        return 4242

    async def publish(self, change: FixChange) -> Published:
        raise AssertionError("deliveries never publish")

    async def delete_branch(self, branch: str) -> None:
        self.calls.append(("delete_branch", branch))

    async def close_pull(self, number: int) -> None:
        self.calls.append(("close_pull", number))


class Lifecycle:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.paused: set[int] = set()

    async def upsert_installation(self, installation_id: int, account: str) -> None:
        self.calls.append(("upsert", (installation_id, account)))

    async def suspend_installation(self, installation_id: int, suspended: bool) -> None:
        (self.paused.add if suspended else self.paused.discard)(installation_id)
        self.calls.append(("suspend", (installation_id, suspended)))

    async def purge_installation(self, installation_id: int) -> None:
        self.calls.append(("purge", installation_id))

    async def add_repositories(self, installation_id: int, repos: list[tuple[int, str]]) -> None:
        self.calls.append(("add", repos))

    async def remove_repositories(self, installation_id: int, repo_ids: list[int]) -> None:
        self.calls.append(("remove", repo_ids))

    async def is_paused(self, installation_id: int) -> bool:
        return installation_id in self.paused


def setup(permission: str = "write") -> tuple[DeliveryDeps, Recorder, list[AuditRequest]]:
    repo = Recorder(permission)
    queued: list[AuditRequest] = []

    async def enqueue(request: AuditRequest) -> bool:
        queued.append(request)
        return True

    async def github(ref: object) -> tuple[Recorder, Recorder]:
        return repo, repo

    deps = DeliveryDeps(
        bot_login="db-architect[bot]",
        github=github,  # type: ignore[arg-type]
        enqueue_audit=enqueue,
        memo=DictMemo(),
        lifecycle=Lifecycle(),
    )
    return deps, repo, queued


def job(
    event: str, payload: dict[str, Any], delivery_id: str = "d-1", *, checked: bool = True
) -> dict[str, Any]:
    return payloads.queued(event, payload, delivery_id, checked=checked)


async def test_audit_comment_reacts_checks_permission_replies_and_queues() -> None:
    deps, repo, queued = setup()
    body = "Could you look?\n/audit --dry-run --tables orders"

    outcome = await handle(job("issue_comment", payloads.issue_comment(body)), deps)

    assert outcome == "audit queued"
    assert [c[0] for c in repo.calls] == ["react", "permission", "comment", "check_run"]
    assert repo.calls[3][1] == ("a" * 40, "queued", "d-1")
    assert repo.calls[0][1] == (5550001, "eyes") and repo.calls[1][1] == "alice"
    (request,) = queued
    assert (request.owner, request.name, request.trigger) == ("acme", "shop", "comment")
    assert request.dry_run is True and request.tables == ("orders",)
    assert request.issue_number == 7 and request.comment_id == 901
    assert request.trigger_key == "d-1"


async def test_a_second_run_of_the_job_edits_its_reply_instead_of_adding_one() -> None:
    deps, repo, _ = setup()
    delivery = job("issue_comment", payloads.issue_comment("/audit"))

    await handle(delivery, deps)
    await handle(delivery, deps)

    comments = [c[1] for c in repo.calls if c[0] == "comment"]
    assert comments[0][2] is None and comments[1][2] == 901


@pytest.mark.parametrize("permission", ["read", "triage", "none"])
async def test_people_without_write_access_are_refused_politely(permission: str) -> None:
    deps, repo, queued = setup(permission)

    outcome = await handle(job("issue_comment", payloads.issue_comment("/audit")), deps)

    assert outcome.startswith("refused") and not queued
    (reply,) = [c[1][1] for c in repo.calls if c[0] == "comment"]
    assert "@alice" in reply and "write" in reply


@pytest.mark.parametrize(
    "payload",
    [
        payloads.issue_comment("nice work"),
        payloads.issue_comment("/audit", kind="Bot", login="renovate[bot]"),
        payloads.issue_comment("/audit", login="db-architect[bot]", kind="Bot"),
        payloads.issue_comment("/audit", on_pull=True),
    ],
    ids=["no-command", "other-bot", "our-bot", "on-a-pull-request"],
)
async def test_no_action_without_a_human_command_in_an_issue(payload: dict[str, Any]) -> None:
    deps, repo, queued = setup()

    outcome = await handle(job("issue_comment", payload), deps)

    assert outcome.startswith("ignored") and not queued and not repo.calls


async def test_a_bad_option_gets_the_usage_and_no_audit() -> None:
    deps, repo, queued = setup()

    outcome = await handle(job("issue_comment", payloads.issue_comment("/audit --fast")), deps)

    assert outcome == "refused: bad command" and not queued
    (reply,) = [c[1][1] for c in repo.calls if c[0] == "comment"]
    assert "--fast" in reply and "Usage" in reply


async def test_a_queued_check_run_is_created_once_per_request() -> None:
    deps, repo, queued = setup()
    delivery = job("repository_dispatch", payloads.repository_dispatch())

    await handle(delivery, deps)
    await handle(delivery, deps)  # the job ran twice

    assert [c[0] for c in repo.calls].count("check_run") == 1 and len(queued) == 2
    assert await deps.memo.get(queued[0].check_run_key) == "4242"


async def test_dispatch_narrows_tables_and_asks_for_a_dry_run() -> None:
    deps, _, queued = setup()
    payload = payloads.repository_dispatch({"tables": "orders, events", "dry_run": True})

    assert await handle(job("repository_dispatch", payload), deps) == "audit queued"

    (request,) = queued
    assert request.trigger == "dispatch" and request.dry_run is True
    assert request.tables == ("orders", "events")


async def test_dispatch_of_another_event_type_is_ignored() -> None:
    deps, _, queued = setup()
    payload = payloads.repository_dispatch() | {"action": "deploy"}

    assert (await handle(job("repository_dispatch", payload), deps)).startswith("ignored")
    assert not queued


@pytest.mark.parametrize(
    ("action", "identifier", "dry_run"),
    [
        ("rerequested", None, None),
        ("requested_action", "dry_run", True),
        ("requested_action", "open_prs", False),
    ],
)
async def test_check_run_buttons_start_audits(
    action: str, identifier: str | None, dry_run: bool | None
) -> None:
    deps, _, queued = setup()

    await handle(job("check_run", payloads.check_run(action, identifier)), deps)

    (request,) = queued
    assert request.trigger == "check_run" and request.dry_run is dry_run


async def test_open_prs_button_needs_write_access() -> None:
    deps, _, queued = setup("read")

    outcome = await handle(
        job("check_run", payloads.check_run("requested_action", "open_prs")), deps
    )

    assert outcome.startswith("refused") and not queued


async def test_installation_lifecycle_onboards_pauses_and_purges() -> None:
    deps, _, queued = setup()
    store = deps.lifecycle
    assert isinstance(store, Lifecycle)

    assert await handle(job("installation", payloads.installation_event("created")), deps) == (
        "onboarded 1 repositories"
    )
    assert await handle(job("installation", payloads.installation_event("suspend")), deps) == (
        "paused"
    )
    paused = await handle(job("issue_comment", payloads.issue_comment("/audit")), deps)
    assert await handle(job("installation", payloads.installation_event("deleted")), deps) == (
        "purged"
    )

    assert paused == "ignored: installation suspended" and not queued
    assert [c[0] for c in store.calls] == ["upsert", "add", "suspend", "purge"]
    assert store.calls[1][1] == [(payloads.REPO_ID, payloads.FULL_NAME)]


async def test_our_closed_pull_request_loses_its_branch_and_says_what_closing_means() -> None:
    deps, repo, _ = setup()
    payload = payloads.pull_request_closed(payloads.pull(state="closed"), login="alice")

    outcome = await handle(job("pull_request", payload), deps)

    assert outcome.startswith("closed unmerged")
    assert repo.calls[0] == ("delete_branch", "db-architect/add-index/orders-3f9a1c2b")
    assert "closed without merging" in repo.calls[1][1][1]


async def test_someone_elses_pull_request_is_left_alone() -> None:
    deps, repo, _ = setup()
    pull = payloads.pull(number=3, user="bob", branch="feature", state="merged")

    outcome = await handle(job("pull_request", payloads.pull_request_closed(pull)), deps)

    assert outcome.startswith("ignored") and not repo.calls


@pytest.mark.parametrize(
    "client_payload",
    [["orders"], {"tables": 3}, {"dry_run": "yes"}, {"min_confidence": 0.5}],
    ids=["not-an-object", "tables", "dry-run", "bar-lowered"],
)
async def test_a_malformed_dispatch_payload_is_refused_without_an_audit(
    client_payload: object,
) -> None:
    deps, _, queued = setup()
    payload = payloads.repository_dispatch() | {"client_payload": client_payload}

    # GitHub itself refuses a client_payload that is no object: that one is hostile input
    delivery = job("repository_dispatch", payload, checked=isinstance(client_payload, dict))
    outcome = await handle(delivery, deps)

    assert outcome.startswith("refused: client_payload") and not queued


async def test_dispatch_may_raise_the_bar() -> None:
    deps, _, queued = setup()
    payload = payloads.repository_dispatch({"tables": ["orders"], "min_confidence": 0.9})

    await handle(job("repository_dispatch", payload), deps)

    assert queued[0].min_confidence == 0.9 and queued[0].tables == ("orders",)


async def test_the_ignore_notice_is_posted_once_even_if_the_job_runs_twice() -> None:
    deps, repo, _ = setup()
    closed = payloads.pull_request_closed(payloads.pull(state="closed"))
    delivery = job("pull_request", closed)

    await handle(delivery, deps)
    await handle(delivery, deps)

    comments = [c[1] for c in repo.calls if c[0] == "comment"]
    assert [c[2] for c in comments] == [None, 901]  # created, then edited in place


# ---------------------------------------------------------------------- /ask


def ask_setup(permission: str = "write") -> tuple[DeliveryDeps, Recorder, list[Any]]:
    deps, repo, _ = setup(permission)
    asked: list[Any] = []

    async def ask(reader: Any, command: Any) -> str:
        asked.append(command)
        return "| plan | n |\n|---|---|\n| 1 | 400 |"

    deps.ask = ask
    return deps, repo, asked


async def test_ask_in_a_private_repository_is_answered_in_one_comment() -> None:
    deps, repo, asked = ask_setup()
    payload = payloads.issue_comment("/ask how many accounts per plan?")

    assert await handle(job("issue_comment", payload), deps) == "answered /ask"

    (command,) = asked
    assert command.question == "how many accounts per plan?" and command.sql is None
    assert [c[0] for c in repo.calls] == ["react", "permission", "comment"]
    body = repo.calls[-1][1][1]
    assert body.startswith("@alice") and "| 1 | 400 |" in body


@pytest.mark.parametrize(
    ("permission", "private", "body", "expected", "said"),
    [
        ("read", True, "/ask how many?", "refused: alice has read access", "write access"),
        ("write", False, "/ask how many?", "refused: /ask in a public repository", "public"),
        ("write", True, "/ask", "refused: bad /ask", "Usage"),
    ],
    ids=["reader", "public-repository", "empty"],
)
async def test_ask_is_refused_politely(
    permission: str, private: bool, body: str, expected: str, said: str
) -> None:
    deps, repo, asked = ask_setup(permission)
    payload = payloads.issue_comment(body)
    payload["repository"]["private"] = private

    assert await handle(job("issue_comment", payload), deps) == expected

    assert asked == []
    (reply,) = [c[1][1] for c in repo.calls if c[0] == "comment"]
    assert said in reply
