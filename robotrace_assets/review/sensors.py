"""Review sensors: reviewer decisions from the bucket, and the review-set rollup."""

from botocore.exceptions import ClientError
from dagster import (
    AssetRecordsFilter,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from robotrace_assets import layout
from robotrace_assets.alerts.notify import Alert
from robotrace_assets.intake.discovery import Discovery, IntakeCursor, poll_new_keys
from robotrace_assets.resources import AlertsResource, ObjectStoreResource
from robotrace_assets.review.assets import CLIP_REVIEW, REGRESSION_BANK, REVIEW_COMPLETE
from robotrace_assets.review.decisions import DecisionError
from robotrace_assets.review.filing import file_decision
from robotrace_assets.review.jobs import clip_review_job, review_sets_job
from robotrace_assets.settings import sensor_interval_s


@sensor(
    name="review_decision_sensor",
    minimum_interval_seconds=sensor_interval_s(),
    default_status=DefaultSensorStatus.RUNNING,
    job=clip_review_job,
    description="Picks up reviewer decisions written to robotics/decisions/ (by `robotrace "
    "review` or any tool), validates them, files them under their segment (append-only) and "
    "re-reviews that segment. An invalid decision is refused and alerted, never applied.",
)
def review_decision_sensor(
    context: SensorEvaluationContext, object_store: ObjectStoreResource, alerts: AlertsResource
) -> SensorResult:
    client, bucket = object_store.client(), object_store.bucket_name
    cursor = IntakeCursor.from_json(context.cursor)
    found = Discovery(cursor=IntakeCursor(cursor.after, list(cursor.recent)))
    runs: dict[str, RunRequest] = {}
    refused = 0
    for key in poll_new_keys(client, bucket, cursor, found, prefix=layout.DECISIONS):
        try:
            decision = file_decision(
                client, bucket, client.get_object(Bucket=bucket, Key=key)["Body"].read()
            )
        except (DecisionError, ClientError) as error:
            refused += 1
            alerts.send(
                Alert(
                    "decision_refused",
                    "review decision refused",
                    {"object_key": key, "reason": str(error)[:500]},
                )
            )
            continue
        segment_id = decision.segment_id or ""
        runs[segment_id] = RunRequest(
            run_key=f"review:{segment_id}:{decision.decision_id}",
            partition_key=segment_id,
            asset_selection=[CLIP_REVIEW],
            tags={"robotrace/segment": segment_id},
        )
    return SensorResult(
        run_requests=list(runs.values()),
        cursor=found.cursor.to_json(),
        skip_reason=None if runs else SkipReason(f"no new decisions ({refused} refused)"),
    )


@sensor(
    name="review_sets_sensor",
    minimum_interval_seconds=sensor_interval_s(),
    default_status=DefaultSensorStatus.RUNNING,
    job=review_sets_job,
    description="Rebuilds the review-complete set and the regression bank after segment reviews.",
)
def review_sets_sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
    result = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=CLIP_REVIEW),
        limit=1000,
        cursor=context.cursor,
        ascending=True,
    )
    if not result.records:
        return SkipReason("no new clip reviews")
    newest = result.records[-1].storage_id
    return SensorResult(
        run_requests=[
            RunRequest(
                run_key=f"review_sets:{newest}", asset_selection=[REVIEW_COMPLETE, REGRESSION_BANK]
            )
        ],
        cursor=result.cursor,
    )
