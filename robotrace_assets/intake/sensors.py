"""The bucket sensor: registers session and segment partitions and requests their runs."""

from datetime import timedelta

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from robotrace_assets.alerts.notify import Alert
from robotrace_assets.intake.discovery import QUARANTINE, Discovery, Intake, IntakeCursor
from robotrace_assets.intake.jobs import SEGMENT_RUN_ASSETS, segment_pipeline_job
from robotrace_assets.partitions import media_session_partitions, segment_partitions
from robotrace_assets.resources import AlertsResource, ObjectStoreResource
from robotrace_assets.sessions.assets import MEDIA_SESSION
from robotrace_assets.sessions.jobs import media_session_job
from robotrace_assets.settings import sensor_interval_s


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


@sensor(
    name="capture_intake_sensor",
    minimum_interval_seconds=sensor_interval_s(),
    default_status=DefaultSensorStatus.RUNNING,
    jobs=[media_session_job, segment_pipeline_job],
    description="Lists new inbox entries in the capture bucket (StartAfter the cursor), "
    "registers media-session and segment partitions, and requests one run per new envelope "
    "or completed upload. Run keys carry the object's ETag, so nothing runs twice.",
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
    for segment in found.segments:
        run_key = f"segment:{segment.segment_id}:{segment.version}"
        runs[run_key] = RunRequest(
            run_key=run_key,
            partition_key=segment.segment_id,
            job_name=segment_pipeline_job.name,
            asset_selection=SEGMENT_RUN_ASSETS,
            tags={"robotrace/segment": segment.segment_id, "robotrace/io": "heavy"},
        )
    session_ids = sorted({s.media_session_id for s in found.sessions})
    segment_ids = sorted({s.segment_id for s in found.segments})
    context.log.info(
        f"intake: {len(session_ids)} sessions, {len(segment_ids)} segments ready, "
        f"{len(found.waiting)} waiting for their upload, {len(found.expired)} past their upload "
        f"window, {len(found.quarantined)} inbox keys quarantined, {found.keys_listed} keys "
        f"listed in {found.list_requests} requests"
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
