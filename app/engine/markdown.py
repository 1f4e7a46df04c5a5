"""Inert Markdown: the only way untrusted text enters what GitHub renders.

Anything that comes from the target database (names, statement text, plans, definitions,
messages that embed them), from GitHub users (questions, reviewers' words) or from Claude is
rendered through these functions, and nothing else, before it reaches a pull request, a
check run or a comment. What they return renders as the text it was given, never as markup:

- :func:`code`: an inline code span whose delimiter is longer than any backtick run inside
  (padded when the text starts or ends with a backtick); line breaks become spaces, so the
  span cannot start a heading, a fence or an HTML block on the next line. ``cell=True`` also
  escapes ``|`` the way GitHub's tables need (a pipe splits a cell even inside code).
- :func:`fence`: a fenced block whose fence is longer than any backtick run inside.
- :func:`text`: one line of plain text with every Markdown and HTML character escaped,
  mentions (``@name``) and bare links (``https://…``, ``www.…``) broken with a zero-width
  space, and a leading block marker (``#``, ``-``, ``+``, ``1.``) escaped. Safe in a table
  cell too.
- :func:`inline`: one line of our own sentence whose backticked parts are shown as code,
  every part made inert as above (for reasons and problems that quote names in backticks).
- :func:`mention` mentions someone on purpose, only when the name is a GitHub login;
  :func:`plain` is for the one-line fields that are not Markdown (a pull request's title).
- :func:`quote`: a blockquote of someone's words. :func:`prose`: paragraphs of text, keeping
  only links to hosts the caller allows.
- :func:`cut` bounds text with a visible ``… (cut)`` before it is escaped or fenced, and
  :func:`fit` bounds a whole document at a line boundary, closing an open fence and any
  ``<details>``, so a cut never leaves data outside its code.

Control characters and Unicode bidirectional overrides become U+FFFD everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal
from urllib.parse import urlsplit

__all__ = [
    "CUT_MARK",
    "DOC_HOSTS",
    "MAX_PROSE",
    "code",
    "cut",
    "fence",
    "fit",
    "inline",
    "mention",
    "plain",
    "prose",
    "quote",
    "shorten",
    "text",
]

CUT_MARK = "… (cut)"
#: Where a sentence ends: . ! ? or … before a space or the end (a closing quote may follow).
_SENTENCE_END = re.compile(r"[.!?…](?=[\"')\]]?(?:\s|$))")
#: The only hosts a link in Claude's prose may point to (PostgreSQL's documentation).
DOC_HOSTS = ("postgresql.org",)
#: Claude's paragraphs as shown (the adapter already bounds them to about 1,200 characters).
MAX_PROSE = 2_000
#: Stops ``@name`` from being a mention (GitHub finds mentions in the rendered text).
_BREAK = "\u200b"
#: Control characters (tab and line breaks are folded by the callers), bidi overrides, BOM.
_UNSAFE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]"
)
#: Markup anywhere in a line (``!`` needs ``[``; ``#`` and ``@`` are handled apart), and runs
#: of ``_``, which are markup unless they join two letters or digits (``customer_id``).
_SPECIAL = re.compile(r"[\\`*\[\]<>&|~$]|_+")
_LEADING_MARK = re.compile(r"[#+-]")
_LEADING_NUMBER = re.compile(r"(\d{1,9})([.)])(?=\s|$)")
#: What GitHub turns into a link by itself (``https://…``, ``www.…``).
_AUTOLINK = re.compile(r"(?i)(?<=:)(?=//)|(?<=www)(?=\.)")
_BACKTICKS = re.compile(r"`+")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
#: A code span as CommonMark reads one: a backtick run, text, the same run again.
_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)")
_PIPE = re.compile(r"(\\*)\|")
_LANG = re.compile(r"[^A-Za-z0-9_+.-]")
_LINK = re.compile(r"\[([^\[\]\n]{1,200})\]\((https://[A-Za-z0-9._~:/?#!$&'*+,;=%-]{1,500})\)")
_FENCE_LINE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
#: A GitHub login (an App's bot account ends in ``[bot]``).
_LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?")


def _clean(value: str) -> str:
    return _UNSAFE.sub("\ufffd", value)


def _fold(value: str) -> str:
    return " ".join(_clean(value).split())


def cut(value: str, limit: int) -> str:
    """``value`` at most ``limit`` characters, ending in :data:`CUT_MARK` when it was longer.

    >>> cut("SELECT * FROM orders WHERE id = $1", 20)
    'SELECT * FROM… (cut)'
    >>> cut("short", 20)
    'short'
    """
    if len(value) <= limit:
        return value
    return value[: max(limit - len(CUT_MARK), 0)] + CUT_MARK[: max(limit, 0)]


def shorten(text: str, limit: int, *, at: Literal["char", "word", "sentence"] = "char") -> str:
    """``text`` at most ``limit`` characters; the one way prose and names are cut.

    ``char`` cuts anywhere, ``word`` at the last space, ``sentence`` after the last sentence
    end in the final two thirds (else at a word). A cut that is not at a sentence end ends in
    ``…``.

    >>> shorten("orders_created_at_idx", 10)
    'orders_cr…'
    >>> shorten("add index on orders (customer_id, created_at)", 30, at="word")
    'add index on orders…'
    >>> shorten("It is faster. It also costs writes on every insert.", 30, at="sentence")
    'It is faster.'
    """
    if len(text) <= limit:
        return text
    if at == "sentence":
        head = text[:limit]
        ends = [match.end() for match in _SENTENCE_END.finditer(head)]
        if ends and ends[-1] >= limit // 3:
            return head[: ends[-1]].rstrip()
    kept = text[: max(limit - 1, 0)]
    if at != "char":
        space = kept.rfind(" ")
        kept = kept[:space] if space > 0 else kept
        kept = kept.rstrip(" \t\n,(")
    return kept.rstrip() + "…"


def _special(match: re.Match[str]) -> str:
    found, whole = match.group(), match.string
    if found[0] == "_":
        before = whole[match.start() - 1] if match.start() else " "
        after = whole[match.end()] if match.end() < len(whole) else " "
        if before.isalnum() and after.isalnum():
            return found  # inside a word: never emphasis
        return "\\_" * len(found)
    return "\\" + found


def _escape(value: str) -> str:
    """Backslash-escape markup characters, break mentions and bare links (no folding)."""
    escaped = _SPECIAL.sub(_special, value)
    return _AUTOLINK.sub(_BREAK, escaped.replace("@", "@" + _BREAK))


def _lead(value: str) -> str:
    """Escape a block marker at the start, so no heading, quote or list begins here."""
    if _LEADING_MARK.match(value):
        return "\\" + value
    return _LEADING_NUMBER.sub(r"\1\\\2", value, count=1)


def text(value: str, limit: int | None = None) -> str:
    r"""``value`` as one line of plain text (cut to ``limit`` first): no markup survives.

    >>> text("md @octocat ![t](https://e.x/p.png) <img src=x> | `x` <!--")
    'md @\u200boctocat !\\[t\\](https:\u200b//e.x/p.png) \\<img src=x\\> \\| \\`x\\` \\<!--'
    >>> text("# 1 see #12"), text("1. first"), text("customer_id _x_")
    ('\\# 1 see #12', '1\\. first', 'customer_id \\_x\\_')
    """
    folded = _fold(value)
    if limit is not None:
        folded = cut(folded, limit)
    return _lead(_escape(folded))


def _pipes(match: re.Match[str]) -> str:
    """An odd number of backslashes before each ``|``, as GitHub's table cells need."""
    slashes = match.group(1)
    return slashes + ("\\" if len(slashes) % 2 == 0 else "\\\\") + "|"


def code(value: str, limit: int | None = None, *, cell: bool = False) -> str:
    r"""``value`` as an inline code span (cut to ``limit`` first), on one line.

    >>> code("orders"), code("a`b"), code("`x`"), code("a\n# b")
    ('`orders`', '``a`b``', '`` `x` ``', '`a # b`')
    >>> code("a | b", cell=True)
    '`a \\| b`'
    """
    clean = _LINE_BREAK.sub(" ", _clean(value))
    if limit is not None:
        clean = cut(clean, limit)
    if not clean:
        return "` `"
    longest = max((len(run) for run in _BACKTICKS.findall(clean)), default=0)
    tick = "`" * (longest + 1)
    pad = (
        clean[0] == "`"
        or clean[-1] == "`"
        or (clean[0] == " " and clean[-1] == " " and bool(clean.strip(" ")))
    )
    if cell:
        clean = _PIPE.sub(_pipes, clean)
    return f"{tick} {clean} {tick}" if pad else f"{tick}{clean}{tick}"


def fence(value: str, lang: str = "text", limit: int | None = None) -> str:
    r"""``value`` as a fenced block (cut to ``limit`` first) that no line inside can close.

    >>> print(fence("a\n```\nb", "sql"))
    ````sql
    a
    ```
    b
    ````
    """
    clean = _LINE_BREAK.sub("\n", _clean(value)).rstrip("\n")
    if limit is not None:
        clean = cut(clean, limit)
    longest = max((len(run) for run in _BACKTICKS.findall(clean)), default=0)
    tick = "`" * max(3, longest + 1)
    return f"{tick}{_LANG.sub('', lang)}\n{clean}\n{tick}"


def inline(message: str, limit: int | None = None, *, cell: bool = False) -> str:
    r"""One line of our own sentence whose ``backticked`` parts become code, all of it inert.

    For reasons and problems that embed names: a name in backticks is shown as code, the
    rest as :func:`text`. Whatever the message holds, every part goes through one of them.

    >>> inline("`<b>` is not a column of `orders`")
    '`<b>` is not a column of `orders`'
    >>> inline("index @x on t (a|b)", cell=True)
    'index @\u200bx on t (a\\|b)'
    >>> inline("a fence (```` ```sql ````) or `a")
    'a fence (```` ```sql ````) or \\`a'
    """
    folded = _fold(message)
    if limit is not None:
        folded = cut(folded, limit)
    out: list[str] = []
    at = 0
    for match in _SPAN.finditer(folded):
        out.append(_escape(folded[at : match.start()]))
        content = match.group(2)
        if content.startswith(" ") and content.endswith(" ") and content.strip(" "):
            content = content[1:-1]  # the padding CommonMark strips
        out.append(code(content, cell=cell))
        at = match.end()
    out.append(_escape(folded[at:]))
    shown = "".join(out)
    return shown if folded.startswith("`") else _lead(shown)


def mention(login: str) -> str:
    r"""``@login``: the one mention we write on purpose, only for what is a GitHub login.

    >>> mention("alice"), mention("dependabot[bot]"), mention("x <img>")
    ('@alice', '@dependabot\\[bot\\]', '@\u200bx \\<img\\>')
    """
    if _LOGIN.fullmatch(login):
        return "@" + login.replace("[", "\\[").replace("]", "\\]")
    return text("@" + login, 60)


def plain(value: str) -> str:
    r"""A one-line field GitHub shows as text (a pull request's title): no mention, no control.

    Nothing is escaped (the field is not Markdown); ``@`` is broken as in :func:`text`.

    >>> plain("perf(db): add index on @team\nx")
    'perf(db): add index on @​team x'
    """
    return _fold(value).replace("@", "@" + _BREAK)


def quote(value: str, limit: int | None = None) -> str:
    r"""Someone's words as a one-line blockquote (cut to ``limit`` first).

    >>> quote("@team please <b>no</b>")
    '> @\u200bteam please \\<b\\>no\\</b\\>'
    """
    return "> " + text(value, limit)


def _allowed(url: str, hosts: Iterable[str]) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return any(host == allowed or host.endswith("." + allowed) for allowed in hosts)


def _paragraph(value: str, hosts: tuple[str, ...]) -> str:
    out: list[str] = []
    at = 0
    for match in _LINK.finditer(value):
        out.append(_escape(value[at : match.start()]))
        label, url = match.group(1), match.group(2)
        if hosts and _allowed(url, hosts):
            out.append(f"[{_escape(label)}]({url})")
        else:
            out.append(_escape(label))
        at = match.end()
    out.append(_escape(value[at:]))
    return _lead("".join(out))


def prose(value: str, limit: int | None = None, *, links: Iterable[str] = ()) -> str:
    r"""Paragraphs of plain text (cut to ``limit`` first); a link stays only to ``links`` hosts.

    >>> print(prose("See [docs](https://www.postgresql.org/docs/) *now*.\n\n[x](https://e.x)",
    ...             links=("postgresql.org",)))
    See [docs](https://www.postgresql.org/docs/) \*now\*.
    <BLANKLINE>
    x
    """
    clean = _LINE_BREAK.sub("\n", _clean(value)).strip()
    if limit is not None:
        clean = cut(clean, limit)
    hosts = tuple(h.lower() for h in links)
    paragraphs = (" ".join(p.split()) for p in re.split(r"\n[ \t]*\n", clean))
    return "\n\n".join(_paragraph(p, hosts) for p in paragraphs if p)


def _fence_state(line: str, state: tuple[str, int] | None) -> tuple[str, int] | None:
    """Whether a top-level fence is open after ``line`` (char and length of its fence)."""
    match = _FENCE_LINE.fullmatch(line.rstrip("\n"))
    if match is None:
        return state
    run, rest = match.group(1), match.group(2)
    if state is None:
        if run[0] == "`" and "`" in rest:
            return None  # not a fence: a backtick fence's info string holds no backtick
        return run[0], len(run)
    closes = run[0] == state[0] and len(run) >= state[1] and not rest.strip()
    return None if closes else state


def fit(markdown: str, limit: int, note: str) -> str:
    r"""``markdown`` within ``limit`` characters: whole lines kept, then closers and ``note``.

    When it is too long, the longest run of whole lines that fits is kept, a fence left
    open is closed and every ``<details>`` our own lines opened is closed, then ``note``
    (trusted text) says so. A line is never split, so no data leaves its code span.

    >>> fit("a\n```\nx\ny\n```\nb\n" + "c" * 40, 19, "(cut)")
    'a\n```\nx\n```\n\n(cut)\n'
    """
    if len(markdown) <= limit:
        return markdown
    tail = f"\n{note}\n"
    lines = [line if line.endswith("\n") else line + "\n" for line in markdown.splitlines(True)]
    kept, closers = 0, ""
    size = 0
    state: tuple[str, int] | None = None
    details = 0
    for line in lines:
        if state is None:
            details += line.startswith("<details") - line.startswith("</details>")
        state = _fence_state(line, state)
        needed = (state[0] * state[1] + "\n" if state else "") + "</details>\n" * max(details, 0)
        size += len(line)
        if size + len(needed) + len(tail) > limit:
            break
        kept, closers = kept + 1, needed
    if not kept and len(tail) > limit:
        return tail[:limit]
    return "".join(lines[:kept]) + closers + tail
