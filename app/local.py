"""Embedded defaults for ``dbarchitect run``: a local Redis, the demo target and a demo checkout."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from app.adapters.redis_server import RedisMissing, RedisServer, redis_answers

__all__ = [
    "DEMO_CONFIG",
    "LocalSetupError",
    "admin_token",
    "demo_checkout",
    "local_redis",
    "webhook_secret",
]

DEMO_CONFIG = """\
# DB Architect repository config (see docs/repo-config.md)
version: 1
target: demo
migrations:
  path: migrations/versions
pr_concurrent_limit: 5
pr_hourly_limit: 2
"""
DEMO_BASE_REVISION = '''"""The demo project's first migration (its tables exist already)."""

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
'''
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class LocalSetupError(RuntimeError):
    """A local prerequisite is missing; the message says what to install or set."""


@contextmanager
def local_redis(url: str, base_dir: Path) -> Iterator[str]:
    """``url`` when Redis answers there; else a private redis-server (loopback URLs only)."""
    if redis_answers(url):
        yield url
        return
    host = urlsplit(url).hostname or ""
    try:
        if host not in _LOOPBACK:
            raise RedisMissing(f"{host} is not this machine")
        server = RedisServer(base_dir)
    except RedisMissing as err:
        raise LocalSetupError(
            f"Redis does not answer at {host or url} and no local redis-server can be started "
            f"({err}): install it (`make deps`, or apt-get install redis-server) or set "
            "DBARCH_REDIS_URL"
        ) from None
    with server:
        yield server.url


def webhook_secret(data_dir: Path) -> str:
    """The local webhook secret, made once and kept in ``<data_dir>/webhook-secret`` (0600)."""
    return _kept_secret(data_dir / "webhook-secret")


def admin_token(data_dir: Path) -> str:
    """The local admin token (API, dashboard), made once, in ``<data_dir>/admin-token``."""
    return _kept_secret(data_dir / "admin-token")


def _kept_secret(path: Path) -> str:
    if path.is_file():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(20)
    path.touch(mode=0o600)
    path.write_text(secret + "\n")
    return secret


def demo_checkout(data_dir: Path) -> Path:
    """A local stand-in for a repository: its config names the demo target, one migration."""
    root = data_dir / "demo-repo"
    config = root / ".github" / "db-architect.yml"
    versions = root / "migrations" / "versions"
    if not config.is_file():
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(DEMO_CONFIG)
    if not versions.is_dir():
        versions.mkdir(parents=True)
        (versions / "0001_initial.py").write_text(DEMO_BASE_REVISION)
    return root
