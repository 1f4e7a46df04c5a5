"""Typed process settings from ``DBARCH_*`` environment variables, read once by factories."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["LogFormat", "LogLevel", "Settings", "get_settings"]

LogFormat = Literal["console", "json"]
LogLevel = Literal["debug", "info", "warning", "error", "critical"]


class Settings(BaseSettings):
    """Everything the web process, the worker and the CLI read from the environment.

    Tests build ``Settings(...)`` directly; only factories call :func:`get_settings`.
    """

    model_config = SettingsConfigDict(
        env_prefix="DBARCH_",
        extra="ignore",
        frozen=True,
        use_attribute_docstrings=True,
    )

    store_dsn: SecretStr | None = None
    """DSN of our store database; unset means an embedded PostgreSQL under ``data_dir``."""

    data_dir: Path = Path(".dbarchitect")
    """Where local state lives (the embedded store's data directory, caches)."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    """Redis for the arq job queue."""

    github_app_id: int | None = None
    """The GitHub App's numeric id."""

    github_private_key: SecretStr | None = None
    """The GitHub App's private key (PEM text; ``\\n`` escapes are accepted)."""

    github_webhook_secret: SecretStr | None = None
    """The secret GitHub signs webhook deliveries with."""

    anthropic_api_key: SecretStr | None = None
    """Key for Claude, which only writes explanation prose; unset disables it."""

    log_format: LogFormat = "console"
    """``console`` for people, ``json`` for log collectors."""

    log_level: LogLevel = "info"
    """Lowest level that is logged."""

    @field_validator("data_dir")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("log_format", "log_level", mode="before")
    @classmethod
    def _lowercase(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("github_private_key", mode="before")
    @classmethod
    def _unescape_pem(cls, value: object) -> object:
        """Accept a PEM pasted into one env line with literal ``\\n`` separators."""
        if isinstance(value, str) and "\\n" in value and "\n" not in value:
            return value.replace("\\n", "\n")
        return value


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
