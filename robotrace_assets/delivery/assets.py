"""The buyer delivery asset: one partition per (buyer, delivery), materialized on demand.

It selects clips by the rules in delivery/eligibility.py, proves every segment in scope through
the shared proof gate (and re-verifies its derivatives), delivers by the buyer's method, checks
what was delivered, and writes a signed export manifest (JSON and Parquet) beside it.
Materializing the same delivery again delivers the same bytes and keeps the same manifest.

The candidate pool is the review-complete set of the delivery's window of capture days only
(review/shards.py reads those days' shards, never the whole set). The window is fixed at the
first materialization (run config, `robotrace deliver --from/--to`, else the DEFAULT_WINDOW_DAYS
ending that day) and recorded in the catalog table delivery_windows (outside the buyer's
prefix), so a re-materialization reads the same days.
"""

import hashlib
import json
from dataclasses import asdict
from datetime import UTC, datetime

from botocore.exceptions import BotoCoreError, ClientError
from dagster import (
    AllPartitionMapping,
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from robotrace_assets import catalog, layout
from robotrace_assets.columns import DELIVERY_MANIFEST_COLUMNS
from robotrace_assets.delivery.buyers import (
    WINDOWS_TABLE,
    Buyer,
    BuyerConfigError,
    DeliveryWindow,
    load_buyers,
    parse_delivery_partition,
    window,
)
from robotrace_assets.delivery.eligibility import ProofState, Selection, select
from robotrace_assets.delivery.manifest.build import build_manifest
from robotrace_assets.delivery.manifest.model import Manifest
from robotrace_assets.delivery.manifest.read import read_manifest_json
from robotrace_assets.delivery.manifest.write import manifest_json_bytes, manifest_parquet_bytes
from robotrace_assets.delivery.methods import Artifact, DeliveryError, plan_raw_artifacts
from robotrace_assets.delivery.packaging import (
    deliver,
    exclusions_document,
    lerobot_artifacts,
    manifest_rows,
    mcap_artifacts,
)
from robotrace_assets.derivatives.assets import PROXY
from robotrace_assets.derivatives.publish import PublishError, verify
from robotrace_assets.failures import failing_on_record_errors
from robotrace_assets.partitions import delivery_partitions
from robotrace_assets.proof.guard import proof_gate
from robotrace_assets.records.segments import load_segment
from robotrace_assets.resources import AlertsResource, ManifestSigningResource, ObjectStoreResource
from robotrace_assets.review.assets import REVIEW_COMPLETE
from robotrace_assets.review.shards import read_days
from robotrace_assets.ui_metadata import OWNERS, column_schema

BUYER_DELIVERY = AssetKey(["delivery", "buyer_delivery"])


class DeliveryConfig(Config):
    """The capture-day window (YYYY-MM-DD, inclusive), given on the first materialization."""

    from_day: str | None = None
    to_day: str | None = None


def delivery_window(
    store: ObjectStoreResource, partition: str, config: DeliveryConfig
) -> DeliveryWindow:
    """The window recorded for the delivery (catalog table delivery_windows, outside the
    buyer's prefix); on its first materialization, the one asked for (or the default), recorded.
    Asking a made delivery for another window is refused."""
    try:
        asked = window(config.from_day, config.to_day) if config.from_day or config.to_day else None
        rows = store.read_record(WINDOWS_TABLE, partition)
        stored = window(rows[0]["from_day"], rows[0]["to_day"]) if rows else None
    except BuyerConfigError as error:
        raise Failure(str(error), allow_retries=False) from None
    if stored is not None:
        if asked is not None and asked != stored:
            raise Failure(
                f"this delivery was made for {stored.from_day}..{stored.to_day}; "
                f"use a new delivery id for {asked.from_day}..{asked.to_day}",
                allow_retries=False,
            )
        return stored
    chosen = asked or window(None, None)
    store.write_record(WINDOWS_TABLE, partition, [asdict(chosen)])
    return chosen


def proof_states(
    context: AssetExecutionContext,
    store: ObjectStoreResource,
    alerts: AlertsResource,
    segment_ids: set[str],
) -> tuple[dict[str, ProofState], dict[str, dict], dict[str, dict], dict[str, list[dict]]]:
    """The proof of every segment in scope: the shared gate (checks current and passed, record
    verified) plus a fresh read-back of each of its derivatives."""
    states, records, rows, derivatives = {}, {}, {}, {}
    client, bucket = store.client(), store.bucket_name
    for segment_id in sorted(segment_ids):
        gate = proof_gate(context.instance, store, alerts, segment_id)
        reasons = list(gate.reasons)
        items = store.read_record(catalog.DERIVATIVES, segment_id) or []
        derivatives_ok = bool(items)
        if not items:
            reasons.append("no derivatives recorded")
        for item in items:
            try:
                verify(client, bucket, item["key"], item["size_bytes"], item["sha256"])
            except (PublishError, ClientError, BotoCoreError) as error:  # missing counts too
                derivatives_ok = False
                reasons.append(f"derivative {item['kind']}: {str(error)[:200]}")
        record = gate.record.row if gate.record else {}
        declared = record.get("sha256_declared", True)
        states[segment_id] = ProofState(gate.passed, derivatives_ok, tuple(reasons), declared)
        records[segment_id] = record
        with failing_on_record_errors():
            rows[segment_id] = load_segment(store, segment_id).to_row()
        derivatives[segment_id] = items
    return states, records, rows, derivatives


@asset(
    key=BUYER_DELIVERY,
    partitions_def=delivery_partitions,
    # Lineage only: the delivery reads its window's days and its own segments' records.
    deps=[
        AssetDep(REVIEW_COMPLETE, partition_mapping=AllPartitionMapping()),
        AssetDep(PROXY, partition_mapping=AllPartitionMapping()),
    ],
    group_name="delivery",
    kinds={"s3", "parquet", "json"},
    owners=OWNERS,
    metadata=column_schema(DELIVERY_MANIFEST_COLUMNS),  # the Parquet manifest's rows
    op_tags={"robotrace/io": "heavy"},
    description="A buyer delivery: eligible clips only, every segment proven, delivered by "
    "the buyer's method and verified, with a signed export manifest (JSON and Parquet, one "
    "row per delivered file). Run by `buyer_delivery_job` (`robotrace deliver <buyer>`).",
)
def buyer_delivery(
    context: AssetExecutionContext,
    config: DeliveryConfig,
    object_store: ObjectStoreResource,
    alerts: AlertsResource,
    manifest_signing: ManifestSigningResource,
) -> MaterializeResult:
    buyer_id, delivery_id, buyer = _buyer(context.partition_key)
    prefix = layout.delivery_prefix(buyer_id, delivery_id)
    days = delivery_window(object_store, context.partition_key, config)
    pool = read_days(object_store, catalog.REVIEW_COMPLETE, days.days())
    # With no proof states yet, every clip that passes the business rules lands in
    # proof_blocked: exactly the segments that must be proven for this buyer.
    scope = select(pool, buyer, {})
    in_scope = {e.segment_id for e in scope.proof_blocked}
    states, records, rows, derivatives = proof_states(context, object_store, alerts, in_scope)
    selection = select(pool, buyer, states)
    _refuse_unless_deliverable(buyer_id, selection, days)
    try:
        artifacts = _artifacts(object_store, buyer, selection, rows, records, derivatives, prefix)
        delivered_keys, done = deliver(object_store, buyer, artifacts, prefix)
    except DeliveryError as error:
        raise Failure(f"delivery {context.partition_key}: {error}", allow_retries=False) from None
    manifest = build_manifest(
        manifest_rows(artifacts, delivered_keys),
        manifest_id=f"man_{hashlib.sha256(context.partition_key.encode()).hexdigest()[:24]}",
        buyer_id=buyer_id,
        delivery_id=delivery_id,
        created_at=datetime.now(UTC).isoformat(),
        signer=manifest_signing.signer(),
    )
    manifest, unchanged = _publish_manifest(object_store, manifest, prefix)
    object_store.put_bytes(
        f"{prefix}exclusions.json", exclusions_document(selection), layout.JSON_CONTENT_TYPE
    )
    header = manifest.header
    return MaterializeResult(
        metadata={
            "buyer_id": buyer_id,
            "window": f"{days.from_day}..{days.to_day}",
            "candidate_clips": len(pool),
            "proof_policy": buyer.proof_policy,
            "format": buyer.format,
            "method": buyer.method,
            "clips": len(selection.eligible),
            "excluded": len(selection.excluded),
            "excluded_for_proof": len(selection.proof_blocked),
            "artifacts": header.artifact_count,
            "total_bytes": header.total_bytes,
            "manifest_id": header.manifest_id,
            "bundle_sha256": header.bundle_sha256,
            "signature": f"{header.signature_algorithm} by key {header.key_id}",
            "manifest_unchanged": unchanged,
            **done,
            "manifest_key": MetadataValue.path(f"{prefix}manifest.json"),
        }
    )


def _buyer(partition_key: str) -> tuple[str, str, Buyer]:
    try:
        buyer_id, delivery_id = parse_delivery_partition(partition_key)
        buyer = load_buyers().get(buyer_id)
    except BuyerConfigError as error:
        raise Failure(str(error), allow_retries=False) from None
    if buyer is None:
        raise Failure(f"unknown buyer {buyer_id}: add it to ROBOTRACE_BUYERS_FILE")
    return buyer_id, delivery_id, buyer


def _refuse_unless_deliverable(buyer_id: str, selection: Selection, days: DeliveryWindow) -> None:
    """The strict proof policy: one clip in scope failing its proof stops the whole delivery."""
    if selection.blocked:
        lines = sorted({f"{e.segment_id}: {'; '.join(e.reasons)}" for e in selection.proof_blocked})
        raise Failure(
            f"strict proof policy: {len(selection.proof_blocked)} clips in scope of {buyer_id} "
            "fail provider proof; nothing delivered: " + " | ".join(lines[:10]),
            metadata={"proof_failures": MetadataValue.json(lines)},
            allow_retries=False,
        )
    if not selection.eligible:
        raise Failure(
            f"nothing eligible for {buyer_id} in capture days {days.from_day}..{days.to_day}: "
            f"{len(selection.excluded)} excluded, "
            f"{len(selection.proof_blocked)} excluded for proof",
            metadata={"excluded": MetadataValue.json(json.loads(exclusions_document(selection)))},
        )


def _artifacts(
    store: ObjectStoreResource,
    buyer: Buyer,
    selection: Selection,
    rows: dict[str, dict],
    records: dict[str, dict],
    derivatives: dict[str, list[dict]],
    prefix: str,
) -> list[Artifact]:
    """What the buyer's format ships: raw bytes and derivatives, a LeRobot dataset, or
    telemetry MCAPs beside the proxies."""
    if buyer.format == "lerobot":
        return lerobot_artifacts(
            store, selection.eligible, rows, records, derivatives, prefix, buyer.include_depth
        )
    raw = plan_raw_artifacts(selection.eligible, rows, records, derivatives)
    if buyer.format == "mcap":
        proxies = [a for a in raw if a.kind == "proxy"]
        return proxies + mcap_artifacts(store, selection.eligible, prefix)
    return raw


def _publish_manifest(
    store: ObjectStoreResource, manifest: Manifest, prefix: str
) -> tuple[Manifest, bool]:
    """Write the manifest (JSON and Parquet) unless the one already there covers the same bytes
    and the same lineage, consent, license and review facts per row: then keep the manifest the
    buyer has."""
    key_json = f"{prefix}manifest.json"
    try:
        existing = read_manifest_json(store.get_bytes(key_json))
    except Exception:  # no manifest yet, or an unreadable one: write a fresh one
        existing = None
    if existing is not None and (existing.header.bundle_sha256, existing.header.rows_sha256) == (
        manifest.header.bundle_sha256,
        manifest.header.rows_sha256,
    ):
        return existing, True
    store.put_bytes(key_json, manifest_json_bytes(manifest), layout.JSON_CONTENT_TYPE)
    store.put_bytes(
        f"{prefix}manifest.parquet",
        manifest_parquet_bytes(manifest),
        layout.PARQUET_CONTENT_TYPE,
    )
    return manifest, False
