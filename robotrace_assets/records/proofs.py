"""Provider-proof records: built from a verdict, read back, re-evaluated, marked stale.

A proof row is the provider-proof record (the verdict and its checks) plus what is needed to
re-evaluate it later (the expectation and observation as JSON) and the pins (ETag, size,
last-modified) that every later read of the proven objects is held to.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from robotrace_assets import catalog, layout
from robotrace_assets.proof import rules
from robotrace_assets.records.store import RecordStore

if TYPE_CHECKING:  # segments.py reads proofs to refuse a conflicting envelope
    from robotrace_assets.records.segments import SegmentRecord


def declared_objects(envelope: dict[str, Any]) -> tuple[rules.ObjectExpectation, ...]:
    """Every object the envelope declares besides the raw video: the sensor log, then the rest."""
    objects = []
    if sensors := envelope.get("sensors"):
        objects.append(
            rules.ObjectExpectation(
                "sensors", sensors["object_key"], sensors["size_bytes"], sensors.get("sha256"), None
            )
        )
    for o in envelope.get("objects", ()):
        objects.append(
            rules.ObjectExpectation(
                o["role"], o["object_key"], o["size_bytes"], o.get("sha256"), o["content_type"]
            )
        )
    return tuple(objects)


def expectation(segment: SegmentRecord) -> rules.Expectation:
    """What the segment's envelope declares, as the proof rules take it."""
    return rules.Expectation(
        segment_id=segment.segment_id,
        tenant_id=segment.tenant_id,
        object_key=segment.raw_key,
        size_bytes=segment.raw_size_bytes,
        sha256=segment.raw_sha256,
        content_type=segment.raw_content_type,
        part_count=segment.part_count,
        part_size_bytes=segment.part_size_bytes,
        media_session_id=segment.media_session_id,
        objects=declared_objects(segment.envelope),
    )


@dataclass(frozen=True)
class StoreFacts:
    """Where the proof was made: recorded so a buyer knows whose word the proof is."""

    provider: str  # "cloudflare-r2" | "s3-compatible"
    bucket: str
    is_r2: bool


def proof_row(
    facts: StoreFacts,
    expect: rules.Expectation,
    obs: rules.Observation,
    extra: dict[str, Any],
    verdict: rules.ProofVerdict,
) -> dict[str, Any]:
    """The seed's provider-proof record, plus what is needed to re-evaluate it later."""
    return {
        "segment_id": expect.segment_id,
        "media_session_id": expect.media_session_id,
        "tenant_id": expect.tenant_id,
        "provider": facts.provider,
        "bucket": facts.bucket,
        "safe_key_prefix": layout.tenant_raw_prefix(expect.tenant_id),
        "object_key": expect.object_key,
        "byte_size": obs.size,
        "declared_size": expect.size_bytes,
        "sha256": obs.read_sha256,
        "declared_sha256": expect.sha256,
        # A buyer policy can require hashes the client declared, not only ones we observed.
        "sha256_declared": expect.sha256 is not None,
        "etag": obs.etag,
        "checksum_sha256": obs.checksum_sha256,
        "checksum_type": extra.get("checksum_type"),
        "content_type": obs.content_type,
        "last_modified": obs.last_modified,
        "encryption": extra.get("encryption")
        or ("provider-managed (AES-256 at rest)" if facts.is_r2 else None),
        "lifecycle_tags": extra.get("lifecycle_tags") or {},
        "request_id": extra.get("request_id"),
        "integrity_status": verdict.status,
        "failed_checks": [f.check for f in verdict.failed()],
        "verified_at": datetime.now(UTC).isoformat(),
        "read_seconds": extra.get("read_seconds"),
        "objects": json.dumps([asdict(o) for o in obs.objects]),
        # Every later read of these objects is pinned to what was proven (If-Match on the ETag).
        "pins": json.dumps(rules.proven_pins(expect, obs), sort_keys=True),
        "expectation": asdict(expect),
        "observation": asdict(obs),
    }


@dataclass(frozen=True)
class ProofRecord:
    """A segment's provider-proof record as the catalog holds it."""

    row: dict[str, Any] = field(repr=False)

    @property
    def segment_id(self) -> str:
        return self.row["segment_id"]

    @property
    def media_session_id(self) -> str | None:
        return self.row.get("media_session_id")

    @property
    def status(self) -> str:
        return self.row["integrity_status"]

    @property
    def etag(self) -> str | None:
        return self.row.get("etag")

    @property
    def sha256(self) -> str | None:
        """The SHA-256 of the raw video as the proof read it."""
        return self.row.get("sha256")

    @property
    def verified_at(self) -> str | None:
        return self.row.get("verified_at")

    @property
    def request_id(self) -> str | None:
        return self.row.get("request_id")

    @property
    def failed_checks(self) -> list[str]:
        return list(self.row.get("failed_checks") or [])

    def pins(self) -> dict[str, dict[str, Any]]:
        """Object key -> the etag, size and last-modified its proof read."""
        if self.row.get("pins"):
            return json.loads(self.row["pins"])
        if not self.etag:
            return {}
        # A record written before declared objects were proven pins the raw video alone.
        return {
            self.row["object_key"]: {
                "etag": self.etag,
                "size": self.row["byte_size"],
                "last_modified": self.row["last_modified"],
            }
        }

    def proven_object(self, role: str) -> dict[str, Any] | None:
        """The proven observation of a declared object (e.g. "sensors"), or None."""
        for found in json.loads(self.row.get("objects") or "[]"):
            if found["role"] == role:
                return found
        return None

    def observation(self) -> rules.Observation:
        data = json.loads(self.row["observation"])
        data["parts"] = tuple(rules.PartRow(**p) for p in data["parts"])
        data["objects"] = tuple(rules.ObjectObservation(**o) for o in data.get("objects", ()))
        session = data.get("session")
        data["session"] = rules.SessionFacts(**session) if session else None
        return rules.Observation(**data)

    def expectation(self) -> rules.Expectation:
        data = json.loads(self.row["expectation"])
        data["objects"] = tuple(rules.ObjectExpectation(**o) for o in data.get("objects", ()))
        return rules.Expectation(**data)

    def as_stale(self, reason: str) -> ProofRecord:
        failed = sorted({*self.failed_checks, rules.UNCHANGED})
        stale = {
            **self.row,
            "integrity_status": rules.STALE,
            "failed_checks": failed,
            "stale_reason": reason,
        }
        return ProofRecord(stale)


def load_proof(store: RecordStore, segment_id: str) -> ProofRecord | None:
    rows = store.read_record(catalog.PROOFS, segment_id)
    return ProofRecord(rows[0]) if rows else None


def write_proof(store: RecordStore, record: ProofRecord) -> str:
    return store.write_record(catalog.PROOFS, record.segment_id, [record.row])
