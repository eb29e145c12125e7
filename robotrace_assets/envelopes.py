"""Media session and segment envelopes: parsing and validation (no Dagster here).

The JSON Schemas in `robotrace_assets/schemas/` are the contract with capture clients; this
module applies them and then the rules a schema cannot express (time order, part count
against the declared size). Every failure is an EnvelopeError naming the field at fault.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator

SCHEMA_VERSION = "1"
SCHEMA_FILES = {
    "media_session": "media_session_envelope.schema.json",
    "segment": "segment_envelope.schema.json",
    "inbox_event": "inbox_event.schema.json",
    "review_decision": "review_decision.schema.json",
}
MAX_ENVELOPE_BYTES = 1024 * 1024  # an envelope is metadata; anything larger is not one


class EnvelopeError(ValueError):
    """A malformed or incomplete envelope. The message says which field and why."""


@cache
def schema(name: str) -> dict[str, Any]:
    text = resources.files("robotrace_assets.schemas").joinpath(SCHEMA_FILES[name]).read_text()
    return json.loads(text)


@cache
def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(schema(name))


def validate(name: str, document: Any) -> None:
    errors = sorted(_validator(name).iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(root)"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise EnvelopeError(f"{name} envelope invalid at {where}: {first.message}{more}")


def decode(raw: bytes, name: str) -> dict[str, Any]:
    if len(raw) > MAX_ENVELOPE_BYTES:
        raise EnvelopeError(f"{name} envelope is {len(raw)} bytes; the limit is 1 MiB")
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise EnvelopeError(f"{name} envelope is not valid JSON: {error}") from None
    validate(name, document)
    return document


def parse_time(value: str, field: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise EnvelopeError(f"{field} is not an ISO 8601 timestamp: {value!r}") from None
    if parsed.tzinfo is None:
        raise EnvelopeError(f"{field} must carry a timezone: {value!r}")
    return parsed


@dataclass(frozen=True)
class MediaSessionEnvelope:
    media_session_id: str
    session_id: str
    tenant_id: str
    operator_id: str
    task_brief_id: str
    task_name: str | None
    task_steps: tuple[str, ...]
    device_model: str
    device_tier: int
    device_has_lidar: bool
    created_at: datetime
    consent_receipt_id: str | None
    consent_accepted_at: datetime | None
    license_scope_id: str | None
    allowed_use: tuple[str, ...]
    safety_rules_version: str
    blur_enforced: bool | None
    room_scale_mesh: bool | None
    segment_ids: tuple[str, ...]
    document: dict[str, Any]

    @classmethod
    def parse(cls, raw: bytes) -> MediaSessionEnvelope:
        doc = decode(raw, "media_session")
        consent = doc["consent"]
        license_ = doc["license"] or {}
        task = doc.get("task") or {}
        environment = doc.get("environment") or {}
        return cls(
            media_session_id=doc["media_session_id"],
            session_id=doc["session_id"],
            tenant_id=doc["tenant_id"],
            operator_id=doc["operator_id"],
            task_brief_id=doc["task_brief_id"],
            task_name=task.get("name"),
            task_steps=tuple(task.get("steps", ())),
            device_model=doc["device"]["model"],
            device_tier=doc["device"]["tier"],
            device_has_lidar=doc["device"]["has_lidar"],
            created_at=parse_time(doc["created_at"], "created_at"),
            consent_receipt_id=consent["receipt_id"] if consent else None,
            consent_accepted_at=(
                parse_time(consent["brief_accepted_at"], "consent.brief_accepted_at")
                if consent
                else None
            ),
            license_scope_id=license_.get("scope_id"),
            allowed_use=tuple(license_.get("allowed_use", ())),
            safety_rules_version=doc["safety_rules_version"],
            blur_enforced=environment.get("blur_enforced"),
            room_scale_mesh=environment.get("room_scale_mesh"),
            segment_ids=tuple(doc["segment_ids"]),
            document=doc,
        )

    def provenance(self) -> dict[str, Any]:
        """The fields every downstream record carries so a clip can explain where it came from."""
        return {
            "media_session_id": self.media_session_id,
            "session_id": self.session_id,
            "tenant_id": self.tenant_id,
            "operator_id": self.operator_id,
            "task_brief_id": self.task_brief_id,
            "device_model": self.device_model,
            "consent_receipt_id": self.consent_receipt_id,
            "license_scope_id": self.license_scope_id,
            "allowed_use": list(self.allowed_use),
            "safety_rules_version": self.safety_rules_version,
            "source": self.document.get("source", "capture_client"),
            "device_tier": self.device_tier,
            # What else the client reported (robot, policy version, room id, ...), kept as is.
            "client_provenance": json.dumps(self.document.get("provenance") or {}, sort_keys=True),
        }


@dataclass(frozen=True)
class DeclaredObject:
    """An object a segment declares besides its raw video (sensor log, actions, depth, ...)."""

    role: str
    object_key: str
    size_bytes: int
    sha256: str | None  # None: the client declared no hash; the proof records what it read
    content_type: str
    format: str | None = None


@dataclass(frozen=True)
class SegmentEnvelope:
    media_session_id: str
    segment_id: str
    capture_id: str
    tenant_id: str
    segment_index: int
    started_at: datetime
    ended_at: datetime
    boundary_reason: str
    raw_key: str
    raw_size_bytes: int
    raw_sha256: str | None  # None: not declared by the client (a RoboTrace client declares none)
    raw_content_type: str
    part_count: int
    part_size_bytes: int
    sensors_key: str | None
    sensors_size_bytes: int | None
    sensors_sha256: str | None
    objects: tuple[DeclaredObject, ...]
    document: dict[str, Any]

    @classmethod
    def parse(cls, raw: bytes) -> SegmentEnvelope:
        doc = decode(raw, "segment")
        started = parse_time(doc["started_at"], "started_at")
        ended = parse_time(doc["ended_at"], "ended_at")
        if ended < started:
            raise EnvelopeError(f"ended_at {doc['ended_at']} is before started_at")
        upload = doc["upload"]
        # The part layout is a hint (clients such as aws-cli choose their own part size): the
        # proof takes it from the store and reports a disagreement, so it is not refused here.
        sensors = doc.get("sensors") or {}
        objects = tuple(
            DeclaredObject(
                role=o["role"],
                object_key=o["object_key"],
                size_bytes=o["size_bytes"],
                sha256=o.get("sha256"),
                content_type=o["content_type"],
                format=o.get("format"),
            )
            for o in doc.get("objects", ())
        )
        roles = [o.role for o in objects] + (["sensors"] if sensors else [])
        if len(set(roles)) != len(roles):
            raise EnvelopeError(f"objects: each role may be declared once, got {sorted(roles)}")
        return cls(
            media_session_id=doc["media_session_id"],
            segment_id=doc["segment_id"],
            capture_id=doc["capture_id"],
            tenant_id=doc["tenant_id"],
            segment_index=doc["segment_index"],
            started_at=started,
            ended_at=ended,
            boundary_reason=doc["boundary_reason"],
            raw_key=doc["raw"]["object_key"],
            raw_size_bytes=doc["raw"]["size_bytes"],
            raw_sha256=doc["raw"].get("sha256"),
            raw_content_type=doc["raw"]["content_type"],
            part_count=upload["part_count"],
            part_size_bytes=upload["part_size_bytes"],
            sensors_key=sensors.get("object_key"),
            sensors_size_bytes=sensors.get("size_bytes"),
            sensors_sha256=sensors.get("sha256"),
            objects=objects,
            document=doc,
        )

    @property
    def duration_s(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()


def changed_fields(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths at which two envelope documents differ (nested objects compared field by
    field, lists whole): what a conflicting second envelope for a segment would change."""
    changed = []
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name), new.get(name)
        if isinstance(before, dict) and isinstance(after, dict):
            changed += changed_fields(before, after, f"{prefix}{name}.")
        elif before != after:
            changed.append(f"{prefix}{name}")
    return changed
