"""Tables of the ingest service. `Base` is the declarative base other routers extend.

Tenants are RoboTrace "clients". Each carries the provenance defaults an envelope needs and a
RoboTrace client never sends (operator, task brief, device, safety rules version, and optionally
consent and license). Keys store only a SHA-256 of their secret. Episodes are RoboTrace runs; at
finalize each becomes a media session with one segment (MediaSession / Segment rows), whose
artifacts (Artifact rows) are the video (the raw object) and the declared sensors / actions.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# jsonb on PostgreSQL (metadata is queried there), JSON text on SQLite.
JsonType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JsonType, list[Any]: JsonType}


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # ten_<ULID>
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    operator_id: Mapped[str] = mapped_column(String(40))
    task_brief_id: Mapped[str] = mapped_column(String(40))
    device_model: Mapped[str] = mapped_column(String(120))
    device_tier: Mapped[int] = mapped_column(Integer, default=0)
    device_has_lidar: Mapped[bool] = mapped_column(default=False)
    safety_rules_version: Mapped[str] = mapped_column(String(40), default="v4.2")
    default_consent: Mapped[dict[str, Any] | None] = mapped_column(JsonType, nullable=True)
    default_license: Mapped[dict[str, Any] | None] = mapped_column(JsonType, nullable=True)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the <id> of rt_<id>_<secret>
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[Any]] = mapped_column(JsonType)
    label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    replaced_by: Mapped[str | None] = mapped_column(String(32), nullable=True)


class Episode(Base):
    __tablename__ = "episodes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # UUID, as RoboTrace
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="recording")
    archived_from: Mapped[str | None] = mapped_column(String(16), nullable=True)
    storage: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    source: Mapped[str] = mapped_column(String(16), default="real")
    robot: Mapped[str | None] = mapped_column(String(120), nullable=True)
    policy_version: Mapped[str | None] = mapped_column(String(120), nullable=True)
    env_version: Mapped[str | None] = mapped_column(String(120), nullable=True)
    git_sha: Mapped[str | None] = mapped_column(String(64), nullable=True)
    seed: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    fps: Mapped[float | None] = mapped_column(Float, nullable=True)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    bytes_total: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JsonType, default=dict)
    extra: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)  # unlisted fields
    request_uploads: Mapped[list[Any]] = mapped_column(JsonType, default=list)
    media_session_id: Mapped[str] = mapped_column(String(40), unique=True)
    segment_id: Mapped[str] = mapped_column(String(40), unique=True)
    verification: Mapped[dict[str, Any] | None] = mapped_column(JsonType, nullable=True)
    handed_off_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MediaSession(Base):
    """A media session opened through the large-media endpoints (episodes keep theirs inline)."""

    __tablename__ = "media_sessions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # msess_<ULID>
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    session_id: Mapped[str] = mapped_column(String(40))
    task_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    consent: Mapped[dict[str, Any] | None] = mapped_column(JsonType, nullable=True)
    license: Mapped[dict[str, Any] | None] = mapped_column(JsonType, nullable=True)
    provenance: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open, closed
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Segment(Base):
    """A segment uploaded as a multipart upload through the large-media endpoints."""

    __tablename__ = "segments"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # seg_<ULID>
    media_session_id: Mapped[str] = mapped_column(ForeignKey("media_sessions.id"), index=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    segment_index: Mapped[int] = mapped_column(Integer)
    capture_id: Mapped[str] = mapped_column(String(40))
    object_key: Mapped[str] = mapped_column(String(1024))
    content_type: Mapped[str] = mapped_column(String(200))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    part_size_bytes: Mapped[int] = mapped_column(BigInteger)
    part_sha256s: Mapped[list[Any]] = mapped_column(JsonType)  # base64, one per part
    upload_id: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="uploading")  # uploading, completed
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    extra: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)  # sensors, task steps
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Artifact(Base):
    """One object of an episode: what was signed for, and what the finalize HEAD observed."""

    __tablename__ = "artifacts"

    episode_id: Mapped[str] = mapped_column(ForeignKey("episodes.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # video, sensors, actions
    object_key: Mapped[str] = mapped_column(String(1024))
    content_type: Mapped[str] = mapped_column(String(200))
    observed_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    observed_etag: Mapped[str | None] = mapped_column(String(200), nullable=True)
