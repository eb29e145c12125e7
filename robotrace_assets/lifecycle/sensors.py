"""The partition archival sensor: the thin Dagster layer over lifecycle/sweep.py.

Each tick walks the next slice of active segment and media-session partitions, applies the
closure rule (lifecycle/policy.py) to the ones older than the archive age, writes an archive
record for each closed one and asks Dagster to delete those partitions. Catalog records and the
event-log history of a deleted partition stay; `robotrace segments reopen` brings one back.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from dagster import (
    DagsterInstance,
    DefaultSensorStatus,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from robotrace_assets.derivatives.profiles import CURRENT_PROFILE
from robotrace_assets.lifecycle.evaluate import evaluators, record_plan
from robotrace_assets.lifecycle.policy import cutoff
from robotrace_assets.lifecycle.settings import LifecycleResource
from robotrace_assets.lifecycle.sweep import SweepCursor, SweepPlan, plan_sweep
from robotrace_assets.partitions import media_session_partitions, segment_partitions
from robotrace_assets.resources import ObjectStoreResource

SENSOR_NAME = "partition_archival_sensor"


def archival_interval_s() -> int:
    """Seconds between ticks: hourly unless ROBOTRACE_ARCHIVE_INTERVAL_S says otherwise."""
    value = os.environ.get("ROBOTRACE_ARCHIVE_INTERVAL_S", "").strip()
    return max(30, int(value)) if value.isdigit() else 3600


def plan_now(
    instance: DagsterInstance,
    object_store: ObjectStoreResource,
    lifecycle: LifecycleResource,
    cursor: SweepCursor,
    now: datetime,
    limit: int | None = None,
) -> SweepPlan:
    """The sweep the policy makes at `now`, reading the catalog (also the CLI's dry run)."""
    before = cutoff(now, lifecycle.archive_after_days)
    segments_of, members_of = evaluators(
        object_store, before, CURRENT_PROFILE.fingerprint(), object_store.known_tenants
    )
    return plan_sweep(
        instance,
        cursor,
        before,
        limit or lifecycle.max_per_tick,
        segments_of,
        members_of,
    )


@sensor(
    name=SENSOR_NAME,
    minimum_interval_seconds=archival_interval_s(),
    default_status=DefaultSensorStatus.RUNNING,
    description="Hourly: archives closed segment and media-session partitions older than "
    "ROBOTRACE_ARCHIVE_AFTER_DAYS (proof final, derivatives current, review final; a session "
    "once none of its segments is active). Writes an archive record per partition under "
    "robotics/catalog/lifecycle/ and deletes the dynamic partition; records and event-log "
    "history stay. Bounded work per tick, resumed from a cursor. "
    "`robotrace segments reopen ID` brings one back.",
)
def partition_archival_sensor(
    context: SensorEvaluationContext,
    object_store: ObjectStoreResource,
    lifecycle: LifecycleResource,
) -> SensorResult:
    now = datetime.now(UTC)
    plan = plan_now(
        context.instance, object_store, lifecycle, SweepCursor.from_json(context.cursor), now
    )
    # Records first: a partition is deleted only once its archive record exists.
    record_plan(object_store, plan, by=SENSOR_NAME, at=now)
    context.log.info(plan.summary())
    segments = [c.entity_id for c in plan.segments_to_archive]
    sessions = [c.entity_id for c in plan.sessions_to_archive]
    requests = []
    if segments:
        requests.append(segment_partitions.build_delete_request(segments))
    if sessions:
        requests.append(media_session_partitions.build_delete_request(sessions))
    return SensorResult(
        skip_reason=None if requests else SkipReason(plan.summary()),
        dynamic_partitions_requests=requests,
        cursor=plan.cursor.to_json(),
    )
