"""A scratch Alembic project on a test database, its --sql output, and squawk on that output."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config

ENV_PY = """
from alembic import context
from sqlalchemy import create_engine, pool

url = context.config.get_main_option("sqlalchemy.url")
if context.is_offline_mode():
    context.configure(url=url, literal_binds=True, transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, transactional_ddl=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
"""

BASELINE_REVISION = "0000baseline"
#: The project's existing migration history, which the drafts chain onto.
BASELINE = f'''"""Baseline: the schema as the project's own migrations left it."""

revision = "{BASELINE_REVISION}"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
'''


def scratch_alembic(tmp_path: Path, dsn: str) -> tuple[Config, Path]:
    """An Alembic config for ``dsn`` whose versions directory holds only the baseline."""
    script_dir = tmp_path / "migrations"
    versions = script_dir / "versions"
    versions.mkdir(parents=True)
    (script_dir / "env.py").write_text(ENV_PY)
    (versions / "0000baseline_baseline.py").write_text(BASELINE)
    config = Config(output_buffer=io.StringIO())
    config.set_main_option("script_location", str(script_dir))
    url = dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config, versions


def offline_sql(config: Config) -> str:
    """``alembic upgrade 0000baseline:head --sql``: what a DBA would review and run with psql.

    It starts from the baseline, as in a project with history: from "base" the output would
    also hold Alembic's own CREATE TABLE alembic_version, which is not part of what we draft.
    """
    buffer = config.output_buffer
    assert isinstance(buffer, io.StringIO)
    buffer.seek(0)
    buffer.truncate()
    command.upgrade(config, f"{BASELINE_REVISION}:head", sql=True)
    return buffer.getvalue()


def squawk(
    sql: str, tmp_path: Path, *, pg_version: str = "18.0"
) -> subprocess.CompletedProcess[str]:
    """squawk (installed next to this Python) run on ``sql``."""
    migration = tmp_path / "upgrade.sql"
    migration.write_text(sql)
    binary = Path(sys.executable).parent / "squawk"
    return subprocess.run(
        [str(binary), f"--pg-version={pg_version}", str(migration)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
