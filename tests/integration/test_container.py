"""The image, built and run by a Docker engine (skipped where none answers, as on the dev hosts)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        done = subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


pytestmark = pytest.mark.skipif(not _docker_answers(), reason="no Docker engine answers here")


def docker(
    *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    tag = f"db-architect-test:{uuid.uuid4().hex[:12]}"
    built = docker("build", "--tag", tag, str(ROOT), timeout=1500)
    assert built.returncode == 0, built.stderr[-4000:]
    yield tag
    docker("image", "rm", "--force", tag)


@pytest.mark.timeout(1800)
def test_image_runs_as_10001_with_model_and_migrations(image: str) -> None:
    uid = docker("run", "--rm", image, "id", "-u")
    assert uid.stdout.strip() == "10001", uid.stderr
    check = (
        "import os; from pathlib import Path;"
        "from app.adapters.model_files import verify_model_dir;"
        "from app.adapters.store_schema import MIGRATIONS_DIR;"
        "verify_model_dir(Path(os.environ['DBARCH_MODEL_DIR']));"
        "assert (MIGRATIONS_DIR / 'env.py').is_file(), MIGRATIONS_DIR;"
        "print('ok')"
    )
    done = docker("run", "--rm", image, "python", "-c", check)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
    helped = docker("run", "--rm", image, "dbarchitect", "--help")
    assert helped.returncode == 0 and "serve" in helped.stdout


@pytest.mark.timeout(1800)
def test_store_upgrade_in_the_image(image: str, fresh_db18: str) -> None:
    """``dbarchitect store upgrade`` as compose's ``migrate`` runs it (host network: loopback)."""
    # `--env NAME` passes the value from docker's own environment: it stays out of argv.
    done = docker(
        "run", "--rm", "--network", "host", "--env", "DBARCH_STORE_DSN", image,
        "dbarchitect", "store", "upgrade",
        env={"DBARCH_STORE_DSN": fresh_db18},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "store schema at revision" in done.stderr
