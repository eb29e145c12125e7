"""Server-side hand-off into the graph: envelopes and inbox entries written with our credentials.

The ingest service (RoboTrace episodes, large-media uploads) and the teleop service (LiveKit egress)
hand their uploads to the Dagster graph exactly as a capture client does: a validated envelope
under robotics/envelopes/ and an inbox entry the intake sensor lists. Discovery therefore has one
path, whoever wrote the bytes. No Dagster and no web framework here.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from robotrace_assets import layout
from robotrace_assets.envelopes import validate
from robotrace_assets.objectstore.client import S3Client


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def put_json(client: S3Client, bucket: str, key: str, document: dict[str, Any]) -> str:
    """PUT a JSON document with an explicit SHA-256 (the store refuses altered bytes); its ETag."""
    body = json.dumps(document, indent=2, sort_keys=True).encode()
    response = client.put_object(
        Bucket=bucket,
        Key=key,
        Body=body,
        ContentType=layout.JSON_CONTENT_TYPE,
        ChecksumSHA256=base64.b64encode(hashlib.sha256(body).digest()).decode(),
    )
    return response["ETag"].strip('"')


def notify(
    client: S3Client,
    bucket: str,
    kind: str,
    entity_id: str,
    object_key: str,
    etag: str,
    size: int,
    at: datetime | None = None,
) -> str:
    """Write the inbox entry (the shape of an R2 event notification) for an envelope; its key."""
    now = at or datetime.now(UTC)
    event = {
        "action": "PutObject",
        "bucket": bucket,
        "object": {"key": object_key, "size": size, "eTag": etag},
        "eventTime": _iso(now),
        "kind": kind,
        "id": entity_id,
    }
    validate("inbox_event", event)
    key = layout.inbox_key(kind, entity_id, now)
    put_json(client, bucket, key, event)
    return key


def hand_off_session(client: S3Client, bucket: str, envelope: dict[str, Any]) -> str:
    """Validate and write a media session envelope, then its inbox entry; the envelope key."""
    validate("media_session", envelope)
    key = layout.session_envelope_key(envelope["media_session_id"])
    etag = put_json(client, bucket, key, envelope)
    notify(client, bucket, "session", envelope["media_session_id"], key, etag, 0)
    return key


def hand_off_segment(client: S3Client, bucket: str, envelope: dict[str, Any]) -> str:
    """Validate and write a segment envelope, then its inbox entry; the envelope key.

    Write it once every object the envelope declares is in the bucket (or while a multipart
    upload of the raw video is in progress): the intake sensor waits only a bounded window for
    a declared raw object before it fails the segment as missing.
    """
    validate("segment", envelope)
    key = layout.segment_envelope_key(envelope["segment_id"])
    etag = put_json(client, bucket, key, envelope)
    notify(client, bucket, "segment", envelope["segment_id"], key, etag, 0)
    return key
