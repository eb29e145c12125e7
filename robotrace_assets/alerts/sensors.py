"""Alert sensors: failed provider-proof checks (blocking or not, green run or not) and crashes.

A failed non-blocking check leaves its run green, so a run-failure sensor alone would miss it;
this sensor walks asset-check evaluation events with a cursor instead.
"""

from dagster import (
    DagsterEventType,
    DefaultSensorStatus,
    EventRecordsFilter,
    RunFailureSensorContext,
    SensorEvaluationContext,
    SkipReason,
    run_failure_sensor,
    sensor,
)

from robotrace_assets.alerts.notify import Alert, send
from robotrace_assets.proof.assets import PROVIDER_PROOF
from robotrace_assets.settings import sensor_interval_s

BATCH = 500


@sensor(
    name="proof_check_alert_sensor",
    minimum_interval_seconds=sensor_interval_s(),
    default_status=DefaultSensorStatus.RUNNING,
    description="Alerts on every failed provider-proof check evaluation (log, data/alerts.jsonl, "
    "webhook and Slack when configured).",
)
def proof_check_alert_sensor(context: SensorEvaluationContext) -> SkipReason | None:
    after = int(context.cursor) if context.cursor else None
    records = context.instance.get_event_records(
        EventRecordsFilter(event_type=DagsterEventType.ASSET_CHECK_EVALUATION, after_cursor=after),
        limit=BATCH,
        ascending=True,
    )
    if not records:
        return SkipReason("no new check evaluations")
    alerts = 0
    for record in records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        if evaluation.asset_key != PROVIDER_PROOF or evaluation.passed:
            continue
        metadata = {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()}
        send(
            Alert(
                kind="proof_check_failed",
                title=f"provider proof check {evaluation.check_name} failed for segment "
                f"{evaluation.partition}",
                details={
                    "segment_id": evaluation.partition,
                    "check": evaluation.check_name,
                    "run_id": record.run_id,
                    "blocking": bool(evaluation.blocking),
                    **metadata,
                },
            )
        )
        alerts += 1
    context.update_cursor(str(records[-1].storage_id))
    context.log.info(f"{alerts} proof alerts from {len(records)} check evaluations")
    return None


@run_failure_sensor(
    name="run_failure_alert_sensor",
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=sensor_interval_s(),
    monitor_all_code_locations=False,
)
def run_failure_alert_sensor(context: RunFailureSensorContext) -> None:
    run = context.dagster_run
    send(
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
