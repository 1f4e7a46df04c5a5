"""Alembic environment of the store database: DB Architect's own tables, never a target's."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection, create_engine, pool

config = context.config


def _url() -> str:
    """The SQLAlchemy URL for offline (``--sql``) runs and the ``alembic`` command line."""
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("DBARCH_STORE_DSN", "")
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.partition("://")[2]
    return url or "postgresql+psycopg://"


def _migrate(connection: Connection) -> None:
    context.configure(connection=connection, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    """Print the SQL instead of running it (``alembic upgrade head --sql``)."""
    context.configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Run on the connection ``upgrade_store`` passes in, else on ``DBARCH_STORE_DSN``."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            _migrate(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
