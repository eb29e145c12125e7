"""Segment assets: the validated envelope and the multipart part table, one partition each."""

from collections.abc import Iterator

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
from robotrace_assets.alerts.notify import Alert
from robotrace_assets.batching import SEGMENT_BACKFILL_POLICY, materialize_each
from robotrace_assets.envelopes import SegmentEnvelope
from robotrace_assets.failures import failing_on_record_errors
from robotrace_assets.partitions import segment_partitions
from robotrace_assets.proof.rules import PROVEN_STATES
from robotrace_assets.records.segments import (
    SegmentRecord,
    envelope_conflict,
    load_segment,
    load_segment_envelope,
    record_conflict,
)
from robotrace_assets.resources import AlertsResource, ObjectStoreResource
from robotrace_assets.segments import parts as part_table
from robotrace_assets.ui_metadata import OWNERS, catalog_table, code_reference

SEGMENT = AssetKey(["segments", "segment"])
RAW_VIDEO = AssetKey(["raw", "segment_video"])
SEGMENT_PARTS = AssetKey(["segments", "segment_parts"])


# The raw video is written by capture clients, not by Dagster: an external asset, so lineage
# reads raw -> proof -> derivatives.
raw_segment_video = AssetSpec(
    RAW_VIDEO,
    partitions_def=segment_partitions,
    group_name="segments",
    kinds={"s3", "video"},
    owners=OWNERS,
    description="The raw segment video in the capture bucket, uploaded by the capture client "
    "(multipart, through presigned URLs) as its segment envelope declares.",
    metadata=code_reference(SegmentEnvelope, "the segment envelope that declares it"),
)


def refuse_if_conflicting(
    store: ObjectStoreResource, alerts: AlertsResource, envelope: SegmentEnvelope
) -> None:
    """A different envelope for a proven segment is refused, recorded and alerted; the proven
    record stays. Otherwise reviewer decisions made on the proven bytes would attach to new
    content."""
    conflict = envelope_conflict(store, envelope, PROVEN_STATES)
    if conflict is None:
        return
    conflict_key = record_conflict(store, conflict)
    changed = conflict.changed_fields
    alerts.send(
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


@asset(
    key=SEGMENT,
    backfill_policy=SEGMENT_BACKFILL_POLICY,
    partitions_def=segment_partitions,
    group_name="segments",
    kinds={"s3", "parquet"},
    owners=OWNERS,
    description="The validated segment envelope: what the client declared it uploaded.",
    metadata=catalog_table(catalog.SEGMENTS),
)
def segment(
    context: AssetExecutionContext, object_store: ObjectStoreResource, alerts: AlertsResource
) -> Iterator[MaterializeResult]:
    yield from materialize_each(context, lambda s: record_segment(object_store, alerts, s))


def record_segment(
    object_store: ObjectStoreResource, alerts: AlertsResource, segment_id: str
) -> MaterializeResult:
    with failing_on_record_errors():
        envelope = load_segment_envelope(object_store, segment_id, object_store.known_tenants)
    refuse_if_conflicting(object_store, alerts, envelope)
    record = SegmentRecord.from_envelope(envelope)
    key = object_store.write_record(catalog.SEGMENTS, envelope.segment_id, [record.to_row()])
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
    backfill_policy=SEGMENT_BACKFILL_POLICY,
    partitions_def=segment_partitions,
    deps=[SEGMENT, RAW_VIDEO],
    group_name="segments",
    kinds={"s3", "parquet"},
    owners=OWNERS,
    description="The multipart part table of the raw object: number, byte range, size, ETag, "
    "checksum and status; from ListParts while uploading, from the object once complete.",
    metadata=catalog_table(catalog.PARTS),
)
def segment_parts(
    context: AssetExecutionContext, object_store: ObjectStoreResource
) -> Iterator[MaterializeResult]:
    yield from materialize_each(context, lambda s: record_parts(object_store, s))


def record_parts(object_store: ObjectStoreResource, segment_id: str) -> MaterializeResult:
    with failing_on_record_errors():
        row = load_segment(object_store, segment_id)
    client, bucket, key = object_store.client(), object_store.bucket_name, row.raw_key
    layout_ok = True
    try:
        layout.check_key_within(key, layout.tenant_raw_prefix(row.tenant_id))
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
                row.segment_id,
                head,
                row.part_size_bytes,
                row.part_count,
            )
            state = f"complete ({source})"
        else:
            in_progress = part_table.in_progress_parts(
                client, bucket, key, row.segment_id, row.part_count
            )
            # Missing and no upload in progress: an empty table; the proof records it as
            # missing and its checks fail and alert.
            records, state = (in_progress, "uploading") if in_progress else ([], "missing")
    table_key = object_store.write_record(
        catalog.PARTS, row.segment_id, part_table.as_rows(records)
    )
    missing = [r.part_number for r in records if r.status == "missing"]
    return MaterializeResult(
        metadata={
            "state": state,
            "parts": len(records),
            "declared_parts": row.part_count,
            "missing_parts": MetadataValue.json(missing),
            "bytes": sum(r.size for r in records),
            "catalog_key": MetadataValue.path(table_key),
        }
    )
