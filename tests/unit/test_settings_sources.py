"""Settings read the App credentials file as a fallback; the environment and arguments win."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.github_app_file import AppFileError, app_file_path, parse_app
from app.settings import Settings
from tests.manifest_payloads import WEBHOOK_SECRET, conversion


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("DBARCH_")]:
        monkeypatch.delenv(name)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data directory holding a registered App, named by DBARCH_DATA_DIR."""
    parse_app(conversion(), where="test", remedy="-").write(tmp_path)
    monkeypatch.setenv("DBARCH_DATA_DIR", str(tmp_path))
    return tmp_path


def test_the_file_supplies_the_app_when_the_environment_does_not(data_dir: Path) -> None:
    settings = Settings()

    assert settings.data_dir == data_dir
    assert settings.github_app_id == 1
    assert settings.github_app_slug == "octoapp"
    assert settings.github_private_key is not None
    assert settings.github_private_key.get_secret_value() == conversion()["pem"]
    assert settings.webhook_secrets == (WEBHOOK_SECRET.encode(),)
    assert settings.has_app_credentials


def test_the_data_dir_argument_locates_the_file(tmp_path: Path) -> None:
    parse_app(conversion(id=9), where="test", remedy="-").write(tmp_path / "d")

    assert Settings(data_dir=tmp_path / "d").github_app_id == 9
    assert Settings(data_dir=tmp_path).github_app_id is None


def test_environment_variables_win_field_by_field(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DBARCH_GITHUB_APP_SLUG", "env-slug")

    settings = Settings()

    assert settings.github_app_id == 1  # still the file's App
    assert settings.github_app_slug == "env-slug"


def test_a_webhook_secret_from_the_environment_keeps_the_file_out(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file's App with another secret would fail every delivery's signature."""
    monkeypatch.setenv("DBARCH_GITHUB_WEBHOOK_SECRET", "from-env")

    settings = Settings()

    assert settings.webhook_secrets == (b"from-env",)
    assert not settings.has_app_credentials


@pytest.mark.parametrize("variable", ["DBARCH_GITHUB_APP_ID", "DBARCH_GITHUB_PRIVATE_KEY"])
def test_an_app_named_in_the_environment_takes_nothing_from_the_file(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "42" if variable.endswith("ID") else "-----BEGIN KEY-----")

    settings = Settings()

    assert settings.webhook_secrets == ()  # never the file's secret for another App
    assert settings.github_app_slug == "db-architect"
    assert not settings.has_app_credentials


def test_arguments_win_over_the_file(data_dir: Path) -> None:
    settings = Settings(github_app_id=None, github_private_key=None)

    assert settings.github_app_id is None
    assert settings.webhook_secrets == ()


def test_a_broken_file_stops_the_start_with_its_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app_file_path(tmp_path).write_text("{")
    monkeypatch.setenv("DBARCH_DATA_DIR", str(tmp_path))

    with pytest.raises(AppFileError, match=r"github-app\.json is not valid JSON"):
        Settings()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://dbarch.example.com/", "https://dbarch.example.com"),
        ("  http://10.0.0.5:8000 ", "http://10.0.0.5:8000"),
        ("", None),
    ],
)
def test_public_url_is_normalised(
    monkeypatch: pytest.MonkeyPatch, given: str, expected: str | None
) -> None:
    monkeypatch.setenv("DBARCH_PUBLIC_URL", given)

    assert Settings().public_url == expected


@pytest.mark.parametrize("given", ["dbarch.example.com", "ftp://x.example", "https://x.io/?a=1"])
def test_a_public_url_that_is_not_http_is_refused(given: str) -> None:
    with pytest.raises(ValidationError, match="public_url"):
        Settings(public_url=given)
