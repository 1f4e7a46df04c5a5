"""What GitHub would render from our Markdown: a checker for tests, on a real CommonMark parser.

``problems(markdown)`` parses with markdown-it-py (CommonMark plus GFM tables and
strikethrough, as GitHub) and lists what data must never produce: HTML other than our own
few tags, images, links outside an allow-list, a live ``@mention`` or a bare URL (which
GitHub would link) in rendered text, table rows whose cell count differs from their
header's (cells split as cmark-gfm splits them). ``code_texts`` gives what ended up as code,
so a test can assert the hostile text is shown there, whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence

from markdown_it import MarkdownIt
from markdown_it.token import Token

#: The hostile identifier of issue 13: a mention, an image, raw HTML, a pipe, code, a comment.
HOSTILE = "md @octocat ![t](https://e.x/p.png) <img src=x> | `x` <!--"
#: More of the same, for the unit fixtures: fences, a heading, a link, entities, a reference.
HOSTILE_LINES = (
    HOSTILE,
    "x\n```\n# owned\n<script>alert(1)</script>\n~~~",
    "``a`` ``` <!-- --> &#64;octocat [l](https://e.x) @org/team octo/repo#1",
    "\\|` | `\\",
)

_PARSER = MarkdownIt("commonmark").enable(["table", "strikethrough"])
#: Our own HTML: hidden markers, <details> sections, small print and line breaks.
_OUR_BLOCK_LINES = (
    re.compile(r"<!-- db-architect:[a-z-]+(?: [A-Za-z0-9+/=]+)? -->"),
    re.compile(r"<details><summary>[^<>`]*</summary>"),
    re.compile(r"</?details>"),
    re.compile(r"<br />"),
    re.compile(r""),
)
_OUR_INLINE = frozenset({"<sub>", "</sub>", "<br />"})
_MENTION = re.compile(r"@[A-Za-z0-9]")
#: GitHub's extended autolinks (markdown-it-py has no linkify here, so the checker looks).
_AUTOLINK = re.compile(r"(?i)\b(?:https?|ftp)://[A-Za-z0-9]|(?:^|[\s(*_~])www\.[A-Za-z0-9]")


def _walk(tokens: Sequence[Token]) -> Iterator[Token]:
    for token in tokens:
        yield token
        if token.children:
            yield from _walk(token.children)


def _inline_text(token: Token) -> str:
    """The rendered text of an inline token outside code (entities and escapes decoded)."""
    parts = []
    for child in token.children or ():
        if child.type in ("text", "text_special"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        else:
            parts.append(" ")
    return "".join(parts)


def _cells(line: str) -> int:
    """Cells in a GFM table row: ``|`` splits unless backslash-escaped (even inside code)."""
    body = line.strip()
    body = body.removeprefix("|")
    count, i, cell = 1, 0, ""
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            cell += body[i : i + 2]
            i += 2
            continue
        if ch == "|":
            count += 1
            cell = ""
        else:
            cell += ch
        i += 1
    return count - 1 if not cell.strip() and body.endswith("|") else count


def _table_problems(markdown: str, tokens: Sequence[Token]) -> Iterator[str]:
    lines = markdown.splitlines()
    for token in tokens:
        if token.type != "table_open" or token.map is None:
            continue
        start, end = token.map
        rows = [line for line in lines[start:end] if line.strip()]
        header = _cells(rows[0])
        for row in rows[2:]:
            if _cells(row) != header:
                yield f"table row has {_cells(row)} cells, its header {header}: {row[:120]!r}"


def problems(markdown: str, *, links: Iterable[str] = ()) -> list[str]:
    """Everything in ``markdown`` that is not inert, as GitHub would render it.

    ``links`` are URL prefixes a link may point to (our own, e.g. the check run's page).
    """
    allowed_links = tuple(links)
    tokens = _PARSER.parse(markdown)
    found: list[str] = []
    for token in _walk(tokens):
        if token.type == "html_block":
            for line in token.content.splitlines():
                if not any(p.fullmatch(line.strip()) for p in _OUR_BLOCK_LINES):
                    found.append(f"HTML block: {line[:120]!r}")
        elif token.type == "html_inline" and token.content not in _OUR_INLINE:
            found.append(f"inline HTML: {token.content[:120]!r}")
        elif token.type == "image":
            found.append(f"image: {token.attrGet('src')!r}")
        elif token.type == "link_open":
            href = str(token.attrGet("href") or "")
            if not href.startswith(allowed_links) or not allowed_links:
                found.append(f"link: {href[:120]!r}")
        elif token.type == "inline":
            shown = _inline_text(token)
            if _MENTION.search(shown):
                found.append(f"mention: {shown[:120]!r}")
            if _AUTOLINK.search(shown):
                found.append(f"bare link: {shown[:120]!r}")
    found += _table_problems(markdown, tokens)
    return found


def assert_inert(markdown: str, *, links: Iterable[str] = ()) -> None:
    """Fail with every problem :func:`problems` finds."""
    found = problems(markdown, links=links)
    assert not found, "not inert:\n" + "\n".join(found)


def code_texts(markdown: str) -> list[str]:
    """The text of every inline code span and code block, as rendered."""
    return [
        token.content
        for token in _walk(_PARSER.parse(markdown))
        if token.type in ("code_inline", "fence", "code_block")
    ]


def in_code(markdown: str, value: str) -> bool:
    """Whether ``value`` (line breaks as spaces) is shown whole inside one code span or block."""
    flat = " ".join(value.splitlines())
    return any(value in c or flat in c for c in code_texts(markdown))


def rendered_text(markdown: str) -> str:
    """The plain text of ``markdown`` outside code, as one string (for wording checks)."""
    return "\n".join(
        _inline_text(token) for token in _walk(_PARSER.parse(markdown)) if token.type == "inline"
    )
