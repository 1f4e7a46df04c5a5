"""Which pull requests are the bot's: its login, its branch prefix, its meta marker."""

from __future__ import annotations

from app.bot.pulls.ours import bot_pull
from tests.unit.flows.test_feedback import BOT, FP, pull


def test_bot_pull_reads_the_marker_and_refuses_other_pull_requests() -> None:
    found = bot_pull(pull(), BOT)
    assert found is not None
    assert (found.number, found.fingerprint, found.table) == (12, FP, "public.events")
    assert found.descriptor == "add index on events (user_id)"
    assert bot_pull(pull(author="alice"), BOT) is None
    assert bot_pull(pull(branch="feature/x"), BOT) is None


def test_an_issue_comment_counts_only_with_the_marker() -> None:
    issue = {k: v for k, v in pull().items() if k != "head"}
    found = bot_pull(issue, BOT)
    assert found is not None and found.branch is None and found.fingerprint == FP
    assert bot_pull({**issue, "body": "no marker here"}, BOT) is None
