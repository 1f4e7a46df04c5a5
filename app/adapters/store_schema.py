"""The store's schema (Alembic, ``migrations/``), and the embedded PostgreSQL that holds it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import psycopg
import structlog
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from psycopg import sql
from sqlalchemy import Engine, create_engine, pool
from sqlalchemy.exc import DBAPIError

from app.adapters.pgserver import EmbeddedPostgres

__all__ = [
    "MIGRATIONS_DIR",
    "STORE_DATABASE",
    "STORE_EXTENSIONS",
    "downgrade_store",
    "local_store",
    "prepare_local_store",
    "start_local_store",
    "store_revision",
    "upgrade_store",
]

log = structlog.get_logger(__name__)

#: The Alembic environment of the store (a checkout's top-level ``migrations/``).
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
#: The database the embedded store keeps our tables in.
STORE_DATABASE = "dbarchitect"
#: Extensions the store needs (``vector`` for reviewer memory, issue 5).
STORE_EXTENSIONS = ("vector",)


def _engine(dsn: str) -> Engine:
    """A one-connection engine over psycopg 3 (any libpq DSN form: URL or key=value)."""
    return create_engine(
        "postgresql+psycopg://",
        creator=lambda: psycopg.connect(dsn),
        poolclass=pool.NullPool,
    )


def _config() -> Config:
    if not (MIGRATIONS_DIR / "env.py").is_file():
        raise FileNotFoundError(
            f"the store migrations are missing ({MIGRATIONS_DIR}/env.py): run from a checkout "
            "or an image that contains the migrations/ directory"
        )
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


@contextlib.contextmanager
def _psycopg_errors() -> Iterator[None]:
    """Raise the driver's own error (as the rest of the store does), not SQLAlchemy's wrapper."""
    try:
        yield
    except DBAPIError as err:
        if isinstance(err.orig, psycopg.Error):
            raise err.orig from None
        raise


def _run(dsn: str, revision: str, *, up: bool) -> None:
    config = _config()
    engine = _engine(dsn)
    try:
        with _psycopg_errors(), engine.begin() as connection:
            config.attributes["connection"] = connection
            if up:
                command.upgrade(config, revision)
            else:
                command.downgrade(config, revision)
    finally:
        engine.dispose()


def upgrade_store(dsn: str, revision: str = "head") -> None:
    """Bring the store's schema to ``revision`` (``alembic upgrade``), in one transaction.

    Raises:
        psycopg.Error: the store is unreachable, or a migration failed.
        alembic.util.CommandError: ``revision`` is unknown.
    """
    _run(dsn, revision, up=True)
    log.info("store.upgraded", revision=revision)


def downgrade_store(dsn: str, revision: str) -> None:
    """Take the store's schema back to ``revision`` (``base`` drops every table of ours)."""
    _run(dsn, revision, up=False)
    log.info("store.downgraded", revision=revision)


def store_revision(dsn: str) -> str | None:
    """The store's current Alembic revision (None before the first upgrade)."""
    engine = _engine(dsn)
    try:
        with _psycopg_errors(), engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def local_store(data_dir: Path) -> EmbeddedPostgres:
    """The embedded PostgreSQL 18 (with pgvector) that holds the store locally; not started.

    It is durable (fsync on): it keeps the webhook inbox, so it is not a throwaway server.
    """
    return EmbeddedPostgres(data_dir / "store-pg18", preload=())


def prepare_local_store(server: EmbeddedPostgres) -> str:
    """Start ``server`` if needed, create the store database and its extensions if missing.

    Returns:
        The DSN of the store database (its schema is still to be upgraded).
    """
    server.start()
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (STORE_DATABASE,)
        ).fetchone()
        if exists is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(STORE_DATABASE)))
            log.info("store.database_created", database=STORE_DATABASE)
    dsn = server.dsn(STORE_DATABASE)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for extension in STORE_EXTENSIONS:
            conn.execute(
                sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(extension))
            )
    return dsn


@contextlib.contextmanager
def start_local_store(data_dir: Path) -> Iterator[str]:
    """Run the embedded store under ``data_dir`` for the block; yields its DSN (not upgraded)."""
    server = local_store(data_dir)
    try:
        yield prepare_local_store(server)
    finally:
        server.stop()
