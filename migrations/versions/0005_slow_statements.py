"""Slow statements seen running on each target between audits (pg_stat_activity samples).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.TIMESTAMP(timezone=True)


def upgrade() -> None:
    """Create ``slow_statements``: one row per execution seen, kept a week."""
    op.create_table(
        "slow_statements",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("target", sa.Text, nullable=False, comment="the operator's target name"),
        sa.Column("fingerprint", sa.Text, nullable=False, comment="sha256 of the normalised text"),
        sa.Column(
            "query", sa.Text, nullable=False, comment="normalised: literals as $n, no values"
        ),
        sa.Column("pid", sa.Integer, nullable=False, comment="the backend that ran it"),
        sa.Column("started", TZ, nullable=False, comment="its query_start"),
        sa.Column(
            "running_ms",
            sa.Float,
            nullable=False,
            comment="the longest it was seen running: a lower bound of its duration",
        ),
        sa.Column("seen_at", TZ, nullable=False, server_default=sa.text("now()")),
        sa.UniqueConstraint(
            "target", "pid", "started", "fingerprint", name="slow_statements_execution_key"
        ),
        comment="Statements seen running long in pg_stat_activity (the worker's minute cron); "
        "the next audit of the target adds them to its workload.",
    )
    op.create_index("slow_statements_target_seen_idx", "slow_statements", ["target", "seen_at"])
    op.create_index("slow_statements_seen_idx", "slow_statements", ["seen_at"])


def downgrade() -> None:
    """Drop ``slow_statements``."""
    op.drop_table("slow_statements")
