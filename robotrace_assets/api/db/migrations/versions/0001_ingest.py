"""Ingest service: tenants, API keys, episodes, media sessions, segments, artifacts.

Revision ID: 0001_ingest
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001_ingest"
down_revision = None
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    _tenants_and_keys()
    _episodes()
    _media()


def _tenants_and_keys() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("operator_id", sa.String(40), nullable=False),
        sa.Column("task_brief_id", sa.String(40), nullable=False),
        sa.Column("device_model", sa.String(120), nullable=False),
        sa.Column("device_tier", sa.Integer, nullable=False),
        sa.Column("device_has_lidar", sa.Boolean, nullable=False),
        sa.Column("safety_rules_version", sa.String(40), nullable=False),
        sa.Column("default_consent", JSON, nullable=True),
        sa.Column("default_license", JSON, nullable=True),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant_id", sa.String(40), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("scopes", JSON, nullable=False),
        sa.Column("label", sa.String(200), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.Column("replaced_by", sa.String(32), nullable=True),
    )
    op.create_index("ix_api_keys_tenant_id", "api_keys", ["tenant_id"])


def _episodes() -> None:
    op.create_table(
        "episodes",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(40), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("archived_from", sa.String(16), nullable=True),
        sa.Column("storage", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("robot", sa.String(120), nullable=True),
        sa.Column("policy_version", sa.String(120), nullable=True),
        sa.Column("env_version", sa.String(120), nullable=True),
        sa.Column("git_sha", sa.String(64), nullable=True),
        sa.Column("seed", sa.BigInteger, nullable=True),
        sa.Column("fps", sa.Float, nullable=True),
        sa.Column("duration_s", sa.Float, nullable=True),
        sa.Column("bytes_total", sa.BigInteger, nullable=True),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("extra", JSON, nullable=False),
        sa.Column("request_uploads", JSON, nullable=False),
        sa.Column("media_session_id", sa.String(40), nullable=False, unique=True),
        sa.Column("segment_id", sa.String(40), nullable=False, unique=True),
        sa.Column("verification", JSON, nullable=True),
        sa.Column("handed_off_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_episodes_tenant_id", "episodes", ["tenant_id"])
    op.create_table(
        "artifacts",
        sa.Column("episode_id", sa.String(36), sa.ForeignKey("episodes.id"), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("object_key", sa.String(1024), nullable=False),
        sa.Column("content_type", sa.String(200), nullable=False),
        sa.Column("observed_size", sa.BigInteger, nullable=True),
        sa.Column("observed_etag", sa.String(200), nullable=True),
    )


def _media() -> None:
    op.create_table(
        "media_sessions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("session_id", sa.String(40), nullable=False),
        sa.Column("task_name", sa.String(200), nullable=True),
        sa.Column("consent", JSON, nullable=True),
        sa.Column("license", JSON, nullable=True),
        sa.Column("provenance", JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_media_sessions_tenant_id", "media_sessions", ["tenant_id"])
    op.create_table(
        "segments",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "media_session_id", sa.String(40), sa.ForeignKey("media_sessions.id"), nullable=False
        ),
        sa.Column("tenant_id", sa.String(40), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("segment_index", sa.Integer, nullable=False),
        sa.Column("capture_id", sa.String(40), nullable=False),
        sa.Column("object_key", sa.String(1024), nullable=False),
        sa.Column("content_type", sa.String(200), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("part_size_bytes", sa.BigInteger, nullable=False),
        sa.Column("part_sha256s", JSON, nullable=False),
        sa.Column("upload_id", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS, nullable=False),
        sa.Column("extra", JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_segments_media_session_id", "segments", ["media_session_id"])
    op.create_index("ix_segments_tenant_id", "segments", ["tenant_id"])


def downgrade() -> None:
    for table in ("artifacts", "segments", "media_sessions", "episodes", "api_keys", "tenants"):
        op.drop_table(table)
