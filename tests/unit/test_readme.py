"""The settings table documents every setting, and the make targets the docs name exist."""

from __future__ import annotations

import re
from pathlib import Path

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
SETTINGS_PAGE = ROOT / "docs" / "operating.md"
#: The README and every page under docs/, each tells a reader what to run.
PAGES = {
    path.relative_to(ROOT).as_posix(): path.read_text()
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
}


def test_every_setting_is_in_the_settings_table() -> None:
    text = SETTINGS_PAGE.read_text()
    rows = "\n".join(line for line in text.splitlines() if line.startswith("| `DBARCH_"))
    missing = [
        f"DBARCH_{name.upper()}"
        for name in Settings.model_fields
        if f"`DBARCH_{name.upper()}`" not in rows
    ]
    assert rows, f"{SETTINGS_PAGE.relative_to(ROOT)} has no settings table (rows `| `DBARCH_…`)"
    assert not missing, f"settings without a row in docs/operating.md's table: {missing}"


def test_the_readme_names_the_two_commands() -> None:
    named = set(re.findall(r"`make ([a-z-]+)`", README)) | set(
        re.findall(r"^make ([a-z-]+)", README, re.MULTILINE)
    )
    assert {"run", "test"} <= named


def test_the_make_targets_the_docs_name_exist() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z-]+):", makefile, re.MULTILINE))
    wrong = {
        f"{page}: make {name}"
        for page, text in PAGES.items()
        for name in set(re.findall(r"`make ([a-z-]+)`", text))
        | set(re.findall(r"^make ([a-z-]+)", text, re.MULTILINE))
        if name not in targets
    }
    assert not wrong, f"the docs name make targets that do not exist: {sorted(wrong)}"
