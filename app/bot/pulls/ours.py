"""Which pull requests are the bot's: read from a webhook payload and the PR's meta marker."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.bot.pulls.fixpr import BRANCH_PREFIX, read_meta

__all__ = ["BotPull", "bot_pull"]


@dataclass(frozen=True, slots=True)
class BotPull:
    """One of the bot's pull requests, read from a webhook payload and its meta marker."""

    number: int
    title: str
    body: str
    branch: str | None
    fingerprint: str | None
    table: str | None
    action: str | None

    @property
    def descriptor(self) -> str:
        """What the PR proposes when the store has no descriptor: its title, unprefixed."""
        return self.title.removeprefix("perf(db): ")


def bot_pull(item: Mapping[str, Any] | None, bot_login: str) -> BotPull | None:
    """The pull request (or the issue of a PR comment) when it is the bot's, else None."""
    if not item or (item.get("user") or {}).get("login") != bot_login:
        return None
    branch = (item.get("head") or {}).get("ref")
    if branch is not None and not str(branch).startswith(BRANCH_PREFIX):
        return None
    body = str(item.get("body") or "")
    meta = read_meta(body)
    if meta is None and branch is None:
        return None  # an issue comment's "issue" has no branch: the marker must say it is ours
    return BotPull(
        number=int(item["number"]),
        title=str(item.get("title") or ""),
        body=body,
        branch=None if branch is None else str(branch),
        fingerprint=meta.fingerprint if meta else None,
        table=meta.table if meta else None,
        action=meta.action if meta else None,
    )
