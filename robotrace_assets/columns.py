"""The columns of every catalog table (robotics/catalog/<table>/<partition>.parquet): name,
Arrow type and meaning, for the Dagster UI's column schemas and anyone reading the Parquet.

Where a row is a typed record (the segment record, the part table, published derivatives, the
media probe, a clip's safety signals), its columns are read from that class, so a renamed field
renames its column here too. The other rows are built field by field in their asset modules and
are listed by hand; the UI test compares every table a small batch writes with this module.
No Dagster import.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from robotrace_assets import catalog
from robotrace_assets.clips.signals import SafetySignals
from robotrace_assets.delivery.manifest.schema import MANIFEST_COLUMNS
from robotrace_assets.derivatives.depths import DEPTH_STREAM_SCHEMA
from robotrace_assets.derivatives.publish import PublishedDerivative
from robotrace_assets.media.measure import MediaProbe
from robotrace_assets.records.segments import SegmentRecord
from robotrace_assets.segments.parts import PartRecord


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # as pyarrow prints it: string, int64, double, bool, list<string>, ...
    description: str = ""


_SCALARS = {str: "string", int: "int64", float: "double", bool: "bool", Path: "string"}


def arrow_type(hint: Any) -> str:
    """The Parquet column type a field of this Python type is written as. Optional fields have
    the type of their value; dicts are written as JSON text (catalog._cell)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in args if a is not type(None)]
        return arrow_type(inner)
    if hint in _SCALARS:
        return _SCALARS[hint]
    if origin in (dict, Mapping) or hint is dict:
        return "string"
    if origin in (list, tuple):
        return f"list<{arrow_type(args[0])}>" if args else "list<string>"
    raise TypeError(f"no Parquet type for {hint!r}")


def columns_of(
    record: type,
    descriptions: Mapping[str, str] | None = None,
    *,
    prefix: str = "",
    types_: Mapping[str, str] | None = None,
) -> tuple[Column, ...]:
    """The columns a dataclass record is written as, in field order."""
    hints = typing.get_type_hints(record)
    described, typed = descriptions or {}, types_ or {}
    return tuple(
        Column(
            prefix + f.name,
            typed.get(f.name) or arrow_type(hints[f.name]),
            described.get(f.name, ""),
        )
        for f in dataclasses.fields(record)
    )


def arrow_columns(schema: pa.Schema) -> tuple[Column, ...]:
    """The columns of an Arrow schema the code already declares."""
    return tuple(
        Column(f.name, str(f.type).replace("<item: ", "<").replace("<element: ", "<"))
        for f in schema
    )


def _columns(*specs: tuple[str, str] | tuple[str, str, str]) -> tuple[Column, ...]:
    return tuple(Column(*spec) for spec in specs)


SEGMENT_COLUMNS = columns_of(
    SegmentRecord,
    {
        "segment_index": "Position of the segment in its media session, from 0.",
        "boundary_reason": "Why the capture client cut the segment here.",
        "raw_key": "Object key of the raw video in the capture bucket.",
        "raw_sha256": "SHA-256 the client declared for the raw video (may be empty).",
        "part_count": "Multipart parts the client declared.",
        "sensors_key": "Object key of the robot's trajectory log, if it declared one.",
        "envelope": "The whole segment envelope as JSON text.",
    },
)

PART_COLUMNS = columns_of(
    PartRecord,
    {
        "offset": "Byte offset of the part in the completed object.",
        "status": "complete (in the completed object), uploaded (in progress) or missing.",
        "source": "Where the part list came from (ListParts, or HEAD with partNumber).",
    },
)

PROOF_COLUMNS = _columns(
    ("segment_id", "string"),
    ("media_session_id", "string"),
    ("tenant_id", "string"),
    ("provider", "string", "Object store the proof was made on (cloudflare-r2, s3-compatible)."),
    ("bucket", "string"),
    ("safe_key_prefix", "string", "The tenant's raw prefix the object key must lie under."),
    ("object_key", "string"),
    ("byte_size", "int64", "Size the store reports."),
    ("declared_size", "int64", "Size the envelope declares."),
    ("sha256", "string", "SHA-256 of the bytes read in full."),
    ("declared_sha256", "string"),
    ("sha256_declared", "bool", "Whether the client declared a SHA-256."),
    ("etag", "string", "ETag every later read is pinned to (If-Match)."),
    ("checksum_sha256", "string"),
    ("checksum_type", "string"),
    ("content_type", "string"),
    ("last_modified", "string"),
    ("encryption", "string"),
    ("lifecycle_tags", "string", "Object tags, JSON text."),
    ("request_id", "string", "The store's request id of the proving read."),
    ("integrity_status", "string", "verified, mismatch, unreadable, missing, unsafe_key or stale."),
    ("failed_checks", "list<string>", "Names of the proof checks that failed."),
    ("verified_at", "string"),
    ("read_seconds", "double"),
    ("objects", "string", "Proven observations of the declared objects, JSON text."),
    ("pins", "string", "Object key -> ETag, size, last-modified proven, JSON text."),
    ("expectation", "string", "What the envelope declares, JSON text (to re-evaluate)."),
    ("observation", "string", "What the store held, JSON text (to re-evaluate)."),
)

DERIVATIVE_COLUMNS = columns_of(
    PublishedDerivative,
    {
        "kind": "proxy, thumbnail, contact_sheet, labels, labels_vtt, transcript, "
        "transcript_vtt, depth or depth_index."
    },
) + _columns(
    ("source_segment_id", "string"),
    ("source_key", "string", "Raw video the derivative was made from."),
    ("source_sha256", "string", "SHA-256 of the proven raw bytes it was made from."),
    ("profile_version", "string", "Derivative profile (derivatives/profiles.py)."),
    ("profile_fingerprint", "string", "Hash of every profile setting."),
)

PROBE_COLUMNS = (
    Column("segment_id", "string"),
    *columns_of(
        MediaProbe,
        {"timestamp_gaps": "(start, length) seconds of each gap between video frames."},
    ),
)

_DEPTH_STREAM_DESCRIPTIONS = {
    "modality": "From the stream's DEPTH_SENSOR tag (lidar, tof, structured_light, stereo); "
    "null: the segment has no depth stream.",
    "reason": "Why the segment has no depth stream.",
    "format": "Format of the declared depth object (robotrace-depth-mkv-v1).",
    "object_key": "Object key of the proven depth object.",
    "sha256": "SHA-256 its proof read.",
    "width": "Depth map width, pixels.",
    "height": "Depth map height, pixels.",
    "fps": "Nominal depth rate (median frame interval, so drops do not lower it).",
    "frames": "Depth frames stored.",
    "dropped_frames": "Depth frames missing between the timestamps at the nominal rate.",
    "video_frames": "Video frames of the segment (the media probe's count).",
    "aligned_video_frames": "Video frames with a depth frame within half a depth period.",
    "unaligned_video_frames": "Video frames left without depth (where depth frames dropped).",
    "max_offset_ms": "Largest |depth time - video time| of an aligned video frame.",
    "times": "Every depth frame's time, seconds on the video clock (clips count their window).",
}
DEPTH_STREAM_COLUMNS = tuple(
    dataclasses.replace(c, description=_DEPTH_STREAM_DESCRIPTIONS.get(c.name, ""))
    for c in arrow_columns(DEPTH_STREAM_SCHEMA)
)

# MediaSessionEnvelope.provenance(): carried by sessions, clips and everything after them.
PROVENANCE_COLUMNS = _columns(
    ("media_session_id", "string"),
    ("session_id", "string", "The capture session id of the seed's clip object."),
    ("tenant_id", "string"),
    ("operator_id", "string"),
    ("task_brief_id", "string"),
    ("device_model", "string"),
    ("consent_receipt_id", "string", "Empty: no consent, never approved or delivered."),
    ("license_scope_id", "string", "Empty: no license, never approved or delivered."),
    ("allowed_use", "list<string>"),
    ("safety_rules_version", "string", "Safety rules the session's clips are scored by."),
    ("source", "string", "capture_client or teleop."),
    ("device_tier", "int64"),
    ("client_provenance", "string", "What else the client reported, JSON text."),
)

SESSION_COLUMNS = PROVENANCE_COLUMNS + _columns(
    ("task_name", "string"),
    ("device_has_lidar", "bool"),
    ("blur_enforced", "bool"),
    ("created_at", "string"),
    ("segment_ids", "list<string>"),
    ("segments_declared", "int64"),
    ("segments_seen", "int64"),
    ("segments_verified", "int64"),
    ("segments_failed", "int64"),
    ("bytes_declared", "int64"),
    ("bytes_verified", "int64"),
    ("proof_states", "string", "Segment id -> proof state, JSON text."),
    ("refused_claims", "string", "Segments the session lists but does not own, JSON text."),
    ("buyer_ready", "bool", "Every declared segment is verified."),
    ("review_outcomes", "string", "Clips by final review status, JSON text."),
    ("payout_totals", "string", "Payout state -> segments and amount per currency, JSON text."),
    ("buyer_readiness", "string", "Segments proven with a final review and an approved clip."),
)

CLIP_COLUMNS = (
    _columns(
        ("clip_id", "string", "What reviewers and buyers name the clip by."),
        ("segment_id", "string"),
        ("clip_index", "int64"),
        ("start_s", "double", "Window start, seconds from the segment start."),
        ("end_s", "double", "Window end, seconds from the segment start."),
        ("label", "string", "Task step of the window, if the envelope names steps."),
        ("boundary", "string", "task_step or fixed_window."),
        ("duration_ms", "int64"),
        ("video_codec", "string"),
        ("video_frames", "int64"),
        ("video_fps", "double"),
        ("video_width", "int64"),
        ("video_height", "int64"),
        ("depth_modality", "string"),
        ("depth_frames", "int64"),
        ("trajectory_frames", "int64", "Trajectory samples inside the window."),
        ("room_scale_mesh", "bool"),
        ("blur_enforced", "bool"),
    )
    + columns_of(SafetySignals, prefix="signal_", types_={"notes": "string"})
    + _columns(
        ("frame_gaps", "string", "Video frame gaps inside the window, JSON text."),
        ("machine_safety", "double", "Machine score 0..1 under rules_version."),
        ("machine_smoothness", "double"),
        ("machine_quality", "double"),
        ("machine_status", "string", "approved, needs_review or rejected."),
        ("machine_reasons", "list<string>", "Why the machine did not approve."),
        ("rules_version", "string"),
    )
    + PROVENANCE_COLUMNS
    + _columns(
        ("raw_key", "string"),
        ("raw_sha256", "string", "SHA-256 of the proven raw bytes: what was judged."),
        ("proof_integrity_status", "string"),
        ("proof_verified_at", "string"),
        ("proof_request_id", "string"),
        ("clip_object", "string", "The seed's clip object, JSON text."),
    )
)

REVIEW_COLUMNS = CLIP_COLUMNS + _columns(
    ("reviewer_safety", "double", "A reviewer's override, beside the machine score."),
    ("reviewer_smoothness", "double"),
    ("reviewer_quality", "double"),
    ("final_safety", "double"),
    ("final_smoothness", "double"),
    ("final_quality", "double"),
    ("final_status", "string", "approved, needs_review or rejected after review."),
    ("decided_by", "string"),
    ("decision_rationale", "string"),
    ("decided_at", "string"),
    ("reasons", "list<string>"),
    ("decision_history", "string", "Every decision that counted, JSON text."),
)

# The Parquet export manifest of a buyer delivery (one row per delivered file).
DELIVERY_MANIFEST_COLUMNS = arrow_columns(MANIFEST_COLUMNS)

PAYOUT_EVENT_COLUMNS = _columns(
    ("event_id", "string", "pev_<ULID>: the ledger event."),
    ("segment_id", "string"),
    ("media_session_id", "string"),
    ("state", "string", "not_payable, pending, payable, approved, paid or withheld."),
    ("reason", "string", "Why the state changed."),
    ("actor", "string", "Who changed it: a person (--by) or robotrace/<asset or sensor>."),
    ("at", "string", "When, ISO 8601 UTC."),
    ("currency", "string", "ISO 4217 code of the amount."),
    ("approved_minutes", "string", "Minutes of approved clips, exact decimal text."),
    ("amount", "string", "Amount of this state, exact decimal text."),
    ("batch_id", "string", "The payout batch that paid it (paid events)."),
)

CATALOG_COLUMNS: dict[str, tuple[Column, ...]] = {
    catalog.SESSIONS: SESSION_COLUMNS,
    catalog.SEGMENTS: SEGMENT_COLUMNS,
    catalog.PARTS: PART_COLUMNS,
    catalog.PROOFS: PROOF_COLUMNS,
    catalog.DERIVATIVES: DERIVATIVE_COLUMNS,
    catalog.MEDIA_PROBES: PROBE_COLUMNS,
    catalog.DEPTH_STREAMS: DEPTH_STREAM_COLUMNS,
    catalog.CLIPS: CLIP_COLUMNS,
    catalog.CLIP_REVIEWS: REVIEW_COLUMNS,
    catalog.REVIEW_COMPLETE: REVIEW_COLUMNS,
    catalog.REGRESSION_BANK: REVIEW_COLUMNS,
    catalog.PAYOUT_EVENTS: PAYOUT_EVENT_COLUMNS,
}
