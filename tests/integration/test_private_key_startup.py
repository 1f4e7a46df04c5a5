"""``dbarchitect serve``, ``worker`` and ``run`` refuse an unusable App key at once (exit 2).

Real processes: the console script with a garbage ``DBARCH_GITHUB_PRIVATE_KEY``, or a broken
key in ``<data dir>/github-app.json``; stderr must name the setting and what is wrong, and
must hold no line of the key.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.manifest_payloads import conversion

TIMEOUT_S = 60


def _script() -> str:
    found = shutil.which("dbarchitect") or str(Path(sys.executable).with_name("dbarchitect"))
    assert Path(found).exists(), "the dbarchitect console script is not installed"
    return found


def _start(command: str, data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DBARCH_")}
    clean |= {"DBARCH_DATA_DIR": str(data_dir), "DBARCH_WEB_PORT": "9", **env}
    return subprocess.run(
        [_script(), command],
        env=clean,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def _altered_key() -> str:
    """An RSA key whose PEM was damaged: its real lines must never be echoed."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    lines = pem.splitlines()
    return "\n".join([*lines[:3], "A" * 64, *lines[4:]])


def _key_lines(pem: str) -> list[str]:
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


@pytest.mark.parametrize("command", ["serve", "worker", "run"])
def test_a_garbage_key_stops_the_start_with_exit_2(command: str, tmp_path: Path) -> None:
    key = _altered_key()

    result = _start(command, tmp_path, DBARCH_GITHUB_APP_ID="12345", DBARCH_GITHUB_PRIVATE_KEY=key)

    assert result.returncode == 2, result.stderr
    assert "DBARCH_GITHUB_PRIVATE_KEY" in result.stderr
    assert "not a readable private key" in result.stderr
    leaked = [line for line in _key_lines(key) if line in result.stderr + result.stdout]
    assert not leaked
    assert not (tmp_path / "store").exists()  # nothing was started


def test_a_path_instead_of_the_key_is_explained(tmp_path: Path) -> None:
    result = _start(
        "serve",
        tmp_path,
        DBARCH_GITHUB_APP_ID="12345",
        DBARCH_GITHUB_PRIVATE_KEY=str(tmp_path / "missing.private-key.pem"),
    )

    assert result.returncode == 2
    assert "DBARCH_GITHUB_PRIVATE_KEY looks like a file path" in result.stderr
    assert "$(cat" in result.stderr


def test_a_broken_key_in_the_setup_file_is_named(tmp_path: Path) -> None:
    key = _altered_key()
    (tmp_path / "github-app.json").write_text(json.dumps(conversion(pem=key)))

    result = _start("serve", tmp_path)

    assert result.returncode == 2, result.stderr
    assert "github-app.json" in result.stderr and "private key (pem)" in result.stderr
    assert not [line for line in _key_lines(key) if line in result.stderr]
