"""Typed process settings from ``DBARCH_*`` environment variables, read once by factories."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from app.github_app_file import app_file_path, read_app_file

__all__ = [
    "DEFAULT_ANTHROPIC_MODEL",
    "GitHubAppFileSource",
    "LogFormat",
    "LogLevel",
    "Settings",
    "TargetSpec",
    "get_settings",
]

LogFormat = Literal["console", "json"]
LogLevel = Literal["debug", "info", "warning", "error", "critical"]

DEFAULT_ANTHROPIC_MODEL = "claude-sonnet-4-6"
"""The Claude model used unless ``DBARCH_ANTHROPIC_MODEL`` names another."""


#: Admin and metrics tokens are at least this long: a guessable token guards nothing.
MIN_TOKEN_CHARS = 16


class TargetSpec(BaseModel):
    """An operator-defined audit target: repositories name it, only the operator knows the DSN."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dsn: SecretStr
    """The target database (read-only sessions; nothing is ever applied to it)."""

    sandbox_dsn: SecretStr | None = None
    """A copy of the target where indexes may be built and measured in rolled-back transactions."""

    allow_target_validation: bool = False
    """Whether rolled-back index builds may run on the target itself (a quiet database)."""

    allow_ask: bool = False
    """Whether `/ask` may read rows of this database and post them in (private) issues."""


class GitHubAppFileSource(PydanticBaseSettingsSource):
    """The App credentials in ``<data_dir>/github-app.json``, written by the ``/setup`` flow.

    A fallback below every other source but the defaults, and all or nothing: when arguments
    or ``DBARCH_*`` variables already name the App (its id or its key, even as None), the
    file adds nothing, so an App configured there never gets the file's key or webhook
    secret. Otherwise it supplies ``github_app_id``, ``github_private_key``,
    ``github_webhook_secret`` and ``github_app_slug``, each unless set higher up.
    ``data_dir`` is the one the higher sources resolved (``DBARCH_DATA_DIR``), else its default.
    """

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ reads the whole file at once

    def __call__(self) -> dict[str, Any]:
        state = self.current_state
        if {"github_app_id", "github_private_key", "github_webhook_secret"} & state.keys():
            return {}  # an App configured elsewhere, even in part: the file must not mix in
        data_dir = state.get("data_dir", self.settings_cls.model_fields["data_dir"].default)
        app = read_app_file(app_file_path(Path(str(data_dir)).expanduser()))
        if app is None:
            return {}
        values: dict[str, Any] = {
            "github_app_id": app.id,
            "github_private_key": app.pem,
            "github_app_slug": app.slug,
        }
        if app.webhook_secret:
            values["github_webhook_secret"] = app.webhook_secret
        return values


class Settings(BaseSettings):
    """Everything the web process, the worker and the CLI read from the environment.

    Tests build ``Settings(...)`` directly; only factories call :func:`get_settings`.

    Precedence, highest first: constructor arguments, ``DBARCH_*`` environment variables,
    then the App credentials file ``<data_dir>/github-app.json`` (see
    :class:`GitHubAppFileSource`), then the defaults below.
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
    """The secret GitHub signs webhook deliveries with; several, comma-separated, while rotating."""

    admin_token: SecretStr | None = None
    """Bearer token for the admin API and the dashboard's login; unset turns both off
    (``dbarchitect run`` makes one in ``<data_dir>/admin-token``)."""

    metrics_token: SecretStr | None = None
    """Bearer token that ``GET /metrics`` requires (``Authorization: Bearer <token>``); unset
    leaves the metrics open to whoever reaches the web process."""

    github_app_slug: str = "db-architect"
    """The App's slug: its bot is ``<slug>[bot]`` and ``@<slug>`` addresses it in comments."""

    github_api_url: str = "https://api.github.com"
    """GitHub's REST API (change it for GitHub Enterprise Server)."""

    targets: dict[str, TargetSpec] = {}
    """Audit targets by name, as JSON: ``{"shop": {"dsn": "postgresql://…"}}`` (or a bare DSN
    string per name). Repositories name a target in their config; DSNs never come from them."""

    dry_run: bool = False
    """Never change anything on GitHub: branches, commits and PRs go to the outbox instead."""

    outbox_dir: Path | None = None
    """Where dry runs write what they would do; unset means ``<data_dir>/outbox``."""

    model_dir: Path | None = None
    """Where the embedding model lives; unset means ``<data_dir>/models/all-MiniLM-L6-v2``
    (``dbarchitect model provision`` puts it there)."""

    local_repo_dir: Path | None = None
    """Without App credentials, repositories are read from this local checkout (default: the
    current directory): its ``.github/db-architect.yml`` and migrations."""

    web_host: str = "127.0.0.1"
    """Address the web process listens on."""

    web_port: int = 8000
    """Port the web process listens on."""

    public_url: str | None = None
    """The web process's address as GitHub and your browser reach it (an ngrok or cloudflared
    tunnel, a reverse proxy): the setup page builds the App's webhook and redirect URLs from
    it; unset means the address the setup page was opened at."""

    trusted_proxies: str | None = None
    """Comma-separated addresses or networks of the reverse proxies or tunnels in front of the
    web process (``127.0.0.1`` for a local ngrok or cloudflared): only requests from them may
    name the client (``X-Forwarded-For``) and the scheme (``X-Forwarded-Proto``). Unset
    believes no such header: clients are told apart, and throttled, by their own address."""

    inbox_recovery_seconds: float = 5.0
    """How often deliveries accepted while Redis was down are enqueued again."""

    audit_timeout_seconds: float = 1800.0
    """An audit job that runs longer than this is stopped (and reported as timed out)."""

    activity_min_ms: float = Field(default=1000.0, ge=0.0)
    """Statements running at least this long in a target's pg_stat_activity (looked at every
    minute and during audits) join its next audit's workload; 0 turns the looks off."""

    worker_lease_seconds: float = Field(default=60.0, ge=2.0, le=3600.0)
    """How long a running job's claim (arq's in-progress key, the repository's audit lock)
    lasts unless its worker renews it (every quarter of it): after a worker dies, its jobs
    run again and its repositories are free within about this long."""

    anthropic_api_key: SecretStr | None = None
    """Key for Claude: plain-language explanations, feedback classification and `/ask` drafts.

    Claude never decides SQL for migrations, and everything it returns is validated; unset
    turns all three off (the deterministic fallbacks remain)."""

    anthropic_model: str = DEFAULT_ANTHROPIC_MODEL
    """The Claude model to ask (an Anthropic model id or alias)."""

    anthropic_base_url: str | None = None
    """The Anthropic API's address; unset means ``https://api.anthropic.com`` (set it for a
    gateway or proxy that speaks the Messages API)."""

    log_format: LogFormat = "console"
    """``console`` for people, ``json`` for log collectors."""

    log_level: LogLevel = "info"
    """Lowest level that is logged."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, environment, then ``<data_dir>/github-app.json``; defaults last."""
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            file_secret_settings,
            GitHubAppFileSource(settings_cls),
        )

    @field_validator("data_dir")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        """An absolute http(s) URL without a trailing slash; empty means unset."""
        if value is None or not value.strip():
            return None
        url = value.strip().rstrip("/")
        scheme, sep, rest = url.partition("://")
        if not sep or scheme.lower() not in ("http", "https") or not rest or "?" in url:
            raise ValueError(
                "must be an absolute http(s) URL such as https://dbarch.example.com "
                "(the address GitHub sends webhooks to), without a query"
            )
        return url

    @field_validator("admin_token", "metrics_token", mode="before")
    @classmethod
    def _token(cls, value: object) -> object:
        """Empty means unset (compose's ``${VAR}`` of a missing variable); short is refused."""
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return None
        if isinstance(raw, str) and len(raw.strip()) < MIN_TOKEN_CHARS:
            raise ValueError(
                f"must be at least {MIN_TOKEN_CHARS} characters (e.g. `openssl rand -hex 20`)"
            )
        return raw.strip() if isinstance(raw, str) else value

    @field_validator("log_format", "log_level", mode="before")
    @classmethod
    def _lowercase(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("targets", mode="before")
    @classmethod
    def _bare_dsn_targets(cls, value: object) -> object:
        """Accept ``{"name": "postgresql://…"}`` as shorthand for ``{"name": {"dsn": …}}``."""
        if isinstance(value, dict):
            return {k: {"dsn": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @property
    def webhook_secrets(self) -> tuple[bytes, ...]:
        """Every accepted webhook secret: comma-separated, newest first, for rotation."""
        if self.github_webhook_secret is None:
            return ()
        raw = self.github_webhook_secret.get_secret_value().split(",")
        return tuple(part.strip().encode() for part in raw if part.strip())

    @property
    def has_app_credentials(self) -> bool:
        """App id and private key are set: GitHub can be called (otherwise everything is dry)."""
        return self.github_app_id is not None and self.github_private_key is not None

    @property
    def outbox(self) -> Path:
        """The dry-run outbox directory."""
        return self.outbox_dir or self.data_dir / "outbox"

    @property
    def embedding_model_dir(self) -> Path:
        """The embedding model's directory (``model_dir``, else under ``data_dir``)."""
        return self.model_dir or self.data_dir / "models" / "all-MiniLM-L6-v2"

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
