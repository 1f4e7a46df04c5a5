"""A delivery GitHub refuses for good is finished in the inbox (never enqueued again); a
transient refusal is retried by arq and left unfinished."""

from __future__ import annotations

from typing import Any

import pytest
from arq import Retry

import worker.jobs
from app.adapters.github.errors import GitHubError, GitHubTransient
from app.settings import Settings
from worker.jobs import OUTCOME_CHARS, delivery_job

JOB = {"delivery_id": "d-1", "event": "issue_comment", "action": "created", "installation_id": 7}


class Inbox:
    def __init__(self) -> None:
        self.finished: dict[str, str] = {}

    async def finish_delivery(self, delivery_id: str, outcome: str) -> None:
        self.finished[delivery_id] = outcome


def _ctx(inbox: Inbox) -> dict[str, Any]:
    return {"redis": object(), "settings": Settings(), "store": inbox, "job_try": 1}


def _refusing(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    async def handle(job: dict[str, Any], deps: object) -> str:
        raise error

    monkeypatch.setattr(worker.jobs, "handle", handle)


async def test_a_permanent_refusal_finishes_the_delivery_saying_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox = Inbox()
    message = (
        "the App lacks contents=write for POST /repos/o/r/git/trees (Resource not accessible "
        "by integration); accept the new permissions in the installation settings"
    )
    _refusing(monkeypatch, GitHubError(message, status=403))

    with pytest.raises(GitHubError):  # the job fails (arq does not retry it) …
        await delivery_job(_ctx(inbox), dict(JOB))

    # … and the inbox has it done, so the recovery loop leaves it alone
    assert inbox.finished == {"d-1": f"failed: GitHub 403: {message}"}


async def test_the_outcome_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    inbox = Inbox()
    _refusing(monkeypatch, GitHubError("x" * 10_000, status=422))

    with pytest.raises(GitHubError):
        await delivery_job(_ctx(inbox), dict(JOB))

    assert len(inbox.finished["d-1"]) == OUTCOME_CHARS


async def test_a_transient_refusal_is_retried_and_left_unfinished(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox = Inbox()
    _refusing(monkeypatch, GitHubTransient("GitHub failed (502)", status=502))

    with pytest.raises(Retry):
        await delivery_job(_ctx(inbox), dict(JOB))

    assert inbox.finished == {}
