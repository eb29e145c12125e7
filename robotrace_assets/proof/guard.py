"""The cross-run proof guard: the one gate every proxy, review and delivery asset goes through.

Dagster's blocking checks stop downstream steps only inside the run that executed them; a later
manual run, a backfill or an automation condition would still materialize downstream. So a
downstream asset calls `require_proven` first and refuses unless, for its segment partition:
every provider-proof check has run, its latest execution passed, it ran after the latest proof
materialization, the recorded proof says "verified", and a HEAD of every proven object (raw video
and declared objects) still answers with the ETag, size and time the proof read. An object
replaced or deleted since marks the proof stale (recorded and alerted) and publishes nothing.
The gate hands back the proof record: every later read is pinned to its ETags (If-Match).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from dagster import AssetCheckKey, AssetRecordsFilter, DagsterInstance, Failure, MetadataValue

from robotrace_assets.alerts.notify import Alert
from robotrace_assets.dagster_compat import (
    AssetCheckExecutionRecord,
    AssetCheckExecutionRecordStatus,
    PartitionKeyFilter,
)
from robotrace_assets.proof import rules
from robotrace_assets.proof.assets import PROVIDER_PROOF
from robotrace_assets.proof.observe import current_objects
from robotrace_assets.records.proofs import ProofRecord, load_proof, write_proof
from robotrace_assets.resources import AlertsResource, ObjectStoreResource

PROOF_CHECK_KEYS = [AssetCheckKey(PROVIDER_PROOF, name) for name in rules.CHECK_NAMES]


@dataclass(frozen=True)
class ProofGate:
    segment_id: str
    passed: bool
    reasons: tuple[str, ...]
    record: ProofRecord | None = None  # the catalog's proof record, as read for this decision


def _evaluated_at(execution: AssetCheckExecutionRecord) -> float:
    # The row is created when the check is planned (run start); the evaluation event says when
    # it actually looked at the proof.
    return execution.event.timestamp if execution.event else execution.create_timestamp


def check_reasons(instance: DagsterInstance, segment_id: str) -> list[str]:
    """Why the segment's proof checks do not vouch for it, from the event log alone (no I/O on
    the bucket): never materialized, a check not run, failed, unfinished or older than the
    proof."""
    reasons: list[str] = []
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        PROOF_CHECK_KEYS, partition_filter=PartitionKeyFilter(key=segment_id)
    )
    materializations = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=PROVIDER_PROOF, asset_partitions=[segment_id]), limit=1
    ).records
    proven_at = materializations[0].timestamp if materializations else None
    if proven_at is None:
        reasons.append("provider proof has never been materialized")
    for key in PROOF_CHECK_KEYS:
        execution = latest.get(key)
        if execution is None:
            reasons.append(f"{key.name}: has not run")
        elif execution.status == AssetCheckExecutionRecordStatus.FAILED:
            reasons.append(f"{key.name}: failed")
        elif execution.status != AssetCheckExecutionRecordStatus.SUCCEEDED:
            reasons.append(f"{key.name}: did not complete (run {execution.run_id[:8]})")
        elif proven_at is not None and _evaluated_at(execution) < proven_at:
            reasons.append(f"{key.name}: older than the latest proof; re-run the checks")
    return reasons


def mark_stale(
    store: ObjectStoreResource, alerts: AlertsResource, record: ProofRecord, finding: rules.Finding
) -> ProofRecord:
    """Record that a proven object changed after its proof, and alert. Idempotent."""
    if record.status == rules.STALE:
        return record
    stale = record.as_stale(finding.description)
    write_proof(store, stale)
    alerts.send(
        Alert(
            "proof_stale",
            f"segment {record.segment_id}: proven bytes changed after the proof",
            {
                "segment_id": record.segment_id,
                "media_session_id": record.media_session_id,
                "check": rules.UNCHANGED,
                "reason": finding.description,
                "expected": json.dumps(finding.expected, default=str)[:1000],
                "actual": json.dumps(finding.actual, default=str)[:1000],
            },
        )
    )
    return stale


def confirm_unchanged(
    store: ObjectStoreResource, alerts: AlertsResource, record: ProofRecord
) -> rules.Finding:
    """HEAD every proven object; a replacement or deletion marks the proof stale."""
    pins = record.pins()
    finding = rules.check_unchanged(pins, current_objects(store.client(), store.bucket_name, pins))
    if not finding.passed:
        mark_stale(store, alerts, record, finding)
    return finding


def proof_gate(
    instance: DagsterInstance, store: ObjectStoreResource, alerts: AlertsResource, segment_id: str
) -> ProofGate:
    reasons = check_reasons(instance, segment_id)
    record = load_proof(store, segment_id)
    if record is None:
        reasons.append("no proof record in the catalog")
    elif record.status != rules.VERIFIED:
        reasons.append(f"recorded proof is {record.status}")
    elif not (unchanged := confirm_unchanged(store, alerts, record)).passed:
        reasons.append(f"{rules.UNCHANGED}: {unchanged.description}")
    return ProofGate(segment_id, not reasons, tuple(reasons), record)


def require_proven(
    instance: DagsterInstance, store: ObjectStoreResource, alerts: AlertsResource, segment_id: str
) -> ProofRecord:
    """The proof record, or a Failure (no retries) unless the segment's provider proof is
    verified, current, and its objects are still the ones proven."""
    gate = proof_gate(instance, store, alerts, segment_id)
    if not gate.passed or gate.record is None:
        raise Failure(
            description=f"segment {segment_id} is not proven; refusing to continue: "
            + "; ".join(gate.reasons),
            metadata={"reasons": MetadataValue.json(list(gate.reasons))},
            allow_retries=False,
        )
    return gate.record
