"""The derivative refresh: an hourly schedule that backfills proven segments whose derivatives
are missing or were made with another profile.

It launches one Dagster backfill (visible with its progress on the Backfills page), and the
derivatives' BackfillPolicy packs many segments into each run. The schedule creates the backfill
itself, as the UI's "Launch backfill" does: the schedule daemon, unlike the sensor daemon, does
not turn a run request into a backfill.
"""

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from dagster import (
    AssetRecordsFilter,
    DagsterInstance,
    DefaultScheduleStatus,
    ScheduleEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
)
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.utils import make_new_backfill_id

from robotrace_assets.derivatives.assets import DERIVATIVE_KEYS, PROXY
from robotrace_assets.derivatives.profiles import CURRENT_PROFILE
from robotrace_assets.proof.guard import PROOF_CHECK_KEYS

REFRESH_TAG = "robotrace/derivative_refresh"
PAGE = 1000

review_derivatives_job = define_asset_job(
    "review_derivatives_job",
    selection=list(DERIVATIVE_KEYS),
    description="Proxy, thumbnails, contact sheet and media probe of proven segments.",
)


@dataclass(frozen=True)
class Staleness:
    missing: list[str]
    outdated: list[str]

    @property
    def targets(self) -> list[str]:
        return sorted(self.missing + self.outdated)


def select_stale(
    proven: Iterable[str], made_with: Mapping[str, str | None], fingerprint: str
) -> Staleness:
    """Proven segments with no derivatives, and those made with another profile."""
    proven = set(proven)
    missing = sorted(proven - made_with.keys())
    outdated = sorted(s for s in proven & made_with.keys() if made_with[s] != fingerprint)
    return Staleness(missing, outdated)


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
            materialization = record.asset_materialization
            if materialization is None or record.partition_key in made:
                continue
            value = materialization.metadata.get("profile_fingerprint")
            made[record.partition_key] = str(value.value) if value is not None else None
        if not result.has_more:
            return made
        cursor = result.cursor


def refresh_in_progress(instance: DagsterInstance) -> bool:
    backfills = instance.get_backfills(status=BulkActionStatus.REQUESTED, limit=50)
    return any(REFRESH_TAG in backfill.tags for backfill in backfills)


@schedule(
    name="derivative_refresh_schedule",
    cron_schedule="15 * * * *",
    target=review_derivatives_job,
    default_status=DefaultScheduleStatus.RUNNING,
    description="Hourly: backfill derivatives of proven segments that have none or were made "
    "with an older profile.",
)
def derivative_refresh_schedule(context: ScheduleEvaluationContext) -> SkipReason:
    instance = context.instance
    if refresh_in_progress(instance):
        return SkipReason("a derivative refresh backfill is still running")
    stale = select_stale(
        proven_segments(instance), derivative_profiles(instance), CURRENT_PROFILE.fingerprint()
    )
    if not stale.targets:
        return SkipReason("every proven segment has derivatives of the current profile")
    backfill_id = make_new_backfill_id()
    instance.add_backfill(
        PartitionBackfill.from_asset_partitions(
            backfill_id=backfill_id,
            asset_graph=context.repository_def.asset_graph,
            partition_names=stale.targets,
            asset_selection=list(DERIVATIVE_KEYS),
            backfill_timestamp=time.time(),
            tags={REFRESH_TAG: CURRENT_PROFILE.version},
            dynamic_partitions_store=instance,
            all_partitions=False,
            title=f"derivatives {CURRENT_PROFILE.version}",
            description=f"{len(stale.missing)} missing, {len(stale.outdated)} made with an "
            "older profile",
            run_config=None,
        )
    )
    context.log.info(f"backfill {backfill_id}: {len(stale.targets)} segments")
    return SkipReason(
        f"launched backfill {backfill_id} for {len(stale.missing)} segments without derivatives "
        f"and {len(stale.outdated)} with an older profile"
    )
