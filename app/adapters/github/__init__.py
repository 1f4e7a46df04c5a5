"""GitHub: the App's clients, one repository's reads and effects, and their dry-run twins."""

from app.adapters.github.client import (
    API_VERSION,
    api,
    app_client,
    call,
    installation_client,
    redis_token_cache,
)
from app.adapters.github.errors import GitHubError, GitHubTransient
from app.adapters.github.local import LocalReader
from app.adapters.github.models import (
    CheckAction,
    CheckOutput,
    CheckRun,
    Effects,
    FileChange,
    FixChange,
    Published,
    PullInfo,
    RepoInfo,
    RepoReader,
    RepoRef,
)
from app.adapters.github.outbox import OutboxEffects
from app.adapters.github.repo import GitHubRepo

__all__ = [
    "API_VERSION",
    "CheckAction",
    "CheckOutput",
    "CheckRun",
    "Effects",
    "FileChange",
    "FixChange",
    "GitHubError",
    "GitHubRepo",
    "GitHubTransient",
    "LocalReader",
    "OutboxEffects",
    "Published",
    "PullInfo",
    "RepoInfo",
    "RepoReader",
    "RepoRef",
    "api",
    "app_client",
    "call",
    "installation_client",
    "redis_token_cache",
]
