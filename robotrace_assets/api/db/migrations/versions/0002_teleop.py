"""Teleop sessions API: sessions, their audit log, and remembered webhook event ids.

Revision ID: 0002_teleop
Revises: 0001_ingest
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002_teleop"
down_revision = "0001_ingest"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "teleop_sessions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("media_session_id", sa.String(40), nullable=False, unique=True),
        sa.Column("room_name", sa.String(64), nullable=False, unique=True),
        sa.Column("operator_id", sa.String(40), nullable=False),
        sa.Column("task_brief_id", sa.String(40), nullable=False),
        sa.Column("tier", sa.Integer, nullable=False),
        sa.Column("device", JSON, nullable=False),
        sa.Column("task", JSON, nullable=False),
        sa.Column("environment", JSON, nullable=False),
        sa.Column("consent", JSON, nullable=True),
        sa.Column("license", JSON, nullable=True),
        sa.Column("safety_rules_version", sa.String(40), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("lifecycle", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("segment_ids", JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("handed_off_at", TS, nullable=True),
    )
    op.create_index("ix_teleop_sessions_tenant_id", "teleop_sessions", ["tenant_id"])
    op.create_table(
        "teleop_audit",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("session_id", sa.String(40), sa.ForeignKey("teleop_sessions.id"), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("identity", sa.String(120), nullable=True),
        sa.Column("role", sa.String(16), nullable=True),
        sa.Column("details", JSON, nullable=False),
    )
    op.create_index("ix_teleop_audit_session_id", "teleop_audit", ["session_id"])
    op.create_table(
        "teleop_webhook_events",
        sa.Column("event_id", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("room_name", sa.String(200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("received_at", TS, nullable=False),
    )
    op.create_index("ix_teleop_webhook_events_created_at", "teleop_webhook_events", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_teleop_webhook_events_created_at", "teleop_webhook_events")
    op.drop_table("teleop_webhook_events")
    op.drop_index("ix_teleop_audit_session_id", "teleop_audit")
    op.drop_table("teleop_audit")
    op.drop_index("ix_teleop_sessions_tenant_id", "teleop_sessions")
    op.drop_table("teleop_sessions")
