"""Segment assets: the validated envelope and the multipart part table, one partition each."""

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from robotrace_assets import catalog, layout
from robotrace_assets.alerts.notify import Alert, send
from robotrace_assets.envelopes import EnvelopeError, SegmentEnvelope, changed_fields
from robotrace_assets.ids import InvalidId, check_id
from robotrace_assets.partitions import segment_partitions
from robotrace_assets.proof.rules import PROVEN_STATES
from robotrace_assets.resources import ObjectNotFound, ObjectStoreResource
from robotrace_assets.segments import parts as part_table

SEGMENT = AssetKey(["segments", "segment"])
RAW_VIDEO = AssetKey(["raw", "segment_video"])
SEGMENT_PARTS = AssetKey(["segments", "segment_parts"])


# The raw video is written by capture clients, not by Dagster: an external asset, so lineage
# reads raw -> proof -> derivatives.
raw_segment_video = AssetSpec(
    RAW_VIDEO,
    partitions_def=segment_partitions,
    group_name="segments",
    kinds={"s3"},
    description="The raw segment video in the capture bucket, uploaded by the capture client "
    "(multipart, through presigned URLs).",
)


def load_segment_envelope(store: ObjectStoreResource, segment_id: str) -> SegmentEnvelope:
    """The segment's envelope from the bucket, or a Failure that says what is wrong with it."""
    try:
        check_id("seg", segment_id)
        key = layout.segment_envelope_key(segment_id)
        envelope = SegmentEnvelope.parse(store.get_bytes(key))
    except (InvalidId, EnvelopeError, ObjectNotFound) as error:
        raise Failure(description=f"segment {segment_id}: {error}", allow_retries=False) from None
    if envelope.segment_id != segment_id:
        raise Failure(f"envelope at {key} is for {envelope.segment_id}, not {segment_id}")
    tenants = store.settings.known_tenants
    if tenants is not None and envelope.tenant_id not in tenants:
        raise Failure(f"segment {segment_id}: unknown tenant {envelope.tenant_id}")
    return envelope


def segment_row(envelope: SegmentEnvelope) -> dict[str, Any]:
    return {
        "segment_id": envelope.segment_id,
        "media_session_id": envelope.media_session_id,
        "tenant_id": envelope.tenant_id,
        "capture_id": envelope.capture_id,
        "segment_index": envelope.segment_index,
        "started_at": envelope.started_at.isoformat(),
        "ended_at": envelope.ended_at.isoformat(),
        "duration_s": envelope.duration_s,
        "boundary_reason": envelope.boundary_reason,
        "raw_key": envelope.raw_key,
        "raw_size_bytes": envelope.raw_size_bytes,
        "raw_sha256": envelope.raw_sha256,
        "raw_content_type": envelope.raw_content_type,
        "part_count": envelope.part_count,
        "part_size_bytes": envelope.part_size_bytes,
        "sensors_key": envelope.sensors_key,
        "sensors_size_bytes": envelope.sensors_size_bytes,
        "sensors_sha256": envelope.sensors_sha256,
        "envelope": envelope.document,
    }


def refuse_if_conflicting(store: ObjectStoreResource, envelope: SegmentEnvelope) -> None:
    """Once a segment is proven its envelope is final: a different one for the same id (other
    size, hash, key, tenant, session...) is refused, recorded and alerted, and the proven record
    stays. Otherwise reviewer decisions made on the proven bytes would attach to new content."""
    proofs = store.read_record(catalog.PROOFS, envelope.segment_id)
    if not proofs or proofs[0]["integrity_status"] not in PROVEN_STATES:
        return
    previous = store.read_record(catalog.SEGMENTS, envelope.segment_id)
    if not previous:
        return
    changed = changed_fields(json.loads(previous[0]["envelope"]), envelope.document)
    if not changed:
        return  # the same envelope again: nothing to refuse
    digest = hashlib.sha256(json.dumps(envelope.document, sort_keys=True).encode()).hexdigest()
    conflict_key = f"{layout.CATALOG}/envelope_conflicts/{envelope.segment_id}/{digest}.json"
    record = {
        "segment_id": envelope.segment_id,
        "changed_fields": changed,
        "refused_at": datetime.now(UTC).isoformat(),
        "proof_status": proofs[0]["integrity_status"],
        "refused_envelope": envelope.document,
    }
    store.put_bytes(conflict_key, json.dumps(record, indent=2).encode(), layout.JSON_CONTENT_TYPE)
    send(
        Alert(
            "envelope_conflict",
            f"segment {envelope.segment_id}: a second, different envelope was refused",
            {"segment_id": envelope.segment_id, "changed_fields": changed[:20]},
        )
    )
    raise Failure(
        description=f"segment {envelope.segment_id} is already proven and its envelope is final; "
        f"a different envelope (changed: {', '.join(changed[:10])}) was refused and recorded",
        metadata={"conflict_record": MetadataValue.path(conflict_key)},
        allow_retries=False,
    )


def load_segment_row(store: ObjectStoreResource, segment_id: str) -> dict[str, Any]:
    rows = store.read_record(catalog.SEGMENTS, segment_id)
    if not rows:
        raise Failure(f"segment {segment_id} has no catalog record: materialize segments/segment")
    return rows[0]


@asset(
    key=SEGMENT,
    partitions_def=segment_partitions,
    group_name="segments",
    kinds={"s3", "parquet"},
    description="The validated segment envelope: what the client declared it uploaded.",
)
def segment(context: AssetExecutionContext, object_store: ObjectStoreResource) -> MaterializeResult:
    envelope = load_segment_envelope(object_store, context.partition_key)
    refuse_if_conflicting(object_store, envelope)
    key = object_store.write_record(catalog.SEGMENTS, envelope.segment_id, [segment_row(envelope)])
    return MaterializeResult(
        metadata={
            "media_session_id": envelope.media_session_id,
            "tenant_id": envelope.tenant_id,
            "segment_index": envelope.segment_index,
            "raw_key": envelope.raw_key,
            "declared_size_bytes": envelope.raw_size_bytes,
            "declared_sha256": envelope.raw_sha256,
            "part_count": envelope.part_count,
            "duration_s": envelope.duration_s,
            "catalog_key": MetadataValue.path(key),
        }
    )


@asset(
    key=SEGMENT_PARTS,
    partitions_def=segment_partitions,
    deps=[SEGMENT, RAW_VIDEO],
    group_name="segments",
    kinds={"s3", "parquet"},
    description="The multipart part table of the raw object: number, byte range, size, ETag, "
    "checksum and status; from ListParts while uploading, from the object once complete.",
)
def segment_parts(
    context: AssetExecutionContext, object_store: ObjectStoreResource
) -> MaterializeResult:
    row = load_segment_row(object_store, context.partition_key)
    client, bucket, key = object_store.client(), object_store.bucket_name, row["raw_key"]
    layout_ok = True
    try:
        layout.check_key_within(key, layout.tenant_raw_prefix(row["tenant_id"]))
    except layout.UnsafeKey:
        layout_ok = False  # never touch a key outside the tenant: the proof check reports it
    records: list[part_table.PartRecord] = []
    state = "unsafe_key"
    if layout_ok:
        head = object_store.head(key)
        if head is not None:
            records, source = part_table.completed_parts(
                client,
                bucket,
                key,
                row["segment_id"],
                head,
                row["part_size_bytes"],
                row["part_count"],
            )
            state = f"complete ({source})"
        else:
            in_progress = part_table.in_progress_parts(
                client, bucket, key, row["segment_id"], row["part_count"]
            )
            # Missing and no upload in progress: an empty table; the proof records it as
            # missing and its checks fail and alert.
            records, state = (in_progress, "uploading") if in_progress else ([], "missing")
    table_key = object_store.write_record(
        catalog.PARTS, row["segment_id"], part_table.as_rows(records)
    )
    missing = [r.part_number for r in records if r.status == "missing"]
    return MaterializeResult(
        metadata={
            "state": state,
            "parts": len(records),
            "declared_parts": row["part_count"],
            "missing_parts": MetadataValue.json(missing),
            "bytes": sum(r.size for r in records),
            "catalog_key": MetadataValue.path(table_key),
        }
    )
