"""The channels of a session's telemetry MCAP: topics, schemas, message encoders.

Where Foxglove publishes a schema (pose, joint states, events, log lines) the message is that
schema, taken with its protobuf descriptor from the Foxglove SDK (``foxglove-sdk``) and encoded
by it, so Foxglove's 3D, Plot, State Transitions and Log panels read it natively. What has no
Foxglove schema (wrist force, per-clip signals, machine scores, review decisions) is JSON with
a JSON Schema of ours, flat numbers so the Plot panel can chart ``/robotrace/signals.jerk_peak``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from foxglove import messages as fox
from mcap.writer import Writer

__all__ = ["TOPICS", "ChannelIds", "register_channels", "timestamp", "to_json_bytes"]

_NS_PER_S = 1_000_000_000
BASE_FRAME = "robot_base"

TOPICS = {
    "pose": "/robotrace/ee_pose",
    "joints": "/robotrace/joint_states",
    "wrench": "/robotrace/wrench",
    "clips": "/robotrace/clips",
    "signals": "/robotrace/signals",
    "scores": "/robotrace/machine_scores",
    "review": "/robotrace/review",
    "log": "/robotrace/log",
}

_TIME = {
    "type": "object",
    "properties": {"sec": {"type": "integer"}, "nsec": {"type": "integer"}},
    "required": ["sec", "nsec"],
}
_VECTOR = {
    "type": "object",
    "properties": {axis: {"type": "number"} for axis in "xyz"},
    "required": ["x", "y", "z"],
}
# The clip's numeric safety signals (clips.signals.SafetySignals), one field each on the channel.
NUMERIC_SIGNALS = (
    "jerk_peak",
    "jerk_rms",
    "ldlj",
    "dropped_frames",
    "dropped_frame_ratio",
    "max_frame_gap_s",
    "clock_offset_ms",
    "clock_skew_ppm",
    "contact_peak_n",
    "contact_severity",
    "samples",
    "duration_s",
)
_CLIP_KEYS = {
    "timestamp": _TIME,
    "clip_id": {"type": "string"},
    "segment_id": {"type": "string"},
    "clip_index": {"type": "integer"},
    "label": {"type": ["string", "null"]},
}


def _schema(title: str, properties: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": title,
        "description": description,
        "type": "object",
        "properties": properties,
    }


JSON_SCHEMAS: dict[str, dict[str, Any]] = {
    "wrench": _schema(
        "robotrace.Wrench",
        {"timestamp": _TIME, "frame_id": {"type": "string"}, "force": _VECTOR},
        "Wrist force (N) in the robot base frame, at the trajectory sample's host time.",
    ),
    "signals": _schema(
        "robotrace.ClipSignals",
        {
            **_CLIP_KEYS,
            **{name: {"type": ["number", "null"]} for name in NUMERIC_SIGNALS},
            "privacy_enforced": {"type": "boolean"},
            "notes": {"type": "string"},
        },
        "Safety signals of one clip (clips.signals.SafetySignals), logged at the clip start.",
    ),
    "scores": _schema(
        "robotrace.MachineScore",
        {
            **_CLIP_KEYS,
            "safety": {"type": "number"},
            "smoothness": {"type": "number"},
            "quality": {"type": "number"},
            "status": {"enum": ["approved", "needs_review", "rejected"]},
            "reasons": {"type": "array", "items": {"type": "string"}},
            "rules_version": {"type": "string"},
        },
        "Machine scores of one clip under the session's safety rules version.",
    ),
    "review": _schema(
        "robotrace.ReviewDecision",
        {
            **_CLIP_KEYS,
            "final_status": {"type": "string"},
            "final_safety": {"type": ["number", "null"]},
            "final_smoothness": {"type": ["number", "null"]},
            "final_quality": {"type": ["number", "null"]},
            "decided_by": {"type": ["string", "null"]},
            "decided_at": {"type": ["string", "null"]},
            "rationale": {"type": ["string", "null"]},
            "reasons": {"type": "array", "items": {"type": "string"}},
            "history": {"type": "array"},
        },
        "The clip's review outcome (catalog clip_reviews), logged at the clip start; "
        "decided_at is when the reviewer decided.",
    ),
}

_FOXGLOVE = {"pose": fox.PoseInFrame, "joints": fox.JointStates, "clips": fox.Event, "log": fox.Log}


@dataclass(frozen=True)
class ChannelIds:
    """MCAP channel id per role."""

    ids: dict[str, int]

    def __getitem__(self, role: str) -> int:
        return self.ids[role]


def register_channels(writer: Writer) -> ChannelIds:
    """Register every schema and channel (all of them, even if a session has no wrench)."""
    ids: dict[str, int] = {}
    for role, message_class in _FOXGLOVE.items():
        schema = message_class.get_schema()
        schema_id = writer.register_schema(schema.name, schema.encoding, schema.data)
        ids[role] = writer.register_channel(TOPICS[role], "protobuf", schema_id)
    for role, doc in JSON_SCHEMAS.items():
        data = json.dumps(doc, sort_keys=True).encode()
        schema_id = writer.register_schema(doc["title"], "jsonschema", data)
        ids[role] = writer.register_channel(TOPICS[role], "json", schema_id)
    return ChannelIds(ids)


def timestamp(ns: int) -> fox.Timestamp:
    sec, nsec = divmod(int(ns), _NS_PER_S)
    return fox.Timestamp(sec, nsec)


def json_time(ns: int) -> dict[str, int]:
    sec, nsec = divmod(int(ns), _NS_PER_S)
    return {"sec": sec, "nsec": nsec}


def to_json_bytes(doc: dict[str, Any]) -> bytes:
    # NaN is not JSON: the signals are finite by contract, but never write an unreadable line.
    return json.dumps(doc, sort_keys=True, allow_nan=False, default=str).encode()
