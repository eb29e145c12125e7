"""The bucket sensor: registers session and segment partitions and requests their runs; and the
sensor that re-runs a failed batch one segment per run."""

from datetime import timedelta

from dagster import (
    DefaultSensorStatus,
    PartitionKeyRange,
    RunFailureSensorContext,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    partition_loading_context,
    run_failure_sensor,
    sensor,
)

from robotrace_assets.alerts.notify import Alert
from robotrace_assets.intake.batches import WILL_RETRY_TAG, plan_runs, range_of
from robotrace_assets.intake.discovery import (
    QUARANTINE,
    Discovery,
    Intake,
    IntakeCursor,
    SegmentReady,
)
from robotrace_assets.intake.jobs import SEGMENT_RUN_ASSETS, segment_pipeline_job
from robotrace_assets.partitions import media_session_partitions, segment_partitions
from robotrace_assets.resources import AlertsResource, ObjectStoreResource
from robotrace_assets.sessions.assets import MEDIA_SESSION
from robotrace_assets.sessions.jobs import media_session_job
from robotrace_assets.settings import intake_batch_size, sensor_interval_s


def report_unusable(
    context: SensorEvaluationContext, alerts: AlertsResource, found: Discovery
) -> None:
    """Quarantined inbox keys and uploads whose window closed: in the tick log and one alert."""
    for item in found.quarantined:
        context.log.warning(f"intake: quarantined inbox key {item.key!r}: {item.reason}")
    for segment_id in found.expired:
        context.log.warning(f"intake: {segment_id}: upload window closed, raw object missing")
    if found.quarantined:
        alerts.send(
            Alert(
                "inbox_entry_quarantined",
                f"{len(found.quarantined)} inbox entries cannot be used",
                {
                    "entries": [
                        {"key": q.key[:300], "reason": q.reason} for q in found.quarantined[:20]
                    ],
                    "records_under": QUARANTINE,
                },
            )
        )


def segment_run(segment: SegmentReady, run_key: str | None = None) -> RunRequest:
    """One segment's own run: its pipeline, its checks blocking its own steps."""
    return RunRequest(
        run_key=run_key or f"segment:{segment.segment_id}:{segment.version}",
        partition_key=segment.segment_id,
        job_name=segment_pipeline_job.name,
        asset_selection=SEGMENT_RUN_ASSETS,
        tags={"robotrace/segment": segment.segment_id, "robotrace/io": "heavy"},
    )


@sensor(
    name="capture_intake_sensor",
    minimum_interval_seconds=sensor_interval_s(),
    default_status=DefaultSensorStatus.RUNNING,
    jobs=[media_session_job, segment_pipeline_job],
    description="Lists new inbox entries in the capture bucket (StartAfter the cursor), "
    "registers media-session and segment partitions, and requests a run per new session "
    "envelope and per completed upload; under a burst, new segments share ranged runs of up "
    "to ROBOTRACE_INTAKE_BATCH_SIZE (25). Run keys carry the objects' ETags, so nothing runs "
    "twice.",
)
def capture_intake_sensor(
    context: SensorEvaluationContext, object_store: ObjectStoreResource, alerts: AlertsResource
) -> SensorResult:
    cursor = IntakeCursor.from_json(context.cursor)
    window = timedelta(seconds=object_store.upload_window_s)
    found = Intake(object_store.client(), object_store.bucket_name, window).discover(cursor)
    report_unusable(context, alerts, found)
    runs: dict[str, RunRequest] = {}
    for session in found.sessions:
        run_key = f"session:{session.media_session_id}:{session.envelope_etag}"
        runs[run_key] = RunRequest(
            run_key=run_key,
            partition_key=session.media_session_id,
            job_name=media_session_job.name,
            asset_selection=[MEDIA_SESSION],
            tags={"robotrace/media_session": session.media_session_id},
        )
    known = context.instance.has_dynamic_partition
    batches, alone = plan_runs(
        found.segments,
        lambda segment_id: not known(str(segment_partitions.name), segment_id),
        intake_batch_size(),
    )
    for segment in alone:
        run = segment_run(segment)
        runs[run.run_key or ""] = run
    for batch in batches:
        runs[batch.run_key] = RunRequest(
            run_key=batch.run_key,
            job_name=segment_pipeline_job.name,
            asset_selection=SEGMENT_RUN_ASSETS,
            tags={**batch.tags(), "robotrace/io": "heavy"},
        )
    session_ids = sorted({s.media_session_id for s in found.sessions})
    segment_ids = sorted({s.segment_id for s in found.segments})
    context.log.info(
        f"intake: {len(session_ids)} sessions, {len(segment_ids)} segments ready "
        f"({len(batches)} batched runs, {len(alone)} runs of one), "
        f"{len(found.waiting)} waiting for their upload, {len(found.expired)} past their upload "
        f"window, {len(found.quarantined)} inbox keys quarantined, {found.keys_listed} keys "
        f"listed in {found.list_requests} requests, {found.deferred} left for the next tick; "
        f"seconds: {found.seconds}"
    )
    return SensorResult(
        skip_reason=None
        if runs
        else SkipReason(f"nothing new; {len(found.waiting)} segments waiting for their upload"),
        run_requests=list(runs.values()),
        dynamic_partitions_requests=[
            request
            for request in (
                media_session_partitions.build_add_request(session_ids) if session_ids else None,
                segment_partitions.build_add_request(segment_ids) if segment_ids else None,
            )
            if request is not None
        ],
        cursor=found.cursor.to_json(),
    )


@run_failure_sensor(
    name="intake_batch_split_sensor",
    monitored_jobs=[segment_pipeline_job],
    request_job=segment_pipeline_job,
    minimum_interval_seconds=sensor_interval_s(),
    default_status=DefaultSensorStatus.RUNNING,
    description="When a batched intake run fails, re-runs its segments one per run, so that "
    "every segment meets its own verdict: a bad one fails alone, its run-mates finish.",
)
def intake_batch_split_sensor(context: RunFailureSensorContext):
    run = context.dagster_run
    bounds = range_of(dict(run.tags))
    if bounds is None:
        return SkipReason("not a batched run")
    if run.tags.get(WILL_RETRY_TAG) == "true":
        return SkipReason("Dagster retries this run first")
    with partition_loading_context(dynamic_partitions_store=context.instance):
        segment_ids = segment_partitions.get_partition_keys_in_range(PartitionKeyRange(*bounds))
    context.log.info(f"splitting failed batch {run.run_id}: {len(segment_ids)} segments")
    return [
        RunRequest(
            run_key=f"split:{run.run_id}:{segment_id}",
            partition_key=segment_id,
            asset_selection=SEGMENT_RUN_ASSETS,
            tags={
                "robotrace/segment": segment_id,
                "robotrace/io": "heavy",
                "robotrace/split_from": run.run_id,
            },
        )
        for segment_id in segment_ids
    ]
