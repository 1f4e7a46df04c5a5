"""The wheel is self-contained: the store's Alembic environment ships in it and works from there.

The image installs the wheel (not an editable checkout), so ``dbarchitect store upgrade`` in a
container depends on ``migrations/`` being inside it, where ``MIGRATIONS_DIR`` looks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

ROOT = Path(__file__).resolve().parents[2]
#: What the Dockerfile copies into its build context (see .dockerignore).
BUILD_CONTEXT = ("pyproject.toml", "README.md", "app", "worker", "migrations")

UPGRADE_FROM_WHEEL = """
import json, sys
import app
from app.adapters.store_schema import MIGRATIONS_DIR, store_revision, upgrade_store
upgrade_store(sys.argv[1])
print(json.dumps({"app": app.__file__, "migrations": str(MIGRATIONS_DIR),
                  "revision": store_revision(sys.argv[1])}))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built as the Dockerfile's ``pip install .`` builds it."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    source.mkdir()
    for name in BUILD_CONTEXT:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, source / name)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", ".", "-w", str(work)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (built,) = work.glob("db_architect-*.whl")
    return built


@pytest.fixture(scope="module")
def unpacked(wheel: Path) -> Path:
    """The wheel's files as an installer lays them out in site-packages."""
    target = wheel.parent / "site-packages"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)
    return target


def _head() -> str:
    config = Config()
    config.set_main_option("script_location", str(ROOT / "migrations"))
    (head,) = ScriptDirectory.from_config(config).get_heads()
    return head


def test_wheel_ships_the_store_migrations(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        scripts = archive.read(entry_points).decode()
    for name in ("env.py", "alembic.ini", "script.py.mako"):
        assert f"migrations/{name}" in names
    versions = {
        f"migrations/versions/{p.name}" for p in (ROOT / "migrations/versions").glob("*.py")
    }
    assert versions, "the checkout has no store revisions"
    assert versions <= names, sorted(versions - names)
    assert "app/cli.py" in names and "worker/main.py" in names
    assert any(n.startswith("app/demo/") and n.endswith(".sql") for n in names)
    assert not [n for n in names if "__pycache__" in n or n.startswith("tests/")]
    assert "dbarchitect = app.cli:main" in scripts


def test_store_upgrades_from_the_wheel_layout(unpacked: Path, fresh_db18: str) -> None:
    """Only the unpacked wheel is importable as ``app``: no checkout, no editable install."""
    env = {**os.environ, "PYTHONPATH": str(unpacked)}
    done = subprocess.run(
        [sys.executable, "-c", UPGRADE_FROM_WHEEL, fresh_db18],
        cwd=unpacked,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(found["app"]).is_relative_to(unpacked)
    assert Path(found["migrations"]) == unpacked.resolve() / "migrations"
    assert found["revision"] == _head()
