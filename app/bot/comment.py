"""The one reader of GitHub comments: which lines are prose a command may start on.

Lines inside code fences, ``>`` quotes and HTML comments are never commands. Fences follow
CommonMark as GitHub renders it: three or more backticks or tildes indented at most three
spaces open one (a backtick fence's info string may not hold a backtick, else the line is
inline code); the same character, at least as long, with nothing after it, closes it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

__all__ = ["Line", "command_lines", "lines", "shown_word"]

_FENCE = re.compile(r"[ \t]{0,3}(?P<fence>`{3,}|~{3,})(?P<info>.*)")
_QUOTE = re.compile(r"[ \t]{0,3}>")
#: How much of a word the user wrote an error message quotes back.
SHOWN_WORD_CHARS = 40


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a comment and where it stands: prose, a fence line, fenced code, or skipped."""

    text: str
    kind: Literal["text", "open", "code", "close", "skip"]
    #: The first word of an opening fence's info string, lower-cased ("" when none).
    info: str = ""


def lines(body: str) -> Iterator[Line]:
    """Classify every line of ``body``.

    >>> [line.kind for line in lines("/audit\\n```sql\\nSELECT 1\\n```\\n> quoted")]
    ['text', 'open', 'code', 'close', 'skip']
    >>> [line.kind for line in lines("``` `not a fence`\\n/audit")]
    ['text', 'text']
    """
    fence: str | None = None
    in_comment = False
    for line in body.splitlines():
        if in_comment:
            in_comment = "-->" not in line
            yield Line(line, "skip")
            continue
        marker = _FENCE.match(line)
        if fence is not None:
            if marker and _closes(marker, fence):
                fence = None
                yield Line(line, "close")
            else:
                yield Line(line, "code")
            continue
        if marker and not (marker["fence"][0] == "`" and "`" in marker["info"]):
            fence = marker["fence"]
            info = marker["info"].strip().split(maxsplit=1)
            yield Line(line, "open", info[0].lower() if info else "")
            continue
        if line.lstrip().startswith("<!--"):
            in_comment = "-->" not in line
            yield Line(line, "skip")
            continue
        yield Line(line, "skip" if _QUOTE.match(line) else "text")


def command_lines(body: str) -> Iterator[str]:
    """The prose lines of ``body``: outside code fences, quotes and HTML comments."""
    return (line.text for line in lines(body) if line.kind == "text")


def _closes(marker: re.Match[str], fence: str) -> bool:
    """A closing fence: the same character, at least as long, nothing after it."""
    found = marker["fence"]
    return found[0] == fence[0] and len(found) >= len(fence) and not marker["info"].strip()


def shown_word(text: str) -> str:
    """A word the user wrote, safe inside `` `…` `` in our reply and at most 40 characters.

    >>> shown_word("--min-`confidence`")
    "--min-'confidence'"
    """
    clean = text.replace("`", "'")
    return clean if len(clean) <= SHOWN_WORD_CHARS else clean[: SHOWN_WORD_CHARS - 1] + "…"
