"""Settings come from DBARCH_* variables, keep secrets secret and are read once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from app.settings import Settings, get_settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("DBARCH_")]:
        monkeypatch.delenv(name)


def test_defaults_need_no_environment() -> None:
    settings = Settings()

    assert settings.store_dsn is None
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.log_format == "console"


def test_values_come_from_prefixed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBARCH_GITHUB_APP_ID", "1234")
    monkeypatch.setenv("DBARCH_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("DBARCH_DATA_DIR", "~/dbarch")

    settings = Settings()

    assert settings.github_app_id == 1234
    assert settings.log_level == "debug"
    assert settings.data_dir == Path.home() / "dbarch"


def test_secrets_stay_out_of_reprs() -> None:
    settings = Settings(
        store_dsn=SecretStr("postgresql://u:hunter2@db/store"),
        github_webhook_secret=SecretStr("s3"),
    )

    assert "hunter2" not in repr(settings)
    assert settings.store_dsn is not None
    assert settings.store_dsn.get_secret_value().endswith("@db/store")


def test_a_one_line_private_key_gets_its_newlines_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "DBARCH_GITHUB_PRIVATE_KEY",
        "-----BEGIN RSA PRIVATE KEY-----\\nMIIE\\n-----END RSA PRIVATE KEY-----",
    )

    key = Settings().github_private_key

    assert key is not None
    assert key.get_secret_value().splitlines()[1] == "MIIE"


def test_unknown_log_format_is_rejected() -> None:
    with pytest.raises(ValidationError, match="log_format"):
        Settings(log_format="xml")  # type: ignore[arg-type]


def test_every_field_is_documented() -> None:
    assert all(field.description for field in Settings.model_fields.values())


def test_get_settings_is_cached() -> None:
    assert get_settings() is get_settings()


@pytest.mark.parametrize("field", ["admin_token", "metrics_token"])
def test_tokens_are_unset_when_empty_and_refused_when_short(field: str) -> None:
    assert getattr(Settings(**{field: ""}), field) is None  # compose's ${MISSING}
    assert getattr(Settings(**{field: "   "}), field) is None
    long = getattr(Settings(**{field: " a-token-of-20-chars "}), field)
    assert long is not None and long.get_secret_value() == "a-token-of-20-chars"
    with pytest.raises(ValidationError, match="at least 16 characters"):
        Settings(**{field: "short"})
