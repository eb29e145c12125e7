"""Provider-proof asset checks: per segment partition, blocking, ERROR severity.

They re-evaluate the recorded proof with the rules in proof/rules.py and HEAD the object again,
so running them on their own (a schedule, or before a delivery) also catches an object replaced
after its proof.
"""

from collections.abc import Iterator

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetSelection,
    define_asset_job,
    multi_asset_check,
)

from robotrace_assets.batching import check_each
from robotrace_assets.partitions import segment_partitions
from robotrace_assets.proof import rules
from robotrace_assets.proof.assets import PROVIDER_PROOF
from robotrace_assets.proof.guard import mark_stale
from robotrace_assets.proof.observe import current_objects
from robotrace_assets.records.proofs import ProofRecord, load_proof
from robotrace_assets.resources import AlertsResource, ObjectStoreResource

PROOF_CHECK_SPECS = [
    AssetCheckSpec(
        name=name,
        asset=PROVIDER_PROOF,
        description=description,
        blocking=True,
        partitions_def=segment_partitions,
    )
    for name, description in rules.CHECK_DESCRIPTIONS.items()
]


def _result(finding: rules.Finding) -> AssetCheckResult:
    return AssetCheckResult(
        asset_key=PROVIDER_PROOF,
        check_name=finding.check,
        passed=finding.passed,
        severity=AssetCheckSeverity.ERROR,
        description=finding.description,
        metadata={**finding.metadata(), "description": finding.description},
    )


@multi_asset_check(specs=PROOF_CHECK_SPECS, can_subset=True, name="provider_proof_checks")
def provider_proof_checks(
    context: AssetCheckExecutionContext,
    object_store: ObjectStoreResource,
    alerts: AlertsResource,
) -> Iterator[AssetCheckResult]:
    selected = {key.name for key in context.selected_asset_check_keys}
    yield from check_each(
        context.op_execution_context,
        PROVIDER_PROOF,
        context.op_execution_context.partition_keys,
        lambda segment_id: check_segment(object_store, alerts, segment_id, selected),
    )


def check_segment(
    object_store: ObjectStoreResource, alerts: AlertsResource, segment_id: str, selected: set[str]
) -> list[AssetCheckResult]:
    """The selected proof checks of one segment, re-evaluated from its recorded proof."""
    record = load_proof(object_store, segment_id)
    if record is None:
        why = "no provider proof recorded for this segment"
        return [
            _result(rules.Finding(name, False, "a proof record", None, why))
            for name in rules.CHECK_NAMES
            if name in selected
        ]
    expect = record.expectation()
    findings = {f.check: f for f in rules.evaluate(expect, record.observation()).findings}
    if rules.UNCHANGED in selected:
        findings[rules.UNCHANGED] = _unchanged(object_store, alerts, record)
    return [_result(findings[name]) for name in rules.CHECK_NAMES if name in selected]


def _unchanged(
    object_store: ObjectStoreResource, alerts: AlertsResource, record: ProofRecord
) -> rules.Finding:
    """HEAD the proven objects again: a replacement since the proof marks it stale."""
    expect = record.expectation()
    if not rules.key_is_safe(expect)[0]:
        return rules.Finding(
            rules.UNCHANGED,
            False,
            "an object inside the tenant prefix",
            expect.object_key,
            "not inspected: key is outside its tenant prefix",
        )
    pins = record.pins()
    now = current_objects(object_store.client(), object_store.bucket_name, pins)
    finding = rules.check_unchanged(pins, now)
    if not finding.passed and record.status == rules.VERIFIED:
        mark_stale(object_store, alerts, record, finding)
    return finding


# Re-runs the checks alone (no re-read of the bytes): catches objects replaced or deleted after
# their proof. Launch it for chosen segments from the UI, or backfill it over all of them.
provider_proof_recheck_job = define_asset_job(
    "provider_proof_recheck",
    selection=AssetSelection.checks_for_assets(PROVIDER_PROOF),
    partitions_def=segment_partitions,
    description="Re-evaluate the provider-proof checks of segments without re-reading bytes.",
)
