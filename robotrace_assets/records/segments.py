"""Segment records: the validated envelope as read from the bucket, and its catalog row."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from robotrace_assets import catalog, layout
from robotrace_assets.envelopes import SegmentEnvelope, changed_fields
from robotrace_assets.records.errors import RecordMissing
from robotrace_assets.records.loading import load_envelope
from robotrace_assets.records.proofs import load_proof
from robotrace_assets.records.store import RecordStore


@dataclass(frozen=True)
class SegmentRecord:
    """A segment as the catalog holds it (`robotics/catalog/segments/<segment_id>.parquet`)."""

    segment_id: str
    media_session_id: str
    tenant_id: str
    capture_id: str
    segment_index: int
    started_at: str
    ended_at: str
    duration_s: float
    boundary_reason: str
    raw_key: str
    raw_size_bytes: int
    raw_sha256: str | None
    raw_content_type: str
    part_count: int
    part_size_bytes: int
    sensors_key: str | None
    sensors_size_bytes: int | None
    sensors_sha256: str | None
    envelope: dict[str, Any] = field(repr=False)

    @classmethod
    def from_envelope(cls, envelope: SegmentEnvelope) -> SegmentRecord:
        return cls(
            segment_id=envelope.segment_id,
            media_session_id=envelope.media_session_id,
            tenant_id=envelope.tenant_id,
            capture_id=envelope.capture_id,
            segment_index=envelope.segment_index,
            started_at=envelope.started_at.isoformat(),
            ended_at=envelope.ended_at.isoformat(),
            duration_s=envelope.duration_s,
            boundary_reason=envelope.boundary_reason,
            raw_key=envelope.raw_key,
            raw_size_bytes=envelope.raw_size_bytes,
            raw_sha256=envelope.raw_sha256,
            raw_content_type=envelope.raw_content_type,
            part_count=envelope.part_count,
            part_size_bytes=envelope.part_size_bytes,
            sensors_key=envelope.sensors_key,
            sensors_size_bytes=envelope.sensors_size_bytes,
            sensors_sha256=envelope.sensors_sha256,
            envelope=envelope.document,
        )

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> SegmentRecord:
        envelope = row["envelope"]
        return cls(
            **{**row, "envelope": json.loads(envelope) if isinstance(envelope, str) else envelope}
        )

    def to_row(self) -> dict[str, Any]:
        return asdict(self)  # the catalog stores the envelope as JSON text

    @property
    def sensors_format(self) -> str:
        return (self.envelope.get("sensors") or {}).get("format", "parquet")


def load_segment_envelope(
    store: RecordStore, segment_id: str, known_tenants: Collection[str] | None = None
) -> SegmentEnvelope:
    """The segment's envelope from the bucket, or a RecordError that says what is wrong."""
    return load_envelope(
        store,
        what="segment",
        prefix="seg",
        entity_id=segment_id,
        key_of=layout.segment_envelope_key,
        parse=SegmentEnvelope.parse,
        id_of=lambda envelope: envelope.segment_id,
        known_tenants=known_tenants,
    )


def load_segment(store: RecordStore, segment_id: str) -> SegmentRecord:
    rows = store.read_record(catalog.SEGMENTS, segment_id)
    if not rows:
        raise RecordMissing(
            f"segment {segment_id} has no catalog record: materialize segments/segment"
        )
    return SegmentRecord.from_row(rows[0])


@dataclass(frozen=True)
class EnvelopeConflict:
    """A second, different envelope for a segment whose proof already stands."""

    segment_id: str
    changed_fields: list[str]
    proof_status: str
    refused_envelope: dict[str, Any]

    @property
    def key(self) -> str:
        digest = hashlib.sha256(
            json.dumps(self.refused_envelope, sort_keys=True).encode()
        ).hexdigest()
        return f"{layout.CATALOG}/envelope_conflicts/{self.segment_id}/{digest}.json"


def envelope_conflict(
    store: RecordStore, envelope: SegmentEnvelope, proven_states: Collection[str]
) -> EnvelopeConflict | None:
    """Once a segment is proven its envelope is final. A different one for the same id (other
    size, hash, key, tenant, session...) is a conflict; the same envelope again is not."""
    proof = load_proof(store, envelope.segment_id)
    if proof is None or proof.status not in proven_states:
        return None
    previous = store.read_record(catalog.SEGMENTS, envelope.segment_id)
    if not previous:
        return None
    changed = changed_fields(json.loads(previous[0]["envelope"]), envelope.document)
    if not changed:
        return None
    return EnvelopeConflict(envelope.segment_id, changed, proof.status, envelope.document)


def record_conflict(store: RecordStore, conflict: EnvelopeConflict) -> str:
    """Keep the refused envelope beside the catalog, so nothing a client sent is lost."""
    record = {**asdict(conflict), "refused_at": datetime.now(UTC).isoformat()}
    store.put_bytes(conflict.key, json.dumps(record, indent=2).encode(), layout.JSON_CONTENT_TYPE)
    return conflict.key
