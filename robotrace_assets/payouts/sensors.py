"""Withhold unpaid payouts whose proof fails a recheck, and alert.

A recheck (provider_proof_recheck, or any run of the proof checks) that fails for a segment
withholds its payable or approved payout at once, without waiting for a re-materialization; a
segment already paid cannot be withheld, so that case is alerted for finance to follow up.
"""

import json

from dagster import DefaultSensorStatus, SensorEvaluationContext, SkipReason, sensor

from robotrace_assets.alerts.notify import Alert
from robotrace_assets.dagster_compat import AssetCheckExecutionRecord
from robotrace_assets.payouts.service import withhold_segment
from robotrace_assets.payouts.states import PAID
from robotrace_assets.proof.guard import PROOF_CHECK_KEYS
from robotrace_assets.proof.history import failed_since
from robotrace_assets.resources import AlertsResource, ObjectStoreResource
from robotrace_assets.settings import sensor_interval_s

ACTOR = "robotrace/payout_withhold_sensor"


@sensor(
    name="payout_withhold_sensor",
    minimum_interval_seconds=sensor_interval_s(),
    default_status=DefaultSensorStatus.RUNNING,
    description="Withholds the unpaid payout of a segment whose provider-proof check fails "
    "(a recheck after approval), and alerts; a paid segment's failure is alerted only.",
)
def payout_withhold_sensor(
    context: SensorEvaluationContext, object_store: ObjectStoreResource, alerts: AlertsResource
) -> SkipReason | None:
    cursor: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
    failed = failed_since(context.instance, PROOF_CHECK_KEYS, cursor)
    acted = sum(_withhold(object_store, alerts, row) for row in failed)
    context.update_cursor(json.dumps(cursor, sort_keys=True))
    return None if acted else SkipReason("no payout to withhold")


def _withhold(
    store: ObjectStoreResource, alerts: AlertsResource, row: AssetCheckExecutionRecord
) -> bool:
    evaluation = row.event.asset_check_evaluation if row.event is not None else None
    segment_id = evaluation.partition if evaluation is not None else None
    if evaluation is None or not segment_id:
        return False
    check = evaluation.check_name
    why = f"provider proof check {check} failed (run {row.run_id[:8]})"
    state, event = withhold_segment(store, segment_id, why, ACTOR)
    if event is None and state.state != PAID:
        return False
    kind = "payout_withheld" if event is not None else "paid_segment_proof_failed"
    details = {"segment_id": segment_id, "check": check, "run_id": row.run_id}
    details |= {"state": state.state, "amount": str(state.amount), "currency": state.currency}
    alerts.send(Alert(kind, f"segment {segment_id}: {kind.replace('_', ' ')}", details))
    return True
