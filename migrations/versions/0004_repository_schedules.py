"""Repositories remember their config's schedule, so the worker's cron need not read GitHub.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``schedule``, ``timezone`` and ``schedule_checked_at`` to ``repositories``."""
    op.add_column(
        "repositories",
        sa.Column(
            "schedule",
            sa.Text,
            comment="the config's 5-field cron; NULL: no config, no schedule or a broken config",
        ),
    )
    op.add_column(
        "repositories",
        sa.Column("timezone", sa.Text, comment="the IANA time zone the schedule is read in"),
    )
    op.add_column(
        "repositories",
        sa.Column(
            "schedule_checked_at",
            sa.TIMESTAMP(timezone=True),
            comment="when the config was last read (by an audit or the hourly refresh)",
        ),
    )


def downgrade() -> None:
    """Drop the three columns."""
    op.drop_column("repositories", "schedule_checked_at")
    op.drop_column("repositories", "timezone")
    op.drop_column("repositories", "schedule")
