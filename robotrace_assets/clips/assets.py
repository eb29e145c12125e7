"""The clip asset: each proven segment cut into clips that carry the seed's clip object, their
safety signals, machine scores under the versioned rules, and full provenance."""

import base64
import hashlib
import json
from typing import Any

import numpy as np
import pyarrow as pa
from dagster import (
    AssetExecutionContext,
    AssetKey,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from robotrace_assets import catalog, layout
from robotrace_assets.clips.cutting import ClipWindow, cut_clips
from robotrace_assets.clips.kinematics import jerk_series
from robotrace_assets.clips.plots import ClipTrace, clip_signal_png
from robotrace_assets.clips.rules import UnknownRulesVersion, rules_for, score, without_signals
from robotrace_assets.clips.signals import compute_signals
from robotrace_assets.derivatives.assets import MEDIA_PROBE
from robotrace_assets.envelopes import MediaSessionEnvelope
from robotrace_assets.objectstore.client import ObjectChanged, get_pinned
from robotrace_assets.partitions import segment_partitions
from robotrace_assets.proof.assets import PROVIDER_PROOF, proven_object
from robotrace_assets.proof.guard import confirm_unchanged, require_proven
from robotrace_assets.resources import ObjectStoreResource
from robotrace_assets.robotlogs import RobotLogError, read_segment_log
from robotrace_assets.segments.assets import load_segment_row
from robotrace_assets.sessions.assets import load_session_envelope

CLIPS = AssetKey(["clips", "clip"])


# A trajectory with no samples: what clips are scored on when the robot log cannot be read.
EMPTY_TRAJECTORY = pa.table(
    {
        "host_time_ns": pa.array([], pa.int64()),
        "device_time_ns": pa.array([], pa.int64()),
        **{axis: pa.array([], pa.float64()) for axis in ("ee_x", "ee_y", "ee_z")},
    }
)


def load_sensor_log(
    store: ObjectStoreResource,
    row: dict[str, Any],
    proof: dict[str, Any],
    session: MediaSessionEnvelope,
) -> tuple[pa.Table, str | None]:
    """The segment's trajectory, read from exactly the bytes its proof read (If-Match on the
    proven ETag, SHA-256 compared with the proven one), in whatever format the robot wrote it
    (Parquet, MCAP, ROS 1 or ROS 2 bag, through the topic map). A log that cannot be read (a
    topic missing, stamps going backwards) leaves the segment reviewable without signals: an
    empty trajectory and the reason."""
    segment_id = row["segment_id"]
    if not row.get("sensors_key"):
        return EMPTY_TRAJECTORY, "the segment declares no sensor log"
    proven = proven_object(proof, "sensors")
    if proven is None or not proven.get("etag"):
        raise Failure(f"segment {segment_id}: sensor log was not proven; re-prove the segment")
    try:
        data = get_pinned(store.client(), store.bucket_name, row["sensors_key"], proven["etag"])
    except ObjectChanged as error:
        confirm_unchanged(store, proof)  # records the proof as stale and alerts
        raise Failure(f"segment {segment_id}: sensor log: {error}", allow_retries=False) from None
    if hashlib.sha256(data).hexdigest() != proven["read_sha256"]:
        raise Failure(f"segment {segment_id}: sensor log bytes differ from the proven ones")
    fmt = (json.loads(row["envelope"]).get("sensors") or {}).get("format", "parquet")
    try:
        table = read_segment_log(
            data, fmt, tenant_id=row["tenant_id"], device_model=session.device_model
        )
    except RobotLogError as error:
        return EMPTY_TRAJECTORY, f"sensor log ({fmt}) unreadable: {error}"
    return table, None


def _window(table: pa.Table, rel_s: np.ndarray, clip: ClipWindow) -> tuple[pa.Table, np.ndarray]:
    """The samples of one clip (the log is in time order, so a window is one slice)."""
    indices = np.flatnonzero((rel_s >= clip.start_s) & (rel_s < clip.end_s))
    if indices.size == 0:
        return table.slice(0, 0), rel_s[:0]
    start, length = int(indices[0]), int(indices[-1] - indices[0] + 1)
    return table.slice(start, length), rel_s[start : start + length]


def clip_rows(
    row: dict[str, Any],
    session: MediaSessionEnvelope,
    probe: dict[str, Any],
    proof: dict[str, Any],
    table: pa.Table,
    log_problem: str | None = None,
) -> tuple[list[dict[str, Any]], list[ClipTrace], float]:
    envelope = json.loads(row["envelope"])
    hz = float(envelope.get("sensors", {}).get("hz") or 100.0)
    fps = float(probe["fps"] or envelope["raw"].get("fps") or 30.0)
    rules = rules_for(session.safety_rules_version)
    host = table["host_time_ns"].to_numpy()
    rel_s = (host - host[0]) / 1e9 if len(host) else host.astype(float)
    stored_gaps = probe["timestamp_gaps"] or []  # a list column; JSON text in older records
    if isinstance(stored_gaps, str):
        stored_gaps = json.loads(stored_gaps)
    gaps = [(float(start), float(length)) for start, length in stored_gaps]
    rows: list[dict[str, Any]] = []
    traces: list[ClipTrace] = []
    for clip in cut_clips(row["segment_id"], row["duration_s"], envelope.get("task_steps")):
        window, t = _window(table, rel_s, clip)
        clip_gaps = [(s, n) for s, n in gaps if clip.start_s <= s < clip.end_s]
        signals = compute_signals(
            window, hz=hz, fps=fps, frame_gaps_s=clip_gaps, blur_enforced=session.blur_enforced
        )
        machine = score(signals, rules)
        if log_problem:  # no trajectory to judge: a person must look at it
            machine = without_signals(machine, log_problem)
        expected_frames = round(clip.duration_s * fps)
        frames = max(0, expected_frames - signals.dropped_frames)
        resolution = [probe["width"], probe["height"]]
        clip_object = {  # the seed's clip object, field for field
            "clip_id": clip.clip_id,
            "session_id": session.session_id,
            "duration_ms": round(clip.duration_s * 1000),
            "video": {
                "codec": probe["codec"],
                "frames": frames,
                "fps": fps,
                "resolution": resolution,
            },
            "depth": None,  # the capture carries no depth stream
            "trajectory": {"end_effector_frames": window.num_rows},
            "environment": {
                "room_scale_mesh": bool(session.room_scale_mesh),
                "blur_enforced": bool(session.blur_enforced),
            },
            "scoring": {
                "safety": machine.safety,
                "smoothness": machine.smoothness,
                "quality": machine.quality,
                "status": machine.status,
            },
        }
        rows.append(
            {
                "clip_id": clip.clip_id,
                "segment_id": row["segment_id"],
                "clip_index": clip.index,
                "start_s": clip.start_s,
                "end_s": clip.end_s,
                "label": clip.label,
                "boundary": clip.boundary,
                "duration_ms": clip_object["duration_ms"],
                "video_codec": probe["codec"],
                "video_frames": frames,
                "video_fps": fps,
                "video_width": probe["width"],
                "video_height": probe["height"],
                "depth_modality": None,
                "depth_frames": None,
                "trajectory_frames": window.num_rows,
                "room_scale_mesh": bool(session.room_scale_mesh),
                "blur_enforced": bool(session.blur_enforced),
                **{f"signal_{k}": v for k, v in signals.as_dict().items()},
                "frame_gaps": json.dumps(clip_gaps),
                "machine_safety": machine.safety,
                "machine_smoothness": machine.smoothness,
                "machine_quality": machine.quality,
                "machine_status": machine.status,
                "machine_reasons": list(machine.reasons),
                "rules_version": machine.rules_version,
                # provenance: where the clip came from and what rights attach
                **session.provenance(),
                "raw_key": row["raw_key"],
                "raw_sha256": proof["sha256"],  # the SHA-256 the proof read: what was judged
                "proof_integrity_status": proof["integrity_status"],
                "proof_verified_at": proof["verified_at"],
                "proof_request_id": proof["request_id"],
                "clip_object": json.dumps(clip_object, sort_keys=True),
            }
        )
        if window.num_rows:
            xyz = np.column_stack([window[c].to_numpy() for c in ("ee_x", "ee_y", "ee_z")])
            jerk = jerk_series(t, xyz, hz)
        else:
            jerk = np.zeros(0)
        traces.append(
            ClipTrace(clip.label or f"clip {clip.index}", t, jerk, clip_gaps, machine.status)
        )
    return rows, traces, rules.jerk_peak_reject


@asset(
    key=CLIPS,
    partitions_def=segment_partitions,
    deps=[PROVIDER_PROOF, MEDIA_PROBE],
    group_name="clips",
    kinds={"parquet"},
    description="Clips of a proven segment (task-step boundaries, else fixed windows) with the "
    "seed's clip object, safety signals, machine scores under the session's safety rules "
    "version, and provenance back to the segment and its proof.",
)
def clip(context: AssetExecutionContext, object_store: ObjectStoreResource) -> MaterializeResult:
    segment_id = context.partition_key
    proof = require_proven(context.instance, object_store, segment_id)
    row = load_segment_row(object_store, segment_id)
    session = load_session_envelope(object_store, row["media_session_id"])
    if session.tenant_id != row["tenant_id"] or segment_id not in session.segment_ids:
        # The proof's session check refuses this; never take another tenant's consent/license.
        raise Failure(f"segment {segment_id}: media session does not own it", allow_retries=False)
    probes = object_store.read_record(catalog.MEDIA_PROBES, segment_id)
    if not probes:
        raise Failure(f"segment {segment_id} has no media probe: materialize its derivatives")
    table, log_problem = load_sensor_log(object_store, row, proof, session)
    if log_problem:
        context.log.warning(f"segment {segment_id}: reviewable without signals: {log_problem}")
    try:
        rows, traces, jerk_limit = clip_rows(row, session, probes[0], proof, table, log_problem)
    except UnknownRulesVersion as error:
        raise Failure(f"segment {segment_id}: {error}", allow_retries=False) from None
    key = object_store.write_record(catalog.CLIPS, segment_id, rows)
    for clip_row in rows:  # lets a reviewer's decision find its segment from the clip id alone
        object_store.put_bytes(
            layout.clip_index_key(clip_row["clip_id"]),
            json.dumps(
                {
                    "segment_id": segment_id,
                    "media_session_id": row["media_session_id"],
                    # Decisions name the bytes they judged; they never carry over to others.
                    "source_sha256": proof["sha256"],
                }
            ).encode(),
            layout.JSON_CONTENT_TYPE,
        )
    png = base64.b64encode(clip_signal_png(traces, jerk_limit)).decode()
    statuses = [r["machine_status"] for r in rows]
    return MaterializeResult(
        metadata={
            "clips": len(rows),
            "approved": statuses.count("approved"),
            "needs_review": statuses.count("needs_review"),
            "rejected": statuses.count("rejected"),
            "rules_version": session.safety_rules_version,
            "signals": "unavailable: " + log_problem if log_problem else "computed",
            "signal_plots": MetadataValue.md(
                f"![per-clip jerk and frame gaps](data:image/png;base64,{png})"
            ),
            "catalog_key": MetadataValue.path(key),
        }
    )
