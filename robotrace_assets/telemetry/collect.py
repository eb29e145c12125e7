"""Everything the telemetry MCAP of one media session shows, read from the bucket's catalog.

The session envelope (provenance), and per segment: its catalog row, its trajectory log (any
format ``robotlogs`` reads, checked against the envelope's SHA-256), its clips, their review
outcomes and its proxy video. A segment whose log cannot be read still contributes its clips,
scores and decisions; the reason goes into the export's log channel.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa

from robotrace_assets import catalog, layout
from robotrace_assets.derivatives.labels import LabelError, read_label_track
from robotrace_assets.envelopes import MediaSessionEnvelope
from robotrace_assets.records.errors import RecordError
from robotrace_assets.records.proofs import load_proof
from robotrace_assets.records.sessions import load_session_envelope
from robotrace_assets.records.store import RecordStore
from robotrace_assets.robotlogs import RobotLogError, TopicMapFile, read_segment_log

__all__ = [
    "RecordStore",
    "SegmentTelemetry",
    "SessionTelemetry",
    "TelemetryError",
    "collect_session",
    "select_clips",
    "sensors_format",
]


class TelemetryError(ValueError):
    """The session cannot be exported (unknown id, unreadable envelope)."""


@dataclass(frozen=True)
class SegmentTelemetry:
    segment_id: str
    row: dict[str, Any]  # catalog segments row
    trajectory: pa.Table | None
    trajectory_error: str | None  # why there is no trajectory
    clips: list[dict[str, Any]]  # catalog clips rows, in clip order
    reviews: dict[str, dict[str, Any]]  # clip_id -> catalog clip_reviews row
    proxy: dict[str, Any] | None  # catalog derivatives row of kind "proxy"
    # Video-clock time (epoch ns) that clip start_s/end_s count from: the first trajectory
    # sample's host time, as the clip asset cuts, else the segment's started_at.
    origin_ns: int
    labels: pa.Table | None = None  # the label track derivative, when made and intact

    @property
    def sensors_format(self) -> str:
        return sensors_format(self.row)


def sensors_format(row: dict[str, Any]) -> str:
    """The segment envelope's ``sensors.format`` (our Parquet schema when not declared)."""
    doc = row.get("envelope") or {}
    envelope = json.loads(doc) if isinstance(doc, str) else dict(doc)
    return str((envelope.get("sensors") or {}).get("format") or "parquet")


@dataclass(frozen=True)
class SessionTelemetry:
    envelope: MediaSessionEnvelope
    segments: list[SegmentTelemetry]
    missing_segments: list[str] = field(default_factory=list)  # declared, not in the catalog


def _proven_sha256(store: RecordStore, row: dict[str, Any]) -> str | None:
    """SHA-256 of the sensor log bytes the provider proof read (the catalog's proof record
    lists each proven object by role), else the one the envelope declared."""
    proof = load_proof(store, row["segment_id"])
    found = proof.proven_object("sensors") if proof is not None else None
    if found and found.get("read_sha256"):
        return str(found["read_sha256"])
    return row.get("sensors_sha256")


def _sensor_bytes(store: RecordStore, row: dict[str, Any]) -> bytes:
    """The segment's sensor log, only if it is the proven (or at least declared) content."""
    key = row.get("sensors_key")
    if not key:
        raise RobotLogError("segment has no sensor log")
    expected = _proven_sha256(store, row)
    if not expected:
        raise RobotLogError("sensor log neither proven nor declared with a SHA-256")
    try:
        layout.check_key_within(key, layout.tenant_raw_prefix(row["tenant_id"]))
        data = store.get_bytes(key)
    except (layout.UnsafeKey, LookupError) as error:
        raise RobotLogError(f"sensor log: {error}") from None
    if hashlib.sha256(data).hexdigest() != expected:
        raise RobotLogError("sensor log SHA-256 differs from the proven one")
    return data


def _trajectory(
    store: RecordStore,
    row: dict[str, Any],
    device_model: str,
    topic_maps: TopicMapFile | None,
) -> tuple[pa.Table | None, str | None]:
    try:
        return read_segment_log(
            _sensor_bytes(store, row),
            sensors_format(row),
            tenant_id=row["tenant_id"],
            device_model=device_model,
            topic_maps=topic_maps,
        ), None
    except RobotLogError as error:
        return None, str(error)


def _segment(
    store: RecordStore,
    envelope: MediaSessionEnvelope,
    row: dict[str, Any],
    topic_maps: TopicMapFile | None,
) -> SegmentTelemetry:
    segment_id = row["segment_id"]
    clips = sorted(
        store.read_record(catalog.CLIPS, segment_id) or [], key=lambda c: c["clip_index"]
    )
    reviews = {r["clip_id"]: r for r in store.read_record(catalog.CLIP_REVIEWS, segment_id) or []}
    derivatives = store.read_record(catalog.DERIVATIVES, segment_id) or []
    proxy = next((d for d in derivatives if d.get("kind") == "proxy"), None)
    table, error = _trajectory(store, row, envelope.device_model, topic_maps)
    labels = _labels(store, next((d for d in derivatives if d.get("kind") == "labels"), None))
    return SegmentTelemetry(
        segment_id, row, table, error, clips, reviews, proxy, _origin_ns(row, table), labels
    )


def _labels(store: RecordStore, record: dict[str, Any] | None) -> pa.Table | None:
    """The label track whose bytes still have the SHA-256 it was published with, else None
    (an export without labels is still a telemetry export)."""
    if record is None:
        return None
    try:
        data = store.get_bytes(str(record["key"]))
        if hashlib.sha256(data).hexdigest() != record.get("sha256"):
            return None
        return read_label_track(data)
    except (LookupError, LabelError):
        return None


def _origin_ns(row: dict[str, Any], table: pa.Table | None) -> int:
    if table is not None and table.num_rows:
        return int(table["host_time_ns"][0].as_py())
    started = datetime.fromisoformat(str(row["started_at"]).replace("Z", "+00:00"))
    return round(started.timestamp() * 1e6) * 1000


def select_clips(session: SessionTelemetry, clip_ids: Collection[str]) -> SessionTelemetry:
    """Only the given clips: their segments, their clip records and decisions, and the
    trajectory samples inside their windows (e.g. what one buyer's delivery may carry).
    Segments without a selected clip are left out."""
    wanted = set(clip_ids)
    segments = []
    for segment in session.segments:
        clips = [c for c in segment.clips if c["clip_id"] in wanted]
        if not clips:
            continue
        table = segment.trajectory
        if table is not None and table.num_rows:
            rel_s = (table["host_time_ns"].to_numpy() - segment.origin_ns) / 1e9
            keep = np.zeros(table.num_rows, dtype=bool)
            for clip in clips:  # the clip asset's windows: [start_s, end_s)
                keep |= (rel_s >= clip["start_s"]) & (rel_s < clip["end_s"])
            table = table.filter(pa.array(keep))
        reviews = {k: v for k, v in segment.reviews.items() if k in wanted}
        segments.append(replace(segment, clips=clips, reviews=reviews, trajectory=table))
    return replace(session, segments=segments)


def collect_session(
    store: RecordStore, media_session_id: str, topic_maps: TopicMapFile | None = None
) -> SessionTelemetry:
    """Read the session's records; ``topic_maps`` defaults to ``$ROBOTRACE_TOPIC_MAP_FILE``
    (only loaded when a segment's log is not Parquet)."""
    try:
        envelope = load_session_envelope(store, media_session_id)
    except RecordError as error:
        raise TelemetryError(str(error)) from None
    segments: list[SegmentTelemetry] = []
    missing: list[str] = []
    for segment_id in envelope.segment_ids:
        rows = store.read_record(catalog.SEGMENTS, segment_id)
        if not rows:
            missing.append(segment_id)
            continue
        segments.append(_segment(store, envelope, rows[0], topic_maps))
    return SessionTelemetry(envelope, segments, missing)
