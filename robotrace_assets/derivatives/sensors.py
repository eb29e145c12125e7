"""The derivative refresh: an hourly sensor that backfills proven segments whose derivatives are
missing or were made with another profile.

Each tick asks for one Dagster backfill (visible with its progress on the Backfills page); the
derivatives' BackfillPolicy packs many segments into each of its runs. A sensor, not a schedule:
the sensor daemon turns a run request for an asset graph subset into a backfill, the schedule
daemon does not. No second backfill while one is still running.
"""

from dagster import (
    AssetRecordsFilter,
    DagsterInstance,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    sensor,
)

from robotrace_assets.dagster_compat import (
    AssetCheckExecutionRecordStatus,
    BulkActionStatus,
    backfill_request,
)
from robotrace_assets.derivatives.assets import DERIVATIVE_KEYS, PROXY, review_derivatives
from robotrace_assets.derivatives.profiles import CURRENT_PROFILE
from robotrace_assets.derivatives.staleness import select_stale
from robotrace_assets.proof.guard import PROOF_CHECK_KEYS

REFRESH_TAG = "robotrace/derivative_refresh"
# The backfill carries its counts as tags: a sensor's backfill has no title or description.
MISSING_TAG = "robotrace/segments_missing_derivatives"
OUTDATED_TAG = "robotrace/segments_with_older_profile"
REFRESH_INTERVAL_S = 3600
PAGE = 1000

review_derivatives_job = define_asset_job(
    "review_derivatives_job",
    selection=list(DERIVATIVE_KEYS),
    description="Proxy, thumbnails, contact sheet and media probe of proven segments.",
)


def proven_segments(instance: DagsterInstance) -> set[str]:
    """Segments whose every proof check passed on their latest proof (one query per check)."""
    passed: dict[str, int] = {}
    for info in instance.event_log_storage.get_asset_check_partition_info(PROOF_CHECK_KEYS):
        if (
            info.partition_key is not None
            and info.latest_execution_status == AssetCheckExecutionRecordStatus.SUCCEEDED
            and info.is_current
        ):
            passed[info.partition_key] = passed.get(info.partition_key, 0) + 1
    return {segment for segment, count in passed.items() if count == len(PROOF_CHECK_KEYS)}


def derivative_profiles(instance: DagsterInstance) -> dict[str, str | None]:
    """The profile fingerprint of each segment's latest proxy (newest materializations first)."""
    made: dict[str, str | None] = {}
    cursor = None
    while True:
        result = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=PROXY), limit=PAGE, cursor=cursor
        )
        for record in result.records:
            segment = record.partition_key
            materialization = record.asset_materialization
            if segment is None or materialization is None or segment in made:
                continue
            value = materialization.metadata.get("profile_fingerprint")
            made[segment] = str(value.value) if value is not None else None
        if not result.has_more:
            return made
        cursor = result.cursor


def refresh_in_progress(instance: DagsterInstance) -> bool:
    backfills = instance.get_backfills(status=BulkActionStatus.REQUESTED, limit=50)
    return any(REFRESH_TAG in backfill.tags for backfill in backfills)


@sensor(
    name="derivative_refresh_sensor",
    asset_selection=list(DERIVATIVE_KEYS),
    minimum_interval_seconds=REFRESH_INTERVAL_S,
    default_status=DefaultSensorStatus.RUNNING,
    description="Hourly: launches one backfill of the derivatives (proxy, thumbnails, contact "
    "sheet, media probe) of every proven segment that has none or whose derivatives were made "
    "with another profile; skips while such a backfill is still running.",
)
def derivative_refresh_sensor(context: SensorEvaluationContext) -> RunRequest | SkipReason:
    instance = context.instance
    if refresh_in_progress(instance):
        return SkipReason("a derivative refresh backfill is still running")
    stale = select_stale(
        proven_segments(instance), derivative_profiles(instance), CURRENT_PROFILE.fingerprint()
    )
    if not stale.targets:
        return SkipReason("every proven segment has derivatives of the current profile")
    context.log.info(
        f"backfill for {len(stale.missing)} segments without derivatives and "
        f"{len(stale.outdated)} with an older profile"
    )
    return backfill_request(
        review_derivatives,
        stale.targets,
        tags={
            REFRESH_TAG: CURRENT_PROFILE.version,
            MISSING_TAG: str(len(stale.missing)),
            OUTDATED_TAG: str(len(stale.outdated)),
        },
    )
