"""The provider-proof asset: what the store holds for a segment, and whether it agrees."""

from collections.abc import Iterator

from dagster import (
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
    asset,
)

from robotrace_assets import catalog
from robotrace_assets.batching import SEGMENT_BACKFILL_POLICY, materialize_each
from robotrace_assets.failures import failing_on_record_errors
from robotrace_assets.partitions import segment_partitions
from robotrace_assets.proof import rules
from robotrace_assets.proof.metadata import proof_state_metadata, proof_state_tags
from robotrace_assets.proof.observe import observe
from robotrace_assets.records.proofs import (
    ProofRecord,
    StoreFacts,
    expectation,
    proof_row,
    write_proof,
)
from robotrace_assets.records.segments import load_segment
from robotrace_assets.resources import ObjectStoreResource
from robotrace_assets.segments.assets import RAW_VIDEO, SEGMENT, SEGMENT_PARTS
from robotrace_assets.ui_metadata import OWNERS, catalog_table

PROVIDER_PROOF = AssetKey(["proof", "provider_proof"])


@asset(
    key=PROVIDER_PROOF,
    backfill_policy=SEGMENT_BACKFILL_POLICY,
    partitions_def=segment_partitions,
    deps=[SEGMENT, SEGMENT_PARTS, RAW_VIDEO],
    group_name="proof",
    kinds={"s3", "parquet"},
    owners=OWNERS,
    metadata=catalog_table(catalog.PROOFS),
    code_version=rules.RULES_VERSION,
    op_tags={"robotrace/io": "heavy"},  # deploy/ limits concurrent full-object reads by this tag
    description="Provider proof of the raw object: HEAD with ChecksumMode plus a full streaming "
    "read (SHA-256 and per-part MD5). Its checks block proxy, review and delivery.",
)
def provider_proof(
    context: AssetExecutionContext, object_store: ObjectStoreResource
) -> Iterator[MaterializeResult]:
    yield from materialize_each(context, lambda s: prove_segment(context, object_store, s))


def prove_segment(
    context: AssetExecutionContext, object_store: ObjectStoreResource, segment_id: str
) -> MaterializeResult:
    with failing_on_record_errors():
        segment = load_segment(object_store, segment_id)
    expect = expectation(segment)
    catalog_parts = object_store.read_record(catalog.PARTS, expect.segment_id) or []
    obs, extra = observe(object_store.client(), object_store.bucket_name, expect, catalog_parts)
    # A missing object is recorded and fails the checks (which alert), like any other verdict.
    verdict = rules.evaluate(expect, obs)
    facts = StoreFacts(object_store.provider, object_store.bucket_name, object_store.is_r2)
    record = ProofRecord(proof_row(facts, expect, obs, extra, verdict))
    key = write_proof(object_store, record)
    if not verdict.passed:
        context.log.warning(
            f"provider proof {verdict.status} for {expect.segment_id}: "
            + "; ".join(f"{f.check}: {f.description}" for f in verdict.failed())
        )
    return MaterializeResult(
        tags=proof_state_tags(verdict),
        metadata={
            # First: the partition view lists metadata in this order (proof/metadata.py).
            **proof_state_metadata(verdict),
            "integrity_status": verdict.status,
            "media_session_id": segment.media_session_id,
            "failed_checks": MetadataValue.json(record.failed_checks),
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
        },
    )
