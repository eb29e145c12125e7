"""The manifest's columns and the fixed values of format_version "1"."""

from __future__ import annotations

import pyarrow as pa

FORMAT_VERSION = "1"
PARQUET_METADATA_KEY = b"robotrace.manifest"  # the header JSON, in the Parquet schema metadata
MAX_SIZE_BYTES = 2**53 - 1  # sizes stay exact as JSON numbers in every language (JavaScript too)

KINDS = (
    "raw_video",
    "sensor_log",
    "declared_object",  # any other object a segment declares (actions, depth...), proven alike
    "proxy",
    "thumbnail",
    "contact_sheet",
    "labels",  # the per-frame label track (Parquet) and its WebVTT
    "labels_vtt",
    "transcript",  # the narration's transcript (JSON with word times) and its WebVTT
    "transcript_vtt",
    "depth",  # the depth stream's facts (JSON) and its per-video-frame index (Parquet)
    "depth_index",
    "lerobot_file",
    "telemetry_mcap",  # one MCAP per media session (Foxglove schemas)
)
# A LeRobot dataset file spans clips of many segments: its clip_ids carry the lineage, so these
# segment-level columns may be null for it. Every other kind belongs to exactly one segment.
MULTI_SEGMENT_KINDS = ("lerobot_file", "telemetry_mcap")

MANIFEST_COLUMNS = pa.schema(
    [
        pa.field("artifact_key", pa.string(), nullable=False),  # the key as delivered
        pa.field("source_key", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("size_bytes", pa.int64(), nullable=False),
        pa.field("sha256", pa.string(), nullable=False),  # lowercase hex of the artifact
        pa.field("clip_ids", pa.list_(pa.string()), nullable=False),  # clips it serves
        pa.field("segment_id", pa.string()),
        pa.field("media_session_id", pa.string()),
        pa.field("tenant_id", pa.string()),
        pa.field("raw_sha256", pa.string()),  # the source segment's proven SHA-256
        pa.field("proof_status", pa.string()),
        pa.field("proof_verified_at", pa.string()),  # ISO 8601
        pa.field("consent_receipt_id", pa.string()),
        pa.field("license_scope_id", pa.string()),
        pa.field("allowed_use", pa.list_(pa.string())),
        pa.field("safety_rules_version", pa.string()),
        pa.field("review_status", pa.string()),
        pa.field("reviewed_by", pa.string()),
        pa.field("review_rationale", pa.string()),
    ]
)
REQUIRED_COLUMNS = tuple(f.name for f in MANIFEST_COLUMNS if not f.nullable)
# Null only for MULTI_SEGMENT_KINDS; reviewed_by and review_rationale may always be null.
SEGMENT_LINEAGE_COLUMNS = (
    "segment_id",
    "media_session_id",
    "tenant_id",
    "raw_sha256",
    "proof_status",
    "proof_verified_at",
    "consent_receipt_id",
    "license_scope_id",
    "allowed_use",
    "safety_rules_version",
    "review_status",
)
HEX_COLUMNS = ("sha256", "raw_sha256")
# Every column nullable while parsing, so a missing value becomes a clear null error in the row
# checks rather than an opaque conversion failure.
LOOSE_COLUMNS = pa.schema([f.with_nullable(True) for f in MANIFEST_COLUMNS])
