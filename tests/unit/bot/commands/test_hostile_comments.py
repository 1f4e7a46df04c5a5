"""Comment bodies are parsed in linear time: adversarial 64 KiB bodies in under a second each.

GitHub allows 65,536 characters per comment. Runs of blanks between words made the command
regexes and the feedback clause splitter backtrack quadratically (seconds to tens of seconds
per comment, on the worker).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import pytest

from app.bot.commands.ask import AskError, parse_ask_command
from app.bot.commands.audit import CommandError, parse_audit_command
from app.bot.commands.pr import PrCommandError, parse_pr_command
from app.bot.memory.feedback import classify, themes

LIMIT = 65_536


def fill(head: str, unit: str, tail: str = "x") -> str:
    """``head`` + repeated ``unit`` + ``tail``, 64 KiB in all."""
    return head + unit * ((LIMIT - len(head) - len(tail)) // len(unit)) + tail


BODIES = {
    "audit blanks": fill("/audit x", " \t"),
    "audit trailing": fill("/audit x", " ", ""),
    "audit options": fill("/audit ", "--tables "),
    "mention blanks": fill("@db-architect x", " \t"),
    "ask blanks": fill("/ask x", " \t"),
    "blank lines": fill("", " \n"),
    "backticks": fill("", "`"),
    "fences": fill("", "```\n"),
    "quotes": fill("", "> "),
    "words and blanks": fill("it is ", "slow  \t  "),
    "but clauses": fill("", " but"),
    "negations": fill("", "not no never "),
}
PARSERS: dict[str, Callable[[str], object]] = {
    "audit": parse_audit_command,
    "pr": parse_pr_command,
    "ask": parse_ask_command,
    "themes": themes,
    "classify": lambda body: classify("issue_comment", text=body),
}


@pytest.mark.parametrize("parser", list(PARSERS))
@pytest.mark.parametrize("body", list(BODIES))
def test_a_64_kib_adversarial_comment_is_parsed_quickly(parser: str, body: str) -> None:
    text = BODIES[body]
    started = time.perf_counter()
    with contextlib.suppress(CommandError, PrCommandError, AskError):  # a refusal answers too
        PARSERS[parser](text)
    took = time.perf_counter() - started
    assert took < 1.0, f"{parser} on {body}: {took:.2f} s"  # was 4 to 37 s before the fix
