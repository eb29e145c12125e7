"""Tables of the teleop sessions API, on the ingest service's declarative base.

A teleop session is one auditable object: its row (who, which brief, consent, license, the room
and its lifecycle state) and its append-only audit log (every token minted, every join and
leave, every lifecycle event and the hand-off). Webhook event ids are remembered for the
replay window. The Alembic revision is 0002_teleop.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from robotrace_assets.api.db.models import Base, JsonType, utcnow


class TeleopSession(Base):
    __tablename__ = "teleop_sessions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # sess_<ULID>
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    media_session_id: Mapped[str] = mapped_column(String(40), unique=True)
    room_name: Mapped[str] = mapped_column(String(64), unique=True)
    operator_id: Mapped[str] = mapped_column(String(40))
    task_brief_id: Mapped[str] = mapped_column(String(40))
    tier: Mapped[int] = mapped_column(Integer)
    device: Mapped[dict[str, Any]] = mapped_column(JsonType)
    task: Mapped[dict[str, Any]] = mapped_column(JsonType)
    environment: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    consent: Mapped[dict[str, Any] | None] = mapped_column(JsonType, nullable=True)
    license: Mapped[dict[str, Any] | None] = mapped_column(JsonType, nullable=True)
    safety_rules_version: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default="created")
    lifecycle: Mapped[str] = mapped_column(Text, default="")  # RoomState JSON
    version: Mapped[int] = mapped_column(Integer, default=0)  # compare-and-set on lifecycle
    segment_ids: Mapped[list[Any]] = mapped_column(JsonType, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    handed_off_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class TeleopAudit(Base):
    __tablename__ = "teleop_audit"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("teleop_sessions.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    kind: Mapped[str] = mapped_column(String(40))
    identity: Mapped[str | None] = mapped_column(String(120), nullable=True)
    role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)


class TeleopWebhookEvent(Base):
    __tablename__ = "teleop_webhook_events"

    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    room_name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
