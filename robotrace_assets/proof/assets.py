"""The provider-proof asset: what the store holds for a segment, and whether it agrees."""

import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
    asset,
)

from robotrace_assets import catalog, layout
from robotrace_assets.partitions import segment_partitions
from robotrace_assets.proof import rules
from robotrace_assets.proof.observe import observe
from robotrace_assets.resources import ObjectStoreResource
from robotrace_assets.segments.assets import RAW_VIDEO, SEGMENT, SEGMENT_PARTS, load_segment_row

PROVIDER_PROOF = AssetKey(["proof", "provider_proof"])


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


def expectation(row: dict[str, Any]) -> rules.Expectation:
    return rules.Expectation(
        segment_id=row["segment_id"],
        tenant_id=row["tenant_id"],
        object_key=row["raw_key"],
        size_bytes=row["raw_size_bytes"],
        sha256=row["raw_sha256"],
        content_type=row["raw_content_type"],
        part_count=row["part_count"],
        part_size_bytes=row["part_size_bytes"],
        media_session_id=row["media_session_id"],
        objects=declared_objects(json.loads(row["envelope"])),
    )


def proof_record(
    store: ObjectStoreResource,
    row: dict[str, Any],
    expect: rules.Expectation,
    obs: rules.Observation,
    extra: dict[str, Any],
    verdict: rules.ProofVerdict,
) -> dict[str, Any]:
    """The seed's provider-proof record, plus what is needed to re-evaluate it later."""
    return {
        "segment_id": expect.segment_id,
        "media_session_id": row["media_session_id"],
        "tenant_id": expect.tenant_id,
        "provider": store.settings.provider,
        "bucket": store.bucket_name,
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
        or ("provider-managed (AES-256 at rest)" if store.settings.is_r2 else None),
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


def load_proof_record(store: ObjectStoreResource, segment_id: str) -> dict[str, Any] | None:
    rows = store.read_record(catalog.PROOFS, segment_id)
    return rows[0] if rows else None


def observation_from_record(record: dict[str, Any]) -> rules.Observation:
    data = json.loads(record["observation"])
    data["parts"] = tuple(rules.PartRow(**p) for p in data["parts"])
    data["objects"] = tuple(rules.ObjectObservation(**o) for o in data.get("objects", ()))
    session = data.get("session")
    data["session"] = rules.SessionFacts(**session) if session else None
    return rules.Observation(**data)


def expectation_from_record(record: dict[str, Any]) -> rules.Expectation:
    data = json.loads(record["expectation"])
    data["objects"] = tuple(rules.ObjectExpectation(**o) for o in data.get("objects", ()))
    return rules.Expectation(**data)


def pins_from_record(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Object key -> the etag, size and last-modified its proof read."""
    if record.get("pins"):
        return json.loads(record["pins"])
    if not record.get("etag"):
        return {}
    # A record written before declared objects were proven pins the raw video alone.
    return {
        record["object_key"]: {
            "etag": record["etag"],
            "size": record["byte_size"],
            "last_modified": record["last_modified"],
        }
    }


def proven_object(record: dict[str, Any], role: str) -> dict[str, Any] | None:
    """The proven observation of a declared object (e.g. "sensors"), or None."""
    for found in json.loads(record.get("objects") or "[]"):
        if found["role"] == role:
            return found
    return None


@asset(
    key=PROVIDER_PROOF,
    partitions_def=segment_partitions,
    deps=[SEGMENT, SEGMENT_PARTS, RAW_VIDEO],
    group_name="proof",
    kinds={"s3", "parquet"},
    op_tags={"robotrace/io": "heavy"},  # deploy/ limits concurrent full-object reads by this tag
    description="Provider proof of the raw object: HEAD with ChecksumMode plus a full streaming "
    "read (SHA-256 and per-part MD5). Its checks block proxy, review and delivery.",
)
def provider_proof(
    context: AssetExecutionContext, object_store: ObjectStoreResource
) -> MaterializeResult:
    row = load_segment_row(object_store, context.partition_key)
    expect = expectation(row)
    catalog_parts = object_store.read_record(catalog.PARTS, expect.segment_id) or []
    obs, extra = observe(object_store.client(), object_store.bucket_name, expect, catalog_parts)
    # A missing object is recorded and fails the checks (which alert), like any other verdict.
    verdict = rules.evaluate(expect, obs)
    record = proof_record(object_store, row, expect, obs, extra, verdict)
    key = object_store.write_record(catalog.PROOFS, expect.segment_id, [record])
    if not verdict.passed:
        context.log.warning(
            f"provider proof {verdict.status} for {expect.segment_id}: "
            + "; ".join(f"{f.check}: {f.description}" for f in verdict.failed())
        )
    return MaterializeResult(
        metadata={
            "integrity_status": verdict.status,
            "media_session_id": row["media_session_id"],
            "failed_checks": MetadataValue.json(record["failed_checks"]),
            "byte_size": obs.size,
            "declared_size": expect.size_bytes,
            "sha256": obs.read_sha256 or "",
            "sha256_declared": expect.sha256 is not None,
            "declared_objects": MetadataValue.json({o.role: o.object_key for o in expect.objects}),
            "etag": obs.etag or "",
            "parts": len(obs.parts),
            "read_seconds": extra.get("read_seconds"),
            "read_mb_per_s": extra.get("read_mb_per_s"),
            "catalog_key": MetadataValue.path(key),
        }
    )
