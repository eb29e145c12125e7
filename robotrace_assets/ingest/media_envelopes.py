"""Envelopes of a large-media session and its segments, from what the client declared.

The session envelope lists every segment opened so far; it is written again (same ids, more
segments) each time a segment completes, so the rollup always covers the segments handed off.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from robotrace_assets import ids, layout
from robotrace_assets.ingest.episodes import TenantDefaults
from robotrace_assets.ingest.media import SegmentOpen, iso

SOURCE = "robotrace_ingest"


def sensors_key(tenant_id: str, media_session_id: str, segment_id: str, fmt: str) -> str:
    if fmt == "parquet":
        return layout.raw_sensors_key(tenant_id, media_session_id, segment_id)
    return f"{layout.RAW}/{tenant_id}/{media_session_id}/{segment_id}.sensors.{fmt}"


def sensors_content_type(fmt: str) -> str:
    return layout.PARQUET_CONTENT_TYPE if fmt == "parquet" else "application/octet-stream"


def session_envelope(
    *,
    media_session_id: str,
    session_id: str,
    tenant: TenantDefaults,
    created_at: datetime,
    task_name: str | None,
    task_steps: Sequence[str],
    consent: dict[str, Any] | None,
    license_: dict[str, Any] | None,
    provenance: Mapping[str, Any],
    segment_ids: Sequence[str],
) -> dict[str, Any]:
    envelope: dict[str, Any] = {
        "schema_version": "1",
        "media_session_id": media_session_id,
        "session_id": session_id,
        "tenant_id": tenant.tenant_id,
        "operator_id": tenant.operator_id,
        "task_brief_id": tenant.task_brief_id,
        "device": {
            "model": tenant.device_model,
            "tier": tenant.device_tier,
            "has_lidar": tenant.device_has_lidar,
        },
        "created_at": iso(created_at),
        "consent": consent if consent is not None else tenant.consent,
        "license": license_ if license_ is not None else tenant.license,
        "safety_rules_version": tenant.safety_rules_version,
        "segment_ids": list(segment_ids),
        "source": SOURCE,
        "provenance": {**provenance, "source": SOURCE},
    }
    if task_name:
        envelope["task"] = {"name": task_name, "steps": list(task_steps)}
    return envelope


def segment_envelope(
    *,
    tenant_id: str,
    media_session_id: str,
    segment_id: str,
    object_key: str,
    declared: SegmentOpen,
) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "object_key": object_key,
        "size_bytes": declared.size_bytes,
        "content_type": declared.content_type,
    }
    if declared.sha256:
        raw["sha256"] = declared.sha256
    for name in ("codec", "fps", "width", "height", "frames"):
        value = getattr(declared, name)
        if value is not None:
            raw[name] = value
    envelope: dict[str, Any] = {
        "schema_version": "1",
        "media_session_id": media_session_id,
        "segment_id": segment_id,
        "capture_id": ids.derived_id("cap", segment_id, "capture"),
        "tenant_id": tenant_id,
        "segment_index": declared.segment_index,
        "started_at": iso(declared.started_at),
        "ended_at": iso(declared.ended_at),
        "boundary_reason": declared.boundary_reason,
        "raw": raw,
        "upload": {
            "part_count": len(declared.part_sha256),
            "part_size_bytes": declared.part_size_bytes,
            "checksum_algorithm": "SHA256",
        },
        "source": SOURCE,
    }
    if declared.task_steps:
        envelope["task_steps"] = [s.model_dump() for s in declared.task_steps]
    if declared.sensors:
        sensors = declared.sensors
        block: dict[str, Any] = {
            "object_key": sensors_key(tenant_id, media_session_id, segment_id, sensors.format),
            "size_bytes": sensors.size_bytes,
            "format": sensors.format,
            "hz": sensors.hz,
        }
        if sensors.sha256:
            block["sha256"] = sensors.sha256
        envelope["sensors"] = block
    return envelope
