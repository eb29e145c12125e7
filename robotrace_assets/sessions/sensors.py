"""Refresh a media session's rollup whenever one of its segments gets a new provider proof.

A tick reads only the proof materializations after its cursor and looks up only the sessions
they name; the rollup run reads only that session's own segments' records."""

from dagster import (
    AssetRecordsFilter,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from robotrace_assets.pacing import runs_in_flight
from robotrace_assets.proof.assets import PROVIDER_PROOF
from robotrace_assets.sessions.assets import MEDIA_SESSION
from robotrace_assets.sessions.jobs import media_session_job
from robotrace_assets.settings import sensor_interval_s

ROLLUP_SENSOR = "media_session_rollup_sensor"


@sensor(
    name=ROLLUP_SENSOR,
    minimum_interval_seconds=sensor_interval_s(),
    default_status=DefaultSensorStatus.RUNNING,
    job=media_session_job,
    description="Re-materializes a media session after any of its segments is proven; waits "
    "while its previous rollup runs are in flight, then covers every proof since in one wave.",
)
def media_session_rollup_sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
    if waiting := runs_in_flight(context.instance, ROLLUP_SENSOR):
        return SkipReason(f"{waiting} rollup runs still in flight; new proofs wait for them")
    result = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=PROVIDER_PROOF),
        limit=500,
        cursor=context.cursor,
        ascending=True,
    )
    newest: dict[str, int] = {}
    for record in result.records:
        materialization = record.asset_materialization
        session = materialization.metadata.get("media_session_id") if materialization else None
        if session is not None:
            newest[str(session.value)] = record.storage_id
    if not result.records:
        return SkipReason("no new provider proofs")
    # One lookup per session named (not the list of every session): a tick costs what is new.
    instance = context.instance
    runs = [
        RunRequest(
            run_key=f"rollup:{session}:{storage_id}",
            partition_key=session,
            asset_selection=[MEDIA_SESSION],
        )
        for session, storage_id in sorted(newest.items())
        if instance.has_dynamic_partition("media_session", session)  # envelope may be unseen
    ]
    return SensorResult(run_requests=runs, cursor=result.cursor)
