"""The App credentials file: written atomically with mode 0600, read back, refused when broken."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from app.github_app_file import (
    GITHUB_APP_FILE,
    AppFile,
    AppFileError,
    app_file_path,
    parse_app,
    read_app_file,
)
from tests.manifest_payloads import CLIENT_SECRET, WEBHOOK_SECRET, conversion


def _app(**changes: object) -> AppFile:
    return parse_app(conversion(**changes), where="test", remedy="fix the test")


def test_the_conversion_answer_becomes_an_app_with_the_owner_login() -> None:
    app = _app()

    assert (app.id, app.slug, app.owner) == (1, "octoapp", "github")
    assert app.pem.startswith("-----BEGIN PRIVATE KEY-----")
    assert (app.client_secret, app.webhook_secret) == (CLIENT_SECRET, WEBHOOK_SECRET)
    assert app.install_url == "https://github.com/apps/octoapp/installations/new"


def test_write_makes_a_private_file_that_reads_back(tmp_path: Path) -> None:
    app = _app()

    path = app.write(tmp_path / "state")

    assert path == tmp_path / "state" / GITHUB_APP_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_app_file(path) == app
    stored = json.loads(path.read_text())
    assert set(stored) == {
        "id",
        "slug",
        "pem",
        "webhook_secret",
        "client_id",
        "client_secret",
        "html_url",
        "owner",
    }
    assert [p.name for p in path.parent.iterdir()] == [GITHUB_APP_FILE]  # no temporary left


def test_write_replaces_a_readable_file_with_a_private_one(tmp_path: Path) -> None:
    path = app_file_path(tmp_path)
    path.write_text("{}")
    path.chmod(0o644)

    _app(id=7).write(tmp_path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = read_app_file(path)
    assert stored is not None and stored.id == 7


def test_no_file_means_no_app(tmp_path: Path) -> None:
    assert read_app_file(app_file_path(tmp_path)) is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "is not valid JSON (line 1)"),
        ("[1, 2]", "does not hold a JSON object"),
        ('{"id": "1", "slug": "x"}', "lacks or mistypes id (int), pem (str)"),
        ('{"id": true}', "id (int)"),
    ],
)
def test_a_broken_file_is_refused_with_its_path(tmp_path: Path, text: str, problem: str) -> None:
    path = app_file_path(tmp_path)
    path.write_text(text)

    with pytest.raises(AppFileError, match="register the App again at /setup") as caught:
        read_app_file(path)

    assert str(path) in str(caught.value)
    assert problem in str(caught.value)


def test_errors_never_quote_the_secrets(tmp_path: Path) -> None:
    path = app_file_path(tmp_path)
    path.write_text(json.dumps(conversion(id="one")))

    with pytest.raises(AppFileError) as caught:
        read_app_file(path)

    assert CLIENT_SECRET not in str(caught.value)
    assert "PRIVATE KEY" not in str(caught.value)


def test_repr_shows_no_secret() -> None:
    shown = repr(_app())

    assert shown == "AppFile(id=1, slug='octoapp', owner='github')"
