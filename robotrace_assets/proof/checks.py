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

from robotrace_assets.partitions import segment_partitions
from robotrace_assets.proof import rules
from robotrace_assets.proof.assets import PROVIDER_PROOF
from robotrace_assets.proof.guard import mark_stale
from robotrace_assets.proof.observe import current_objects
from robotrace_assets.records.proofs import load_proof
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
    segment_id = context.partition_key
    selected = {key.name for key in context.selected_asset_check_keys}
    record = load_proof(object_store, segment_id)
    if record is None:
        for name in rules.CHECK_NAMES:
            if name in selected:
                yield _result(
                    rules.Finding(
                        name,
                        False,
                        "a proof record",
                        None,
                        "no provider proof recorded for this segment",
                    )
                )
        return
    expect = record.expectation()
    findings = {f.check: f for f in rules.evaluate(expect, record.observation()).findings}
    if rules.UNCHANGED in selected:
        if rules.key_is_safe(expect)[0]:
            pins = record.pins()
            now = current_objects(object_store.client(), object_store.bucket_name, pins)
            findings[rules.UNCHANGED] = rules.check_unchanged(pins, now)
            if not findings[rules.UNCHANGED].passed and record.status == rules.VERIFIED:
                mark_stale(object_store, alerts, record, findings[rules.UNCHANGED])
        else:
            findings[rules.UNCHANGED] = rules.Finding(
                rules.UNCHANGED,
                False,
                "an object inside the tenant prefix",
                expect.object_key,
                "not inspected: key is outside its tenant prefix",
            )
    for name in rules.CHECK_NAMES:
        if name in selected:
            yield _result(findings[name])


# Re-runs the checks alone (no re-read of the bytes): catches objects replaced or deleted after
# their proof. Launch it for chosen segments from the UI, or backfill it over all of them.
provider_proof_recheck_job = define_asset_job(
    "provider_proof_recheck",
    selection=AssetSelection.checks_for_assets(PROVIDER_PROOF),
    partitions_def=segment_partitions,
    description="Re-evaluate the provider-proof checks of segments without re-reading bytes.",
)
