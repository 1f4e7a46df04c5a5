"""Every relative link in README.md and docs/ reaches a file (and heading) inside the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,}).*?^ {0,3}\1[ \t]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.DOTALL)
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"")
#: Texts that name a design file kept outside this repository.
_OUTSIDE = ("DESIGN" + ".md", "DESIGN" + " §", "../" + "shared")
#: Where the repository's own text lives (generated and vendored files are elsewhere).
_TEXT_DIRS = ("app", "worker", "migrations", "tests", "bench", "deploy", "docs", ".github")
_TEXT_FILES = ("README.md", "Makefile", "pyproject.toml", "app.yml", "Dockerfile")


def prose(markdown: str) -> str:
    """The text outside fenced code blocks and code spans: where links are links."""
    return _CODE_SPAN.sub("", _FENCE.sub("", markdown))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Every anchor a page has: its headings' slugs (numbered when repeated) and HTML anchors."""
    found: set[str] = set(_HTML_ANCHOR.findall(markdown))
    seen: dict[str, int] = {}
    for heading in _HEADING.findall(_FENCE.sub("", markdown)):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """Relative links of ``page`` that leave ``root`` or miss their file or heading."""
    problems: list[str] = []
    for target in _LINK.findall(prose(page.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
            continue  # https:, mailto: … are not files of this repository
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        if not resolved.is_relative_to(root):
            problems.append(f"{target}: points outside the repository")
        elif not resolved.exists():
            problems.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved.read_text()):
            problems.append(f"{target}: no heading #{anchor} in {resolved.relative_to(root)}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page: Path) -> None:
    problems = broken_links(page)
    assert not problems, f"{page.relative_to(ROOT)}: fix or drop these links: {problems}"


def test_the_docs_are_indexed() -> None:
    index = (ROOT / "docs" / "README.md").read_text()
    pages = {p.name for p in (ROOT / "docs").glob("*.md")} - {"README.md"}
    unlisted = {name for name in pages if f"]({name}" not in index}
    assert not unlisted, f"docs/README.md links none of: {sorted(unlisted)}"


def test_nothing_points_to_a_design_file_outside_the_repository() -> None:
    files = [ROOT / name for name in _TEXT_FILES if (ROOT / name).is_file()]
    for directory in _TEXT_DIRS:
        files += [p for p in (ROOT / directory).rglob("*") if p.is_file()]
    hits = [
        f"{path.relative_to(ROOT)}: {needle}"
        for path in files
        if path.suffix in {".py", ".md", ".yml", ".yaml", ".toml", ".json", ".sql", ""}
        and "__pycache__" not in path.parts
        for needle in _OUTSIDE
        if needle in path.read_text(errors="replace")
    ]
    assert not hits, f"these name a file outside the repository; point to docs/ instead: {hits}"


def test_the_checker_catches_each_kind_of_broken_link(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "a.md").write_text("# A\n## Real heading\n")
    page = root / "README.md"
    page.write_text(
        "[ok](docs/a.md#real-heading) [self](#top) [web](https://example.com/x.md)\n"
        "[gone](docs/b.md) [bad](docs/a.md#nope) [out](../elsewhere/notes.md)\n"
        "`[code](ignored.md)`\n# Top\n"
    )
    assert broken_links(page, root) == [
        "docs/b.md: no such file",
        "docs/a.md#nope: no heading #nope in docs/a.md",
        "../elsewhere/notes.md: points outside the repository",
    ]


def test_the_checker_finds_what_it_should() -> None:
    page = "# Top\n## `/ask` twice\n## `/ask` twice\n`[x](nowhere.md)`\n"
    assert anchors(page) == {"top", "ask-twice", "ask-twice-1"}
    assert "nowhere" not in prose(page)
    assert slug("What-if: HypoPG, or builds only with consent") == (
        "what-if-hypopg-or-builds-only-with-consent"
    )
