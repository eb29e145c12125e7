"""A RoboTrace episode in our data model: one media session with one segment.

The video is the segment's raw object; sensors and actions are declared objects of the segment
(role `sensors` / `actions`, proven like the video). RoboTrace metadata becomes provenance. The
operator, task brief, device and safety rules version a RoboTrace client never sends come from
the tenant's configured defaults; consent and license come from `metadata.consent` /
`metadata.license` when the client sends them (the data model's objects), else from the tenant.
No Dagster, no web framework.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jsonschema import Draft202012Validator

from robotrace_assets import ids, layout
from robotrace_assets.envelopes import schema
from robotrace_assets.ingest.verify import Observed
from robotrace_assets.objectstore.multipart import MAX_PART_SIZE, MIN_PART_SIZE

SOURCE = "robotrace_ingest"
EXTENSIONS = {"video": "mp4", "sensors": "sensors.bin", "actions": "actions.bin"}
PROVENANCE_FIELDS = ("name", "robot", "policy_version", "env_version", "git_sha", "seed", "fps")


class TermsError(ValueError):
    """metadata.consent or metadata.license is present but not the data model's object."""


@dataclass(frozen=True)
class TenantDefaults:
    tenant_id: str
    operator_id: str
    task_brief_id: str
    device_model: str
    device_tier: int
    device_has_lidar: bool
    safety_rules_version: str
    consent: dict[str, Any] | None
    license: dict[str, Any] | None


@dataclass(frozen=True)
class EpisodeFacts:
    episode_id: str
    tenant_id: str
    media_session_id: str
    segment_id: str
    source: str  # real, sim, replay
    created_at: datetime
    finalized_at: datetime
    duration_s: float | None
    fields: Mapping[str, Any]  # name, robot, policy_version, ... (None when unset)
    metadata: Mapping[str, Any]


def object_key(tenant_id: str, media_session_id: str, segment_id: str, kind: str) -> str:
    """Where an episode artifact lives; regenerated upload URLs reuse the same key."""
    return f"{layout.RAW}/{tenant_id}/{media_session_id}/{segment_id}.{EXTENSIONS[kind]}"


def _terms_validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(schema("media_session")["properties"][name]["oneOf"][1])


def terms(metadata: Mapping[str, Any], tenant: TenantDefaults) -> tuple[dict | None, dict | None]:
    """(consent, license) for the session envelope; TermsError when the client sent bad ones."""
    chosen: list[dict | None] = []
    for name, fallback in (("consent", tenant.consent), ("license", tenant.license)):
        value = metadata.get(name)
        if value is None:
            chosen.append(fallback)
            continue
        errors = list(_terms_validator(name).iter_errors(value))
        if errors:
            where = "/".join(str(p) for p in errors[0].absolute_path) or "(object)"
            raise TermsError(f"metadata.{name} invalid at {where}: {errors[0].message}")
        chosen.append(dict(value))
    return chosen[0], chosen[1]


def provenance(facts: EpisodeFacts) -> dict[str, Any]:
    out: dict[str, Any] = {
        "source": SOURCE,
        "episode_id": facts.episode_id,
        "episode_source": facts.source,
    }
    out.update({k: facts.fields[k] for k in PROVENANCE_FIELDS if facts.fields.get(k) is not None})
    if facts.duration_s is not None:
        out["duration_s"] = facts.duration_s
    if facts.metadata:
        out["metadata"] = dict(facts.metadata)
    return out


def session_envelope(facts: EpisodeFacts, tenant: TenantDefaults) -> dict[str, Any]:
    consent, license_ = terms(facts.metadata, tenant)
    envelope: dict[str, Any] = {
        "schema_version": "1",
        "media_session_id": facts.media_session_id,
        "session_id": ids.derived_id("sess", facts.media_session_id, "session"),
        "tenant_id": facts.tenant_id,
        "operator_id": tenant.operator_id,
        "task_brief_id": tenant.task_brief_id,
        "device": {
            "model": tenant.device_model,
            "tier": tenant.device_tier,
            "has_lidar": tenant.device_has_lidar,
        },
        "created_at": _iso(facts.created_at),
        "consent": consent,
        "license": license_,
        "safety_rules_version": tenant.safety_rules_version,
        "segment_ids": [facts.segment_id],
        "source": SOURCE,
        "provenance": provenance(facts),
    }
    task = facts.metadata.get("task")
    name = task if isinstance(task, str) and task else facts.fields.get("name")
    if isinstance(name, str) and name:
        envelope["task"] = {"name": name[:200]}
    return envelope


def segment_envelope(
    facts: EpisodeFacts,
    present: Mapping[str, Observed],
    content_types: Mapping[str, str],
    sensors_hz: float | None = None,
) -> dict[str, Any]:
    """The segment: the video as raw object, the other present artifacts as declared objects;
    with `sensors_hz` (the sensors are our Parquet trajectory log) the sensors become the
    segment's `sensors` block, which clips compute their signals from.

    No SHA-256 anywhere: a RoboTrace client declares none; the proof records what it reads.
    """
    video = present["video"]
    ended = (
        facts.created_at + timedelta(seconds=facts.duration_s)
        if facts.duration_s is not None
        else max(facts.finalized_at, facts.created_at)
    )
    key = object_key(facts.tenant_id, facts.media_session_id, facts.segment_id, "video")
    raw: dict[str, Any] = {
        "object_key": key,
        "size_bytes": video.size,
        "content_type": content_types["video"],
    }
    fps = facts.fields.get("fps")
    if isinstance(fps, int | float) and fps > 0:
        raw["fps"] = fps
    envelope: dict[str, Any] = {
        "schema_version": "1",
        "media_session_id": facts.media_session_id,
        "segment_id": facts.segment_id,
        "capture_id": ids.derived_id("cap", facts.segment_id, "capture"),
        "tenant_id": facts.tenant_id,
        "segment_index": 0,
        "started_at": _iso(facts.created_at),
        "ended_at": _iso(ended),
        "boundary_reason": "end_of_session",
        "raw": raw,
        "upload": {
            "part_count": 1,
            "part_size_bytes": min(MAX_PART_SIZE, max(video.size, MIN_PART_SIZE)),
        },
        "objects": [
            {
                "role": kind,
                "object_key": object_key(
                    facts.tenant_id, facts.media_session_id, facts.segment_id, kind
                ),
                "size_bytes": observed.size,
                "content_type": content_types[kind],
            }
            for kind, observed in present.items()
            if kind != "video" and not (kind == "sensors" and sensors_hz)
        ],
        "source": SOURCE,
        "provenance": provenance(facts),
    }
    if sensors_hz and "sensors" in present:
        envelope["sensors"] = {
            "object_key": object_key(
                facts.tenant_id, facts.media_session_id, facts.segment_id, "sensors"
            ),
            "size_bytes": present["sensors"].size,
            "format": "parquet",
            "hz": sensors_hz,
        }
    return envelope


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")
