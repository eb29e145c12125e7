"""The session's audit log, and the session as one record in the catalog.

Audit entries are appended in the database (the API reads them back) and the whole log is
written to the catalog as Parquet after every change, beside the session's own row:

    robotics/catalog/teleop_sessions/<session_id>.parquet       one row: the session object
    robotics/catalog/teleop_session_audit/<session_id>.parquet  every token, join, leave, event

Details never hold a token, a signed URL or a request body.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from robotrace_assets import catalog, layout
from robotrace_assets.objectstore.client import S3Client
from robotrace_assets.teleop.lifecycle import RoomState
from robotrace_assets.teleop.models import TeleopAudit, TeleopSession

SESSIONS_TABLE = "teleop_sessions"
AUDIT_TABLE = "teleop_session_audit"


def append(
    db: Session,
    session_id: str,
    kind: str,
    *,
    identity: str | None = None,
    role: str | None = None,
    at: datetime | None = None,
    **details: Any,
) -> None:
    entry = TeleopAudit(
        session_id=session_id, kind=kind, identity=identity, role=role, details=details
    )
    if at is not None:
        entry.at = at
    db.add(entry)


def entries(db: Session, session_id: str) -> list[dict[str, Any]]:
    rows = db.scalars(
        select(TeleopAudit).where(TeleopAudit.session_id == session_id).order_by(TeleopAudit.id)
    )
    return [
        {
            "seq": row.id,
            "session_id": row.session_id,
            "at": row.at.isoformat(),
            "kind": row.kind,
            "identity": row.identity,
            "role": row.role,
            "details": row.details,
        }
        for row in rows
    ]


def session_object(row: TeleopSession) -> dict[str, Any]:
    """The seed's session object, with the room and its lifecycle."""
    state = RoomState.from_json(row.lifecycle)
    return {
        "session_id": row.id,
        "tenant_id": row.tenant_id,
        "operator_id": row.operator_id,
        "task_brief_id": row.task_brief_id,
        "media_session_id": row.media_session_id,
        "device": {**row.device, "tier": row.tier},
        "created_at": row.created_at.isoformat(),
        "consent": row.consent,
        "license": row.license,
        "safety_rules_version": row.safety_rules_version,
        "task": row.task,
        "environment": row.environment,
        "room": {
            "name": row.room_name,
            "sid": state.room_sid or None,
            "started": state.room_started,
            "finished": state.room_finished,
            "recordings": [
                {
                    "egress_id": r.egress_id,
                    "status": r.status,
                    "usable": r.usable,
                    "refused": r.refused,
                }
                for r in state.recordings.values()
            ],
        },
        "status": row.status,
        "hand_off": state.hand_off,
        "segment_ids": list(row.segment_ids or []),
        "handed_off_at": row.handed_off_at.isoformat() if row.handed_off_at else None,
    }


def _put(s3: S3Client, bucket: str, table: str, partition: str, rows: list[dict]) -> str:
    key = layout.catalog_key(table, partition)
    body = catalog.to_parquet(rows)
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=body,
        ContentType=layout.PARQUET_CONTENT_TYPE,
        ChecksumSHA256=base64.b64encode(hashlib.sha256(body).digest()).decode(),
    )
    return key


def publish(db: Session, s3: S3Client, bucket: str, session_id: str) -> None:
    """Write the session and its whole audit log to the catalog (from committed state)."""
    row = db.get(TeleopSession, session_id, populate_existing=True)
    if row is None:
        return
    _put(s3, bucket, SESSIONS_TABLE, session_id, [session_object(row)])
    _put(s3, bucket, AUDIT_TABLE, session_id, entries(db, session_id))
