"""Feedback remembers which GitHub object it came from; recommendations keep their descriptor.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``feedback.source_id`` (unique per repository and source) and the descriptor."""
    op.add_column(
        "feedback",
        sa.Column(
            "source_id",
            sa.Text,
            comment="the review, comment or pull request it came from: a retried job adds none",
        ),
    )
    op.create_index(
        "feedback_source_key",
        "feedback",
        ["repository", "source", "source_id"],
        unique=True,
        postgresql_where=sa.text("source_id IS NOT NULL"),
    )
    op.add_column(
        "recommendations",
        sa.Column(
            "descriptor",
            sa.Text,
            comment="one line describing it (action, table, traits): what memory embeds",
        ),
    )


def downgrade() -> None:
    """Drop the two columns (and the index with them)."""
    op.drop_column("recommendations", "descriptor")
    op.drop_index("feedback_source_key", table_name="feedback")
    op.drop_column("feedback", "source_id")
