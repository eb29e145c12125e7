"""Alert sensors: failed provider-proof checks (blocking or not, green run or not) and crashes.

A failed non-blocking check leaves its run green, so a run-failure sensor alone would miss it;
this sensor walks the execution history of each proof check with a cursor instead (per-check
history works on every event-log storage, including the run-sharded SQLite one of `dagster dev`).
"""

import json

from dagster import (
    DefaultSensorStatus,
    RunFailureSensorContext,
    SensorEvaluationContext,
    SkipReason,
    run_failure_sensor,
    sensor,
)

from robotrace_assets.alerts.notify import Alert
from robotrace_assets.dagster_compat import AssetCheckExecutionRecord
from robotrace_assets.proof.guard import PROOF_CHECK_KEYS
from robotrace_assets.proof.history import failed_since
from robotrace_assets.resources import AlertsResource
from robotrace_assets.settings import sensor_interval_s


@sensor(
    name="proof_check_alert_sensor",
    minimum_interval_seconds=sensor_interval_s(),
    default_status=DefaultSensorStatus.RUNNING,
    description="Alerts on every failed provider-proof check evaluation, blocking or not, in a "
    "green run or a red one (log, data/alerts.jsonl, webhook and Slack when configured).",
)
def proof_check_alert_sensor(
    context: SensorEvaluationContext, alerts: AlertsResource
) -> SkipReason | None:
    cursor: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
    failed = failed_since(context.instance, PROOF_CHECK_KEYS, cursor)
    sent = sum(_alert(alerts, row) for row in failed)
    context.update_cursor(json.dumps(cursor, sort_keys=True))
    if not sent:
        return SkipReason("no failed proof checks since the last tick")
    context.log.info(f"{sent} provider-proof alerts sent")
    return None


def _alert(alerts: AlertsResource, row: AssetCheckExecutionRecord) -> bool:
    evaluation = row.event.asset_check_evaluation if row.event is not None else None
    if evaluation is None:  # a FAILED row is written from its evaluation event: not expected
        return False
    metadata = {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()}
    alerts.send(
        Alert(
            kind="proof_check_failed",
            title=f"provider proof check {evaluation.check_name} failed for segment "
            f"{evaluation.partition}",
            details={
                "segment_id": evaluation.partition,
                "check": evaluation.check_name,
                "run_id": row.run_id,
                "blocking": bool(evaluation.blocking),
                **metadata,
            },
        )
    )
    return True


@run_failure_sensor(
    name="run_failure_alert_sensor",
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=sensor_interval_s(),
    monitor_all_code_locations=False,
    description="Alerts when a run of this code location fails or crashes (log, "
    "data/alerts.jsonl, webhook and Slack when configured): run id, job, partition and "
    "the start of the error.",
)
def run_failure_alert_sensor(context: RunFailureSensorContext, alerts: AlertsResource) -> None:
    run = context.dagster_run
    alerts.send(
        Alert(
            kind="run_failed",
            title=f"run {run.run_id[:8]} ({run.job_name}) failed",
            details={
                "run_id": run.run_id,
                "job": run.job_name,
                "partition": run.tags.get("dagster/partition"),
                "error": (context.failure_event.message or "")[:500],
            },
        )
    )
