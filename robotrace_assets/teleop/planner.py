"""Egress recordings -> a media session of bounded segments, handed to the Dagster graph.

For each usable operator recording (in the order they started): download it from where Egress
wrote it, cut it into segments of at most the configured length by stream copy, upload each
under robotics/raw/<tenant>/<media_session>/<segment>.mp4 (multipart, every part bound to its
SHA-256), slice the data-track telemetry (when the recorder wrote one) into each segment's
sensor log, and write the envelopes and inbox entries with `intake.handoff`, so the existing
graph proves, derives, clips and scores them. Segment ids derive from the media session, the
egress and the index, and the cut is bit-exact, so a retried hand-off writes the same keys and
bytes.
"""

from __future__ import annotations

import base64
import hashlib
import io
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from robotrace_assets import layout
from robotrace_assets.envelopes import SCHEMA_VERSION
from robotrace_assets.ids import derived_id
from robotrace_assets.intake.handoff import hand_off_segment, hand_off_session
from robotrace_assets.media.probe import probe_video_stream
from robotrace_assets.objectstore.client import S3Client, error_code, head_object
from robotrace_assets.objectstore.multipart import (
    MIN_PART_SIZE,
    PresignedMultipartUploader,
    digest_file,
)
from robotrace_assets.teleop.lifecycle import Recording
from robotrace_assets.teleop.segmenting import cut_segments, plan_cuts, probe_keyframes

PART_SIZE = 64 * 1024 * 1024
TELEMETRY_NAME = "telemetry.sensors.parquet"  # written by the data-track recorder, if any
MIN_SENSOR_HZ = 30.0


class HandOffError(RuntimeError):
    """The recordings could not become a media session; the message says why."""


@dataclass(frozen=True)
class SessionFacts:
    """What the hand-off needs to know about a teleop session (no ORM here)."""

    session_id: str
    tenant_id: str
    media_session_id: str
    room_name: str
    room_sid: str
    operator_id: str
    task_brief_id: str
    tier: int
    device: dict[str, Any]
    task: dict[str, Any]
    environment: dict[str, bool]
    consent: dict[str, Any] | None
    license: dict[str, Any] | None
    safety_rules_version: str
    created_at: datetime

    def provenance(self) -> dict[str, Any]:
        return {
            "teleop_session_id": self.session_id,
            "operator_id": self.operator_id,
            "task_brief_id": self.task_brief_id,
            "device_model": self.device["model"],
            "tier": self.tier,
            "room_name": self.room_name,
            "room_id": self.room_sid,
        }


def egress_prefix(tenant_id: str, media_session_id: str) -> str:
    """Where Egress writes a session's recordings (its filepath is set under this prefix)."""
    return f"{layout.RAW}/{tenant_id}/{media_session_id}/egress/"


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class PlannedSegment:
    segment_id: str
    index: int
    path: Path
    started_at: datetime
    duration_s: float
    frames: int
    fps: float
    egress_id: str


def _download(s3: S3Client, bucket: str, recording: Recording, into: Path) -> Path:
    assert recording.file_key is not None
    reason = "404"
    try:
        head = head_object(s3, bucket, recording.file_key, checksum=False)
    except s3.exceptions.ClientError as error:
        head, reason = None, error_code(error) or "error"
    if head is None:
        raise HandOffError(
            f"egress {recording.egress_id}: recording {recording.file_key} is not in the bucket "
            f"({reason})"
        )
    if recording.size_bytes and head["ContentLength"] != recording.size_bytes:
        raise HandOffError(
            f"egress {recording.egress_id}: stored size {head['ContentLength']} differs from the "
            f"{recording.size_bytes} bytes Egress reported"
        )
    path = into / f"{recording.egress_id}.mp4"
    s3.download_file(bucket, recording.file_key, str(path))
    return path


def plan_segments(
    facts: SessionFacts, recordings: list[Recording], paths: list[Path], max_s: float, work: Path
) -> list[PlannedSegment]:
    planned: list[PlannedSegment] = []
    for recording, path in zip(recordings, paths, strict=True):
        packets = probe_keyframes(path)
        cuts = plan_cuts(packets, max_s)
        pieces = cut_segments(path, cuts, work / recording.egress_id)
        start = datetime.fromtimestamp(recording.started_at_ns / 1e9, UTC)
        offsets = [0.0, *cuts]
        for offset, piece in zip(offsets, pieces, strict=True):
            piece_packets = probe_keyframes(piece)
            index = len(planned)
            planned.append(
                PlannedSegment(
                    segment_id=derived_id(
                        "seg", facts.media_session_id, f"{recording.egress_id}:{index}"
                    ),
                    index=index,
                    path=piece,
                    started_at=start + timedelta(seconds=offset),
                    duration_s=piece_packets.duration_s,
                    frames=len(piece_packets.times_s),
                    fps=round(1 / piece_packets.frame_interval_s, 3),
                    egress_id=recording.egress_id,
                )
            )
    return planned


def read_telemetry(s3: S3Client, bucket: str, facts: SessionFacts) -> pa.Table | None:
    """The data-track telemetry (our Parquet sensor schema), or None when none was recorded."""
    key = egress_prefix(facts.tenant_id, facts.media_session_id) + TELEMETRY_NAME
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.ClientError as error:
        if error_code(error) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    try:
        table = pq.read_table(io.BytesIO(body))
    except (pa.ArrowInvalid, OSError) as error:
        raise HandOffError(f"telemetry {key} is not readable Parquet: {error}") from None
    if "host_time_ns" not in table.column_names:
        raise HandOffError(f"telemetry {key} has no host_time_ns column")
    return table.sort_by("host_time_ns")


def _slice_telemetry(table: pa.Table, segment: PlannedSegment) -> tuple[bytes, float] | None:
    host = table["host_time_ns"].to_numpy()
    start_ns = int(segment.started_at.timestamp() * 1e9)
    end_ns = start_ns + int(segment.duration_s * 1e9)
    picked = np.flatnonzero((host >= start_ns) & (host < end_ns))
    if picked.size < 2:
        return None
    window = table.slice(int(picked[0]), int(picked[-1] - picked[0] + 1))
    hz = 1e9 / float(np.median(np.diff(window["host_time_ns"].to_numpy())))
    if hz < MIN_SENSOR_HZ:
        return None  # too sparse for signals: the segment goes on without a sensor log
    buffer = io.BytesIO()
    pq.write_table(window, buffer, compression="zstd")
    return buffer.getvalue(), round(hz, 3)


def _put_bytes(s3: S3Client, bucket: str, key: str, body: bytes, content_type: str) -> None:
    # An explicit SHA-256: the store refuses the PUT if the bytes arrive altered.
    checksum = base64.b64encode(hashlib.sha256(body).digest()).decode()
    s3.put_object(
        Bucket=bucket, Key=key, Body=body, ContentType=content_type, ChecksumSHA256=checksum
    )


def _upload_segment(
    s3: S3Client,
    bucket: str,
    facts: SessionFacts,
    segment: PlannedSegment,
    telemetry: pa.Table | None,
    last: bool,
) -> dict[str, Any]:
    """Upload one segment's video (and sensor log) and return its envelope."""
    raw_key = layout.raw_video_key(facts.tenant_id, facts.media_session_id, segment.segment_id)
    digest = digest_file(segment.path, PART_SIZE)
    PresignedMultipartUploader(s3, bucket, part_size=PART_SIZE).upload(
        segment.path, raw_key, layout.VIDEO_CONTENT_TYPE, digest=digest
    )
    stream = probe_video_stream(segment.path)
    raw: dict[str, Any] = {
        "object_key": raw_key,
        "size_bytes": digest.size,
        "sha256": digest.sha256_hex,
        "content_type": layout.VIDEO_CONTENT_TYPE,
        "fps": segment.fps,
        "width": stream.width,
        "height": stream.height,
        "frames": segment.frames,
    }
    if stream.codec in ("h264", "hevc"):
        raw["codec"] = stream.codec
    envelope: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "media_session_id": facts.media_session_id,
        "segment_id": segment.segment_id,
        "capture_id": derived_id("cap", segment.segment_id, "capture"),
        "tenant_id": facts.tenant_id,
        "segment_index": segment.index,
        "started_at": _iso(segment.started_at),
        "ended_at": _iso(segment.started_at + timedelta(seconds=segment.duration_s)),
        "boundary_reason": "end_of_session" if last else "time_limit",
        "raw": raw,
        "upload": {
            "part_count": len(digest.parts),
            "part_size_bytes": max(PART_SIZE, MIN_PART_SIZE),
            "checksum_algorithm": "SHA256",
        },
        "source": "teleop",
        "provenance": {**facts.provenance(), "egress_id": segment.egress_id},
    }
    sliced = _slice_telemetry(telemetry, segment) if telemetry is not None else None
    if sliced is not None:
        body, hz = sliced
        key = layout.raw_sensors_key(facts.tenant_id, facts.media_session_id, segment.segment_id)
        _put_bytes(s3, bucket, key, body, layout.PARQUET_CONTENT_TYPE)
        envelope["sensors"] = {
            "object_key": key,
            "size_bytes": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
            "format": "parquet",
            "hz": hz,
        }
    return envelope


def session_envelope(facts: SessionFacts, segment_ids: list[str], egress_ids: list[str]) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "media_session_id": facts.media_session_id,
        "session_id": facts.session_id,
        "tenant_id": facts.tenant_id,
        "operator_id": facts.operator_id,
        "task_brief_id": facts.task_brief_id,
        "task": facts.task,
        "device": {
            "model": facts.device["model"],
            "tier": facts.tier,
            "has_lidar": bool(facts.device.get("has_lidar", False)),
        },
        "created_at": _iso(facts.created_at),
        "consent": facts.consent,
        "license": facts.license,
        "safety_rules_version": facts.safety_rules_version,
        "environment": facts.environment,
        "segment_ids": segment_ids,
        "source": "teleop",
        "provenance": {**facts.provenance(), "egress_ids": egress_ids},
    }


def hand_off_recordings(
    s3: S3Client,
    bucket: str,
    facts: SessionFacts,
    recordings: list[Recording],
    max_segment_s: float,
    workdir: Path | None = None,
) -> list[str]:
    """Turn the session's operator recordings into a handed-off media session; its segment ids.

    Every segment's objects are in the bucket before any envelope is written, and the session
    envelope is written before the segment envelopes, as a capture client does.
    """
    if not recordings:
        raise HandOffError(f"session {facts.session_id} has no operator recording to hand off")
    work = Path(tempfile.mkdtemp(prefix="robotrace-teleop-", dir=workdir))
    try:
        paths = [_download(s3, bucket, r, work) for r in recordings]
        planned = plan_segments(facts, recordings, paths, max_segment_s, work)
        telemetry = read_telemetry(s3, bucket, facts)
        envelopes = [
            _upload_segment(s3, bucket, facts, seg, telemetry, last=i == len(planned) - 1)
            for i, seg in enumerate(planned)
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    segment_ids = [e["segment_id"] for e in envelopes]
    hand_off_session(
        s3, bucket, session_envelope(facts, segment_ids, [r.egress_id for r in recordings])
    )
    for envelope in envelopes:
        hand_off_segment(s3, bucket, envelope)
    return segment_ids
