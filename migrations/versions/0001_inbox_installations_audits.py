"""Webhook inbox, installations, repositories and audits.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AUDIT_STATUSES = ("queued", "running", "done", "failed", "timed_out")
TZ = sa.TIMESTAMP(timezone=True)


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    """Create the inbox, the installation registry and the audit log."""
    op.create_table(
        "webhook_inbox",
        sa.Column("delivery_id", sa.Text, primary_key=True, comment="X-GitHub-Delivery"),
        sa.Column("event", sa.Text, nullable=False, comment="X-GitHub-Event"),
        sa.Column("action", sa.Text),
        sa.Column("installation_id", sa.BigInteger),
        sa.Column("repository", sa.Text, comment="owner/name"),
        sa.Column("sender", sa.Text, comment="sender.login"),
        sa.Column("sender_type", sa.Text, comment="sender.type: User, Bot, Organization"),
        sa.Column("received_at", TZ, nullable=False, server_default=_now()),
        sa.Column("payload", sa.LargeBinary, nullable=False, comment="the signed body as received"),
        sa.Column("done_at", TZ, comment="set by the delivery job when it has handled it"),
        sa.Column("outcome", sa.Text),
        sa.Column(
            "attempts",
            sa.Integer,
            nullable=False,
            server_default="0",
            comment="times the recovery loop enqueued it again (it backs off on this)",
        ),
        comment="Every accepted webhook delivery, written before it is enqueued: none is lost.",
    )
    op.create_index(
        "webhook_inbox_pending_idx",
        "webhook_inbox",
        ["received_at"],
        postgresql_where=sa.text("done_at IS NULL"),
    )
    op.create_table(
        "installations",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("account", sa.Text, comment="the user or organisation login"),
        sa.Column("suspended_at", TZ, comment="set while the installation is suspended"),
        sa.Column("created_at", TZ, nullable=False, server_default=_now()),
        sa.Column("updated_at", TZ, nullable=False, server_default=_now()),
        comment="GitHub App installations (ids are GitHub's).",
    )
    op.create_table(
        "repositories",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column(
            "installation_id",
            sa.BigInteger,
            sa.ForeignKey("installations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("full_name", sa.Text, nullable=False, unique=True),
        sa.Column("removed_at", TZ, comment="set when removed from the installation"),
        sa.Column("created_at", TZ, nullable=False, server_default=_now()),
        comment="Repositories an installation gives us access to (ids are GitHub's).",
    )
    op.create_index("repositories_installation_id_idx", "repositories", ["installation_id"])
    op.create_table(
        "audits",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("repository", sa.Text, nullable=False, comment="owner/name"),
        sa.Column("installation_id", sa.BigInteger),
        sa.Column("trigger", sa.Text, nullable=False, comment="comment, dispatch, check_run, …"),
        sa.Column("requested_by", sa.Text, comment="login of whoever asked"),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("dry_run", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", TZ, nullable=False, server_default=_now()),
        sa.Column("started_at", TZ),
        sa.Column("finished_at", TZ),
        sa.Column("summary", postgresql.JSONB),
        sa.Column("report", postgresql.JSONB, comment="the JSON report (docs/architecture.md)"),
        sa.CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in AUDIT_STATUSES) + ")",
            name="audits_status_check",
        ),
        comment="One row per audit run of a repository's target.",
    )
    op.create_index("audits_repository_idx", "audits", ["repository", "created_at"])
    op.create_index("audits_installation_id_idx", "audits", ["installation_id"])


def downgrade() -> None:
    """Drop everything 0001 created."""
    op.drop_table("audits")
    op.drop_table("repositories")
    op.drop_table("installations")
    op.drop_table("webhook_inbox")
