"""The README documents every setting, and the commands it tells a stranger to run exist."""

from __future__ import annotations

import re
from pathlib import Path

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_every_setting_is_in_the_readme_table() -> None:
    table = {m for m in re.findall(r"^\| `(DBARCH_[A-Z_]+)`", README, re.MULTILINE)}
    rows = "\n".join(line for line in README.splitlines() if line.startswith("| `DBARCH_"))
    missing = [
        f"DBARCH_{name.upper()}"
        for name in Settings.model_fields
        if f"`DBARCH_{name.upper()}`" not in rows
    ]
    assert not missing, f"settings without a row in the README's table: {missing}"
    assert table  # the table is where the rows are found


def test_the_make_targets_the_readme_names_exist() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z-]+):", makefile, re.MULTILINE))
    named = set(re.findall(r"`make ([a-z-]+)`", README)) | set(
        re.findall(r"^make ([a-z-]+)", README, re.MULTILINE)
    )
    assert {"run", "test"} <= named
    assert named <= targets, f"the README names make targets that do not exist: {named - targets}"
