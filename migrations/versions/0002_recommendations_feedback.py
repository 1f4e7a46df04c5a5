"""Recommendations, reviewer feedback (with pgvector embeddings) and explicit ignores.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import VECTOR
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RECOMMENDATION_STATES = ("proposed", "pr_open", "merged", "ignored", "superseded")
FEEDBACK_SOURCES = ("review", "review_comment", "comment", "merge", "close", "command")
CLASSIFICATIONS = ("accept", "reject", "concern", "question")
IGNORE_KINDS = ("fingerprint", "table")
#: all-MiniLM-L6-v2 (fastembed) gives 384-dimensional vectors.
EMBEDDING_DIMENSIONS = 384
TZ = sa.TIMESTAMP(timezone=True)


def _now() -> sa.TextClause:
    return sa.text("now()")


def _one_of(column: str, values: Sequence[str], name: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(
        f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")", name=name
    )


def upgrade() -> None:
    """Create the recommendation ledger, the feedback memory and the ignore list."""
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.create_table(
        "recommendations",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("repository", sa.Text, nullable=False, comment="owner/name"),
        sa.Column("fingerprint", sa.Text, nullable=False, comment="stable across audits"),
        sa.Column("rec_id", sa.Text, nullable=False, comment="the report's recommendation id"),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("table_name", sa.Text, nullable=False, comment="schema.table"),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("confidence", sa.REAL),
        sa.Column("breakdown", postgresql.JSONB, comment="the confidence breakdown"),
        sa.Column("pr_number", sa.Integer),
        sa.Column("first_seen", TZ, nullable=False, server_default=_now()),
        sa.Column("updated_at", TZ, nullable=False, server_default=_now()),
        sa.UniqueConstraint("repository", "fingerprint", name="recommendations_repo_fp_key"),
        _one_of("state", RECOMMENDATION_STATES, "recommendations_state_check"),
        comment="Every recommendation ever made per repository, and where it stands.",
    )
    op.create_table(
        "feedback",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("repository", sa.Text, nullable=False, comment="owner/name"),
        sa.Column(
            "recommendation_id",
            sa.BigInteger,
            sa.ForeignKey("recommendations.id", ondelete="SET NULL"),
        ),
        sa.Column("fingerprint", sa.Text),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("author", sa.Text, comment="login"),
        sa.Column("body", sa.Text, comment="what the reviewer wrote"),
        sa.Column("classification", sa.Text),
        sa.Column("reason", sa.Text, comment="short reason for the classification"),
        sa.Column("table_name", sa.Text),
        sa.Column("action", sa.Text),
        sa.Column("created_at", TZ, nullable=False, server_default=_now()),
        sa.Column("embedding", VECTOR(EMBEDDING_DIMENSIONS)),
        _one_of("source", FEEDBACK_SOURCES, "feedback_source_check"),
        _one_of("classification", CLASSIFICATIONS, "feedback_classification_check"),
        comment="What reviewers said about recommendations: the bot's memory.",
    )
    op.create_index(
        "feedback_embedding_idx",
        "feedback",
        ["embedding"],
        postgresql_using="hnsw",
        postgresql_ops={"embedding": "vector_cosine_ops"},
    )
    op.create_index("feedback_repository_idx", "feedback", ["repository", "created_at"])
    # Deleting a recommendation nulls its feedback's link: without this, a sequential scan.
    op.create_index("feedback_recommendation_id_idx", "feedback", ["recommendation_id"])
    op.create_table(
        "ignores",
        sa.Column("repository", sa.Text, primary_key=True, comment="owner/name"),
        sa.Column("kind", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, primary_key=True, comment="a fingerprint or schema.table"),
        sa.Column("author", sa.Text, comment="who asked (login)"),
        sa.Column("created_at", TZ, nullable=False, server_default=_now()),
        _one_of("kind", IGNORE_KINDS, "ignores_kind_check"),
        comment="What reviewers told the bot never to propose again.",
    )


def downgrade() -> None:
    """Drop what 0002 created; the ``vector`` extension stays (the database was made with it)."""
    op.drop_table("ignores")
    op.drop_table("feedback")
    op.drop_table("recommendations")
