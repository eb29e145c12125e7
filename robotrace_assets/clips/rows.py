"""A segment's clip records: cut, signals, machine scores, the clip object, provenance.

Plain functions over typed records (no Dagster): the clip asset loads the records and the robot
log, calls `clip_rows`, and writes what it returns.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from robotrace_assets.clips.cutting import ClipWindow, cut_clips
from robotrace_assets.clips.kinematics import jerk_series
from robotrace_assets.clips.plots import ClipTrace
from robotrace_assets.clips.rules import MachineScore, rules_for, score, without_signals
from robotrace_assets.clips.signals import SafetySignals, compute_signals
from robotrace_assets.depth import DepthAlignment, DepthStream, align_depth
from robotrace_assets.envelopes import MediaSessionEnvelope
from robotrace_assets.records.proofs import ProofRecord
from robotrace_assets.records.segments import SegmentRecord


@dataclass(frozen=True)
class ClipMedia:
    """What the media probe and the envelope say about the segment's video and sensor rate."""

    codec: str
    fps: float
    width: int
    height: int
    hz: float
    gaps: list[tuple[float, float]]  # (start, length) seconds, segment time

    @classmethod
    def of(cls, segment: SegmentRecord, probe: dict[str, Any]) -> ClipMedia:
        envelope = segment.envelope
        stored_gaps = probe["timestamp_gaps"] or []  # a list column; JSON text in older records
        if isinstance(stored_gaps, str):
            stored_gaps = json.loads(stored_gaps)
        return cls(
            codec=probe["codec"],
            fps=float(probe["fps"] or envelope["raw"].get("fps") or 30.0),
            width=probe["width"],
            height=probe["height"],
            hz=float(envelope.get("sensors", {}).get("hz") or 100.0),
            gaps=[(float(start), float(length)) for start, length in stored_gaps],
        )


@dataclass(frozen=True)
class ClipDepth:
    """The segment's depth stream as its catalog record (catalog.DEPTH_STREAMS) holds it: the
    modality the stream's own tag names (never the envelope's device.has_lidar) and the time
    of every depth frame on the video clock."""

    modality: str
    alignment: DepthAlignment

    @classmethod
    def of(cls, record: Mapping[str, Any] | None) -> ClipDepth | None:
        """None when the segment has no depth stream (no record, or the no-depth record)."""
        if not record or not record.get("modality"):
            return None
        stream = DepthStream(
            modality=str(record["modality"]),
            width=int(record["width"]),
            height=int(record["height"]),
            fps=float(record["fps"]),
            times=tuple(float(t) for t in record["times"] or ()),
            dropped_frames=int(record["dropped_frames"]),
        )
        # No video times here: the alignment serves frames_between, the one window count.
        return cls(stream.modality, align_depth(stream, np.zeros(0)))

    def clip_object(self, clip: ClipWindow) -> dict[str, Any]:
        """The seed's depth object of one clip: frames captured inside its window."""
        return {
            "modality": self.modality,
            "frames": self.alignment.frames_between(clip.start_s, clip.end_s),
        }


def _window(table: pa.Table, rel_s: np.ndarray, clip: ClipWindow) -> tuple[pa.Table, np.ndarray]:
    """The samples of one clip (the log is in time order, so a window is one slice)."""
    indices = np.flatnonzero((rel_s >= clip.start_s) & (rel_s < clip.end_s))
    if indices.size == 0:
        return table.slice(0, 0), rel_s[:0]
    start, length = int(indices[0]), int(indices[-1] - indices[0] + 1)
    return table.slice(start, length), rel_s[start : start + length]


def _clip_object(
    clip: ClipWindow,
    session: MediaSessionEnvelope,
    media: ClipMedia,
    frames: int,
    trajectory_frames: int,
    machine: MachineScore,
    depth: dict[str, Any] | None,
) -> dict[str, Any]:
    """The seed's clip object, field for field."""
    return {
        "clip_id": clip.clip_id,
        "session_id": session.session_id,
        "duration_ms": round(clip.duration_s * 1000),
        "video": {
            "codec": media.codec,
            "frames": frames,
            "fps": media.fps,
            "resolution": [media.width, media.height],
        },
        "depth": depth,  # None: the capture carries no depth stream
        "trajectory": {"end_effector_frames": trajectory_frames},
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


def _provenance(
    segment: SegmentRecord, session: MediaSessionEnvelope, proof: ProofRecord
) -> dict[str, Any]:
    """Where the clip came from and what rights attach."""
    return {
        **session.provenance(),
        "raw_key": segment.raw_key,
        "raw_sha256": proof.sha256,  # the SHA-256 the proof read: what was judged
        "proof_integrity_status": proof.status,
        "proof_verified_at": proof.verified_at,
        "proof_request_id": proof.request_id,
    }


def _clip_row(
    clip: ClipWindow,
    segment: SegmentRecord,
    session: MediaSessionEnvelope,
    media: ClipMedia,
    signals: SafetySignals,
    machine: MachineScore,
    trajectory_frames: int,
    clip_gaps: list[tuple[float, float]],
    provenance: dict[str, Any],
    depth: ClipDepth | None,
) -> dict[str, Any]:
    frames = max(0, round(clip.duration_s * media.fps) - signals.dropped_frames)
    clip_depth = depth.clip_object(clip) if depth else None
    clip_object = _clip_object(clip, session, media, frames, trajectory_frames, machine, clip_depth)
    return {
        "clip_id": clip.clip_id,
        "segment_id": segment.segment_id,
        "clip_index": clip.index,
        "start_s": clip.start_s,
        "end_s": clip.end_s,
        "label": clip.label,
        "boundary": clip.boundary,
        "duration_ms": clip_object["duration_ms"],
        "video_codec": media.codec,
        "video_frames": frames,
        "video_fps": media.fps,
        "video_width": media.width,
        "video_height": media.height,
        "depth_modality": clip_depth["modality"] if clip_depth else None,
        "depth_frames": clip_depth["frames"] if clip_depth else None,
        "trajectory_frames": trajectory_frames,
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
        **provenance,
        "clip_object": json.dumps(clip_object, sort_keys=True),
    }


def _trace(
    clip: ClipWindow, window: pa.Table, t: np.ndarray, hz: float, gaps: list, status: str
) -> ClipTrace:
    if window.num_rows:
        xyz = np.column_stack([window[c].to_numpy() for c in ("ee_x", "ee_y", "ee_z")])
        jerk = jerk_series(t, xyz, hz)
    else:
        jerk = np.zeros(0)
    return ClipTrace(clip.label or f"clip {clip.index}", t, jerk, gaps, status)


def clip_rows(
    segment: SegmentRecord,
    session: MediaSessionEnvelope,
    probe: dict[str, Any],
    proof: ProofRecord,
    table: pa.Table,
    log_problem: str | None = None,
    depth: Mapping[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], list[ClipTrace], float]:
    """One row per clip, one signal trace per clip, and the jerk limit the rules reject at.
    ``depth`` is the segment's catalog.DEPTH_STREAMS row (None or its no-depth row: no depth).

    Raises UnknownRulesVersion when the session names safety rules this release does not have."""
    media = ClipMedia.of(segment, probe)
    clip_depth = ClipDepth.of(depth)
    rules = rules_for(session.safety_rules_version)
    host = table["host_time_ns"].to_numpy()
    rel_s = (host - host[0]) / 1e9 if len(host) else host.astype(float)
    provenance = _provenance(segment, session, proof)
    rows: list[dict[str, Any]] = []
    traces: list[ClipTrace] = []
    steps = segment.envelope.get("task_steps")
    for clip in cut_clips(segment.segment_id, segment.duration_s, steps):
        window, t = _window(table, rel_s, clip)
        clip_gaps = [(s, n) for s, n in media.gaps if clip.start_s <= s < clip.end_s]
        signals = compute_signals(
            window,
            hz=media.hz,
            fps=media.fps,
            frame_gaps_s=clip_gaps,
            blur_enforced=session.blur_enforced,
        )
        machine = score(signals, rules)
        if log_problem:  # no trajectory to judge: a person must look at it
            machine = without_signals(machine, log_problem)
        rows.append(
            _clip_row(
                clip,
                segment,
                session,
                media,
                signals,
                machine,
                window.num_rows,
                clip_gaps,
                provenance,
                clip_depth,
            )
        )
        traces.append(_trace(clip, window, t, media.hz, clip_gaps, machine.status))
    return rows, traces, rules.jerk_peak_reject
