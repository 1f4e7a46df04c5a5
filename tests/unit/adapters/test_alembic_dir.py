"""Reading the head of an Alembic versions directory and writing drafts into it."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.adapters.alembic_dir import VersionsDirError, chain_head, write_drafts
from app.engine.draft import FixDraft


def _revision(directory: Path, rev: str, down: str, *, name: str | None = None) -> None:
    body = f'"""r."""\n\nrevision: str = "{rev}"\ndown_revision = {down}\n'
    (directory / (name or f"{rev}_x.py")).write_text(body)


def test_empty_directory_has_no_head(tmp_path: Path) -> None:
    assert chain_head(tmp_path) is None


def test_linear_history_head(tmp_path: Path) -> None:
    _revision(tmp_path, "a1", "None")
    _revision(tmp_path, "b2", "'a1'")
    _revision(tmp_path, "c3", '"b2"')
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "notes.txt").write_text("revision = 'zz'")
    assert chain_head(tmp_path) == "c3"


def test_merge_revision_points_to_both_parents(tmp_path: Path) -> None:
    _revision(tmp_path, "a1", "None")
    _revision(tmp_path, "b2", "'a1'")
    _revision(tmp_path, "c3", "'a1'")
    _revision(tmp_path, "m4", "('b2', 'c3')")
    assert chain_head(tmp_path) == "m4"


def test_several_heads_is_an_error(tmp_path: Path) -> None:
    _revision(tmp_path, "a1", "None")
    _revision(tmp_path, "b2", "'a1'")
    _revision(tmp_path, "c3", "'a1'")
    with pytest.raises(VersionsDirError, match=r"several heads \(b2, c3\)"):
        chain_head(tmp_path)


def test_user_code_is_never_imported(tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    body = f"open({str(marker)!r}, 'w').close()\nrevision = 'a1'\ndown_revision = None\n"
    (tmp_path / "a1_x.py").write_text(body)
    assert chain_head(tmp_path) == "a1"
    assert not marker.exists()


def test_non_literal_revision_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a1_x.py").write_text("revision = make_id()\n")
    with pytest.raises(VersionsDirError, match="not a literal"):
        chain_head(tmp_path)


def test_write_drafts_refuses_to_overwrite_a_different_file(tmp_path: Path) -> None:
    draft = FixDraft("abc", None, "abc_add.py", "revision = 'abc'\n")
    other = FixDraft("def", "abc", "def_add.py", "revision = 'def'\n")
    versions = tmp_path / "versions"
    assert write_drafts([draft], versions) == (versions / "abc_add.py",)
    write_drafts([draft], versions)  # identical content: fine
    (versions / "def_add.py").write_text("something else")
    with pytest.raises(VersionsDirError, match="different content"):
        write_drafts([draft, other], versions)
    assert (versions / "def_add.py").read_text() == "something else"
