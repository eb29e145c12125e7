"""Bucket layout: every object key the project reads or writes is built here.

    robotics/raw/<tenant>/<media_session>/<segment>.mp4              raw video (multipart upload)
    robotics/raw/<tenant>/<media_session>/<segment>.sensors.parquet  trajectory / joints / force
    robotics/envelopes/sessions/<media_session>.json                 media session envelope
    robotics/envelopes/segments/<segment>.json                       segment envelope
    robotics/inbox/<YYYY-MM-DD>/<HHMMSS.ffffff>Z_<kind>_<id>.json    upload notifications
    robotics/catalog/<table>/<partition>.parquet                     records the pipeline writes
    robotics/derivatives/<tenant>/<media_session>/<segment>/<profile>/...   proxy, thumbnails
    robotics/decisions/<YYYY-MM-DD>/<HHMMSS.ffffff>Z_<decision_id>.json      reviewer decisions
    robotics/deliveries/<buyer>/<delivery>/                                   manifests, copies

Envelope keys derive from ids alone, so any asset can find its envelope from its partition key.
Inbox keys sort by the time they were written, so a sensor can list only what is new (S3
StartAfter) instead of the whole bucket; an inbox entry has the shape of an R2 event notification.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

ROOT = "robotics"
RAW = f"{ROOT}/raw"
ENVELOPES = f"{ROOT}/envelopes"
INBOX = f"{ROOT}/inbox"
CATALOG = f"{ROOT}/catalog"
DERIVATIVES = f"{ROOT}/derivatives"
DECISIONS = f"{ROOT}/decisions"
DELIVERIES = f"{ROOT}/deliveries"

VIDEO_CONTENT_TYPE = "video/mp4"
PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"
JSON_CONTENT_TYPE = "application/json"
JPEG_CONTENT_TYPE = "image/jpeg"


class UnsafeKey(ValueError):
    """An object key that could escape its tenant's prefix."""


def tenant_raw_prefix(tenant_id: str) -> str:
    return f"{RAW}/{tenant_id}/"


def raw_video_key(tenant_id: str, media_session_id: str, segment_id: str) -> str:
    return f"{RAW}/{tenant_id}/{media_session_id}/{segment_id}.mp4"


def raw_sensors_key(tenant_id: str, media_session_id: str, segment_id: str) -> str:
    return f"{RAW}/{tenant_id}/{media_session_id}/{segment_id}.sensors.parquet"


def raw_depth_key(tenant_id: str, media_session_id: str, segment_id: str) -> str:
    return f"{RAW}/{tenant_id}/{media_session_id}/{segment_id}.depth.mkv"


def session_envelope_key(media_session_id: str) -> str:
    return f"{ENVELOPES}/sessions/{media_session_id}.json"


def segment_envelope_key(segment_id: str) -> str:
    return f"{ENVELOPES}/segments/{segment_id}.json"


def derivative_prefix(
    tenant_id: str, media_session_id: str, segment_id: str, profile_version: str
) -> str:
    return f"{DERIVATIVES}/{tenant_id}/{media_session_id}/{segment_id}/{profile_version}/"


def catalog_key(table: str, partition: str) -> str:
    return f"{CATALOG}/{table}/{partition}.parquet"


def inbox_key(kind: str, entity_id: str, at: datetime) -> str:
    at = at.astimezone(UTC)
    return f"{INBOX}/{at:%Y-%m-%d}/{at:%H%M%S.%f}Z_{kind}_{entity_id}.json"


def inbox_floor(at: datetime, prefix: str = INBOX) -> str:
    """The greatest key that sorts before every entry of a time-ordered prefix (the inbox, the
    decisions) written at or after `at`."""
    at = at.astimezone(UTC)
    return f"{prefix}/{at:%Y-%m-%d}/{at:%H%M%S.%f}"


_INBOX_RE = re.compile(
    rf"^{INBOX}/(\d{{4}}-\d{{2}}-\d{{2}})/(\d{{6}}\.\d{{6}})Z_(session|segment)_([A-Za-z0-9_]+)\.json$"
)


def parse_inbox_key(key: str) -> tuple[str, str, datetime] | None:
    """(kind, id, written_at) of an inbox key, or None for anything else under the prefix."""
    match = _INBOX_RE.match(key)
    if not match:
        return None
    day, clock, kind, entity_id = match.groups()
    at = datetime.strptime(f"{day} {clock}", "%Y-%m-%d %H%M%S.%f").replace(tzinfo=UTC)
    return kind, entity_id, at


def delivery_prefix(buyer_id: str, delivery_id: str) -> str:
    return f"{DELIVERIES}/{buyer_id}/{delivery_id}/"


def decision_key(decision_id: str, at: datetime) -> str:
    """Reviewer decisions sort by the time they were written, like inbox entries."""
    at = at.astimezone(UTC)
    return f"{DECISIONS}/{at:%Y-%m-%d}/{at:%H%M%S.%f}Z_{decision_id}.json"


def filed_decisions_prefix(segment_id: str) -> str:
    return f"{CATALOG}/review_decisions/{segment_id}/"


def filed_decision_key(segment_id: str, decision_id: str) -> str:
    """Where the decision sensor files a validated decision, under its segment (append-only)."""
    return f"{filed_decisions_prefix(segment_id)}{decision_id}.json"


def clip_index_key(clip_id: str) -> str:
    return f"{CATALOG}/clip_index/{clip_id}.json"


_SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_key_within(key: str, prefix: str) -> str:
    """Refuse a key that is not a plain path strictly inside `prefix`.

    A key is compared segment by segment (no `..`, `.`, empty segments, backslashes or control
    characters) so that `robotics/raw/ten_A/../ten_B/x` cannot pass a naive startswith test.
    """
    if not isinstance(key, str) or not key:
        raise UnsafeKey(f"object key must be a non-empty string, got {key!r}")
    if not prefix.endswith("/"):
        raise ValueError("prefix must end with '/'")
    if not key.startswith(prefix):
        raise UnsafeKey(f"key {key!r} is outside the prefix {prefix!r}")
    for part in key.split("/"):
        if part in ("", ".", "..") or not _SAFE_SEGMENT.match(part):
            raise UnsafeKey(f"key {key!r} has an unsafe path segment {part!r}")
    return key
