"""The media-session asset: validated envelope, provenance, and the rollup of its segments."""

from dagster import (
    AllPartitionMapping,
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
    asset,
)

from robotrace_assets import catalog
from robotrace_assets.alerts.notify import Alert
from robotrace_assets.failures import failing_on_record_errors
from robotrace_assets.partitions import media_session_partitions
from robotrace_assets.payouts.ledger import current_state
from robotrace_assets.proof.assets import PROVIDER_PROOF
from robotrace_assets.records.sessions import load_session_envelope
from robotrace_assets.resources import AlertsResource, ObjectStoreResource
from robotrace_assets.sessions.rollup import buyer_readiness, payout_totals, review_outcomes, rollup
from robotrace_assets.ui_metadata import OWNERS, catalog_table

MEDIA_SESSION = AssetKey(["sessions", "media_session"])


@asset(
    key=MEDIA_SESSION,
    partitions_def=media_session_partitions,
    # Lineage only: the rollup reads its own segments' records from the catalog.
    deps=[AssetDep(PROVIDER_PROOF, partition_mapping=AllPartitionMapping())],
    group_name="sessions",
    kinds={"s3", "parquet"},
    owners=OWNERS,
    metadata=catalog_table(catalog.SESSIONS),
    description="The media session: provenance (operator, task brief, device, consent receipt, "
    "license scope, safety rules version) and a rollup of its own segments: proof states, "
    "review outcomes, payout totals by state and buyer readiness.",
)
def media_session(
    context: AssetExecutionContext, object_store: ObjectStoreResource, alerts: AlertsResource
) -> MaterializeResult:
    with failing_on_record_errors():
        envelope = load_session_envelope(
            object_store, context.partition_key, object_store.known_tenants
        )
    segments, proofs = {}, {}
    for segment_id in envelope.segment_ids:
        if rows := object_store.read_record(catalog.SEGMENTS, segment_id):
            segments[segment_id] = rows[0]
        if rows := object_store.read_record(catalog.PROOFS, segment_id):
            proofs[segment_id] = rows[0]
    summary = rollup(
        envelope.segment_ids, segments, proofs, envelope.media_session_id, envelope.tenant_id
    )
    own = [s for s in envelope.segment_ids if s not in summary["refused_claims"]]
    reviews = {s: rows for s in own if (rows := object_store.read_record(catalog.CLIP_REVIEWS, s))}
    payouts = {s: current_state(object_store, s) for s in own if s in segments}
    summary["review_outcomes"] = review_outcomes(reviews)
    summary["payout_totals"] = payout_totals(payouts)
    summary["buyer_readiness"] = buyer_readiness(own, summary["proof_states"], reviews)
    for segment_id, why in summary["refused_claims"].items():
        context.log.error(f"media session {envelope.media_session_id} claims {segment_id}: {why}")
        alerts.send(
            Alert(
                "segment_claim_refused",
                f"media session {envelope.media_session_id} lists a segment it does not own",
                {
                    "media_session_id": envelope.media_session_id,
                    "segment_id": segment_id,
                    "reason": why,
                },
            )
        )
    row = {
        **envelope.provenance(),
        "task_name": envelope.task_name,
        "device_tier": envelope.device_tier,
        "device_has_lidar": envelope.device_has_lidar,
        "blur_enforced": envelope.blur_enforced,
        "created_at": envelope.created_at.isoformat(),
        "segment_ids": list(envelope.segment_ids),
        **summary,
    }
    key = object_store.write_record(catalog.SESSIONS, envelope.media_session_id, [row])
    return MaterializeResult(
        metadata={
            "tenant_id": envelope.tenant_id,
            "operator_id": envelope.operator_id,
            "task_brief_id": envelope.task_brief_id,
            "device": envelope.device_model,
            "consent_receipt_id": envelope.consent_receipt_id or "MISSING",
            "license_scope_id": envelope.license_scope_id,
            "allowed_use": MetadataValue.json(list(envelope.allowed_use)),
            "safety_rules_version": envelope.safety_rules_version,
            "segments_declared": summary["segments_declared"],
            "segments_verified": summary["segments_verified"],
            "segments_failed": summary["segments_failed"],
            "bytes_verified": summary["bytes_verified"],
            "buyer_ready": summary["buyer_ready"],
            "proof_states": MetadataValue.json(summary["proof_states"]),
            "refused_claims": MetadataValue.json(summary["refused_claims"]),
            "review_outcomes": MetadataValue.json(summary["review_outcomes"]),
            "payout_totals": MetadataValue.json(summary["payout_totals"]),
            "buyer_readiness": MetadataValue.json(summary["buyer_readiness"]),
            "catalog_key": MetadataValue.path(key),
        }
    )
