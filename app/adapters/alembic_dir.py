"""Read and write an Alembic versions directory without importing any of its modules."""

from __future__ import annotations

import ast
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from app.engine.draft import FixDraft


class VersionsDirError(Exception):
    """The versions directory cannot be chained onto (several heads, unreadable file, clash)."""


@dataclass(frozen=True, slots=True)
class RevisionFile:
    """The identifiers one revision file declares."""

    path: Path
    revision: str
    down_revisions: tuple[str, ...]


def _literal(node: ast.expr, path: Path, name: str) -> tuple[str, ...]:
    try:
        value = ast.literal_eval(node)
    except ValueError as exc:
        raise VersionsDirError(f"{path.name}: {name} is not a literal") from exc
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, tuple | list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise VersionsDirError(f"{path.name}: {name} must be a string, a tuple of strings or None")


def read_revision(path: Path) -> RevisionFile | None:
    """``revision`` / ``down_revision`` of one file (module-level assignments), or None."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, UnicodeDecodeError) as exc:
        raise VersionsDirError(f"{path.name}: cannot be read: {exc}") from exc
    found: dict[str, tuple[str, ...]] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign):
            targets, value = stmt.targets, stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            targets, value = [stmt.target], stmt.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                found[target.id] = _literal(value, path, target.id)
    if "revision" not in found:
        return None
    if len(found["revision"]) != 1:
        raise VersionsDirError(f"{path.name}: revision must be a single string")
    return RevisionFile(path, found["revision"][0], found.get("down_revision", ()))


def read_revisions(versions_dir: Path) -> tuple[RevisionFile, ...]:
    """Every revision file directly in ``versions_dir`` (files without ``revision`` skipped)."""
    files = (read_revision(p) for p in sorted(versions_dir.glob("*.py")))
    return tuple(f for f in files if f is not None)


def chain_head(versions_dir: Path, *, ignore: Collection[str] = ()) -> str | None:
    """The single head revision (nobody's ``down_revision``); None for an empty directory.

    Revisions in ``ignore`` (drafts about to be rewritten) do not count.
    """
    revisions = [r for r in read_revisions(versions_dir) if r.revision not in ignore]
    if not revisions:
        return None
    pointed_to = {down for r in revisions for down in r.down_revisions}
    heads = sorted(r.revision for r in revisions if r.revision not in pointed_to)
    if len(heads) == 1:
        return heads[0]
    if not heads:
        raise VersionsDirError(f"{versions_dir}: the revisions form a cycle; there is no head")
    raise VersionsDirError(
        f"{versions_dir}: several heads ({', '.join(heads)}); "
        "merge them (alembic merge heads) before adding revisions"
    )


def write_drafts(drafts: Iterable[FixDraft], versions_dir: Path) -> tuple[Path, ...]:
    """Write each draft as ``versions_dir/filename``; an identical existing file is kept.

    Refuses (before writing anything) when a file of that name exists with other content.
    """
    planned = [(versions_dir / d.filename, d.source) for d in drafts]
    for path, source in planned:
        if path.exists() and path.read_text(encoding="utf-8") != source:
            raise VersionsDirError(f"{path} exists with different content; not overwriting it")
    versions_dir.mkdir(parents=True, exist_ok=True)
    for path, source in planned:
        if not path.exists():
            path.write_text(source, encoding="utf-8")
    return tuple(path for path, _ in planned)
