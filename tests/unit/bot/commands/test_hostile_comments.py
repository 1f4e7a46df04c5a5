"""Comment bodies are parsed in linear time: 4× the adversarial body takes about 4× as long.

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


def fill(head: str, unit: str, tail: str = "x", size: int = LIMIT) -> str:
    """``head`` + repeated ``unit`` + ``tail``, ``size`` characters in all."""
    return head + unit * ((size - len(head) - len(tail)) // len(unit)) + tail


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


def _best_of_five(parse: Callable[[str], object], text: str) -> float:
    took = []
    for _ in range(5):
        started = time.perf_counter()
        with contextlib.suppress(CommandError, PrCommandError, AskError):  # a refusal answers
            parse(text)
        took.append(time.perf_counter() - started)
    return min(took)


@pytest.mark.parametrize("parser", list(PARSERS))
@pytest.mark.parametrize("body", list(BODIES))
def test_a_64_kib_adversarial_comment_is_parsed_in_linear_time(parser: str, body: str) -> None:
    """A ratio within one run, not a wall-clock bound: a loaded machine slows both sizes."""
    whole = BODIES[body]
    quarter = whole[: len(whole) // 4 - 1] + whole[-1]
    small = _best_of_five(PARSERS[parser], quarter)
    large = _best_of_five(PARSERS[parser], whole)
    # linear: about 4×; the quadratic parsers this guards against took 16× (4 to 37 s)
    assert large <= 8 * small + 0.05, f"{parser} on {body}: {small:.4f} s → {large:.4f} s"
    assert large < 5.0, f"{parser} on {body}: {large:.2f} s"
