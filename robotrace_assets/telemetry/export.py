"""A media session as one MCAP: trajectory, clip boundaries, safety signals, machine scores and
review decisions, on the video clock, with Foxglove schemas where Foxglove has them.

Time base: every message's log time is on the host/video clock, the clock of the proxy video
(``host_time_ns`` of our trajectory schema). Trajectory samples are logged at their host time
and stamped with it too; clip-level messages at the clip's start, which the clip asset measures
from the segment's first trajectory sample (else from the segment's ``started_at``). The proxy
videos are referenced in metadata records (one per segment) so a viewer can open them beside
the file; ``robotrace export mcap --with-video`` writes them next to it.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import pyarrow as pa
from foxglove import messages as fox
from mcap.writer import CompressionType, Writer

from robotrace_assets.robotlogs.writers import LABELS_TOPIC, register_label_channel, write_labels
from robotrace_assets.telemetry.channels import (
    BASE_FRAME,
    NUMERIC_SIGNALS,
    TOPICS,
    ChannelIds,
    json_time,
    register_channels,
    timestamp,
    to_json_bytes,
)
from robotrace_assets.telemetry.collect import SegmentTelemetry, SessionTelemetry

__all__ = ["ExportSummary", "proxy_filename", "write_session_mcap"]

_NS_PER_S = 1_000_000_000
_LIBRARY = "robotrace-assets telemetry export"
_LEVELS = {"approved": fox.LogLevel.Info, "needs_review": fox.LogLevel.Warning}
_SIGNALS = (*NUMERIC_SIGNALS, "privacy_enforced", "notes")


@dataclass(frozen=True)
class ExportSummary:
    """What was written: message count per topic, segments and their proxy videos."""

    messages: dict[str, int]
    segments: int
    proxies: dict[str, str]  # segment_id -> proxy object key
    trajectory_errors: dict[str, str]  # segment_id -> why no trajectory


def proxy_filename(segment_id: str) -> str:
    """The file name a proxy video gets next to the MCAP (referenced from its metadata)."""
    return f"{segment_id}.proxy.mp4"


class _Out:
    """The writer plus per-topic counts."""

    def __init__(self, writer: Writer, channels: ChannelIds) -> None:
        self.writer, self.channels, self.counts = writer, channels, Counter[str]()

    def add(self, role: str, log_ns: int, data: bytes) -> None:
        self.writer.add_message(self.channels[role], int(log_ns), data, int(log_ns))
        self.counts[TOPICS[role]] += 1


def _write_trajectory(out: _Out, table: pa.Table) -> None:
    host = table["host_time_ns"].to_numpy()
    xyz = np.column_stack([table[c].to_numpy() for c in ("ee_x", "ee_y", "ee_z")]).tolist()
    joint_names = [c for c in table.schema.names if c.startswith("joint_")]
    joints = np.column_stack([table[c].to_numpy() for c in joint_names]).tolist()
    force = None
    if "force_x" in table.schema.names:
        cols = ("force_x", "force_y", "force_z")
        force = np.column_stack([table[c].to_numpy() for c in cols]).tolist()
    identity = fox.Quaternion(x=0.0, y=0.0, z=0.0, w=1.0)  # the log has no orientation
    for i, ns in enumerate(host.tolist()):
        stamp = timestamp(ns)
        x, y, z = xyz[i]
        pose = fox.Pose(position=fox.Vector3(x=x, y=y, z=z), orientation=identity)
        message = fox.PoseInFrame(timestamp=stamp, frame_id=BASE_FRAME, pose=pose)
        out.add("pose", ns, message.encode())
        states = [
            fox.JointState(name=n, position=p) for n, p in zip(joint_names, joints[i], strict=True)
        ]
        out.add("joints", ns, fox.JointStates(timestamp=stamp, joints=states).encode())
        if force is not None:
            fx, fy, fz = force[i]
            wrench = {
                "timestamp": json_time(ns),
                "frame_id": BASE_FRAME,
                "force": {"x": fx, "y": fy, "z": fz},
            }
            out.add("wrench", ns, to_json_bytes(wrench))


def _clip_messages(out: _Out, origin_ns: int, clip: dict[str, Any], review: dict | None) -> None:
    start_ns = origin_ns + round(float(clip["start_s"]) * _NS_PER_S)
    end_ns = origin_ns + round(float(clip["end_s"]) * _NS_PER_S)
    keys = {
        "timestamp": json_time(start_ns),
        "clip_id": clip["clip_id"],
        "segment_id": clip["segment_id"],
        "clip_index": int(clip["clip_index"]),
        "label": clip.get("label"),
    }
    final = (review or {}).get("final_status") or clip["machine_status"]
    metadata = {
        "clip_id": clip["clip_id"],
        "segment_id": clip["segment_id"],
        "clip_index": str(clip["clip_index"]),
        "label": clip.get("label") or "",
        "boundary": clip.get("boundary") or "",
        "machine_status": clip["machine_status"],
        "final_status": final,
    }
    event = fox.Event(
        start_time=timestamp(start_ns),
        end_time=timestamp(end_ns),
        metadata=[fox.KeyValuePair(key=k, value=str(v)) for k, v in metadata.items()],
    )
    out.add("clips", start_ns, event.encode())
    signals = {name: clip.get(f"signal_{name}") for name in _SIGNALS}
    out.add("signals", start_ns, to_json_bytes({**keys, **signals}))
    scores = {
        "safety": clip["machine_safety"],
        "smoothness": clip["machine_smoothness"],
        "quality": clip["machine_quality"],
        "status": clip["machine_status"],
        "reasons": list(clip.get("machine_reasons") or []),
        "rules_version": clip["rules_version"],
    }
    out.add("scores", start_ns, to_json_bytes({**keys, **scores}))
    if review is not None:
        history = review.get("decision_history") or "[]"
        decision = {
            "final_status": review["final_status"],
            "final_safety": review.get("final_safety"),
            "final_smoothness": review.get("final_smoothness"),
            "final_quality": review.get("final_quality"),
            "decided_by": review.get("decided_by"),
            "decided_at": review.get("decided_at"),
            "rationale": review.get("decision_rationale"),
            "reasons": list(review.get("reasons") or []),
            "history": json.loads(history) if isinstance(history, str) else list(history),
        }
        out.add("review", start_ns, to_json_bytes({**keys, **decision}))
    why = "; ".join((review or {}).get("reasons") or clip.get("machine_reasons") or [])
    text = f"clip {clip['clip_index']} {clip.get('label') or ''}: {final}".replace("  ", " ")
    line = fox.Log(
        timestamp=timestamp(start_ns),
        level=_LEVELS.get(final, fox.LogLevel.Error),
        message=f"{text} ({why})" if why else text,
        name="robotrace.review",
    )
    out.add("log", start_ns, line.encode())


def _segment_metadata(segment: SegmentTelemetry, origin_ns: int) -> dict[str, str]:
    proxy = segment.proxy or {}
    return {
        "segment_id": segment.segment_id,
        "segment_index": str(segment.row.get("segment_index")),
        "started_at": str(segment.row.get("started_at")),
        "duration_s": str(segment.row.get("duration_s")),
        "timeline_origin_ns": str(origin_ns),
        "raw_key": str(segment.row.get("raw_key")),
        "raw_sha256": str(segment.row.get("raw_sha256") or ""),
        "sensors_format": segment.sensors_format,
        "trajectory": "ok" if segment.trajectory is not None else "missing",
        "trajectory_error": segment.trajectory_error or "",
        "proxy_key": str(proxy.get("key") or ""),
        "proxy_sha256": str(proxy.get("sha256") or ""),
        "proxy_file": proxy_filename(segment.segment_id) if proxy else "",
    }


def write_session_mcap(session: SessionTelemetry, stream: IO[bytes]) -> ExportSummary:
    """Write the session's telemetry MCAP to ``stream`` (seekable or not)."""
    writer = Writer(stream, compression=CompressionType.ZSTD)
    writer.start(profile="", library=_LIBRARY)
    out = _Out(writer, register_channels(writer))
    envelope = session.envelope
    provenance = {
        k: json.dumps(v) if isinstance(v, list) else str(v or "")
        for k, v in envelope.provenance().items()
    }
    provenance |= {
        "task_name": envelope.task_name or "",
        "device_tier": str(envelope.device_tier),
        "missing_segments": ",".join(session.missing_segments),
        "clock": "log times are the host/video clock (trajectory host_time_ns)",
    }
    writer.add_metadata("robotrace.session", provenance)
    errors: dict[str, str] = {}
    labels_channel: int | None = None  # registered with the first label track
    for segment in session.segments:
        origin = segment.origin_ns
        writer.add_metadata(
            f"robotrace.segment.{segment.segment_id}", _segment_metadata(segment, origin)
        )
        if segment.trajectory is not None:
            _write_trajectory(out, segment.trajectory)
        else:
            why = errors[segment.segment_id] = segment.trajectory_error or "no trajectory"
            warning = fox.Log(
                timestamp=timestamp(origin),
                level=fox.LogLevel.Warning,
                message=f"segment {segment.segment_id}: no trajectory: {why}",
                name="robotrace.telemetry",
            )
            out.add("log", origin, warning.encode())
        for clip in segment.clips:
            _clip_messages(out, origin, clip, segment.reviews.get(clip["clip_id"]))
        if segment.labels is not None:
            if labels_channel is None:
                labels_channel = register_label_channel(writer)
            out.counts[LABELS_TOPIC] += write_labels(
                writer, labels_channel, segment.labels, origin, segment.segment_id
            )
    writer.finish()
    proxies = {s.segment_id: str(s.proxy["key"]) for s in session.segments if s.proxy}
    return ExportSummary(dict(out.counts), len(session.segments), proxies, errors)
