"""The topic map: which topics of a robot's own log carry pose, joints and wrench.

One JSON file (``ROBOTRACE_TOPIC_MAP_FILE``, format in ``topic_map.schema.json``, example in
``topic_map.example.json``) holds a default entry, per-device-model entries and per-tenant
entries. The most specific entry wins whole (no field-by-field merge, so what applies to a
segment is always one readable block): tenant+device, tenant default, device, default.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

__all__ = [
    "ENV_VAR",
    "Stamp",
    "StreamSpec",
    "TopicMap",
    "TopicMapError",
    "TopicMapFile",
    "load_topic_map_file",
    "topic_map_for",
]

ENV_VAR = "ROBOTRACE_TOPIC_MAP_FILE"
# A topic map is configuration; anything this large is not one.
_MAX_FILE_BYTES = 1024 * 1024

# "header" | "log_time" | "publish_time" | ("field", "a.b.c")
Stamp = str | tuple[str, str]


class TopicMapError(ValueError):
    """The topic map file is missing, malformed, or has no entry for a segment."""


@dataclass(frozen=True)
class StreamSpec:
    """One topic and how to read it."""

    topic: str
    field: str | None = None  # dotted path to the vector/array; None: the usual ROS places
    stamp: Stamp = "header"
    names: tuple[str, ...] | None = None  # joints only: column order joint_0..joint_N-1


@dataclass(frozen=True)
class TopicMap:
    """What one segment's log is read with."""

    pose: StreamSpec
    joints: StreamSpec
    wrench: StreamSpec | None = None
    # Added to log (receive) time to put it on the video clock.
    host_clock_offset_ns: int = 0

    @property
    def streams(self) -> dict[str, StreamSpec]:
        found = {"pose": self.pose, "joints": self.joints}
        if self.wrench is not None:
            found["wrench"] = self.wrench
        return found

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any]) -> TopicMap:
        """An entry as the schema defines it (already validated when it came from a file)."""
        default_stamp = _stamp(entry.get("stamp", "header"))

        def stream(doc: Mapping[str, Any] | None) -> StreamSpec | None:
            if doc is None:
                return None
            names = doc.get("names")
            return StreamSpec(
                topic=doc["topic"],
                field=doc.get("field"),
                stamp=_stamp(doc["stamp"]) if "stamp" in doc else default_stamp,
                names=tuple(names) if names else None,
            )

        pose, joints = stream(entry["pose"]), stream(entry["joints"])
        assert pose is not None and joints is not None  # required by the schema
        return cls(
            pose=pose,
            joints=joints,
            wrench=stream(entry.get("wrench")),
            host_clock_offset_ns=int(entry.get("host_clock_offset_ns", 0)),
        )

    def describe(self) -> dict[str, Any]:
        """JSON-friendly summary, for table metadata and error reports."""
        return {
            role: {"topic": s.topic, "field": s.field, "stamp": s.stamp, "names": s.names}
            for role, s in self.streams.items()
        } | {"host_clock_offset_ns": self.host_clock_offset_ns}


def _stamp(value: Any) -> Stamp:
    if isinstance(value, Mapping):
        return ("field", str(value["field"]))
    return str(value)


@cache
def _validator() -> Draft202012Validator:
    text = (
        resources.files("robotrace_assets.robotlogs").joinpath("topic_map.schema.json").read_text()
    )
    return Draft202012Validator(json.loads(text))


@dataclass(frozen=True)
class TopicMapFile:
    """A parsed, validated topic map file."""

    document: dict[str, Any]

    @classmethod
    def parse(cls, raw: bytes | str) -> TopicMapFile:
        if len(raw) > _MAX_FILE_BYTES:
            raise TopicMapError(f"topic map is {len(raw)} bytes, more than {_MAX_FILE_BYTES}")
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as error:
            raise TopicMapError(f"topic map is not valid JSON: {error}") from None
        errors = sorted(_validator().iter_errors(doc), key=lambda e: list(e.absolute_path))
        if errors:
            first = errors[0]
            where = "/".join(str(p) for p in first.absolute_path) or "(root)"
            raise TopicMapError(f"topic map: {where}: {first.message}")
        return cls(doc)

    def entry_for(self, tenant_id: str | None, device_model: str | None) -> TopicMap:
        """The most specific entry for this tenant and device model."""
        doc = self.document
        tenant = doc.get("tenants", {}).get(tenant_id or "", {})
        candidates = (
            tenant.get("devices", {}).get(device_model or ""),
            tenant.get("default"),
            doc.get("devices", {}).get(device_model or ""),
            doc["default"],
        )
        entry = next(c for c in candidates if c is not None)
        return TopicMap.from_dict(entry)


def load_topic_map_file(path: str | Path | None = None) -> TopicMapFile:
    """The topic map at ``path``, else at ``$ROBOTRACE_TOPIC_MAP_FILE``."""
    where = path if path is not None else os.environ.get(ENV_VAR, "").strip()
    if not where:
        raise TopicMapError(f"no topic map: set {ENV_VAR} to a topic map JSON file")
    try:
        raw = Path(where).read_bytes()
    except OSError as error:
        raise TopicMapError(f"topic map {where}: {error.strerror or error}") from None
    return TopicMapFile.parse(raw)


def topic_map_for(
    tenant_id: str | None, device_model: str | None, path: str | Path | None = None
) -> TopicMap:
    """Convenience: load the configured file and pick the entry for a segment."""
    return load_topic_map_file(path).entry_for(tenant_id, device_model)
