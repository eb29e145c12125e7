"""Review sensors: reviewer decisions from the bucket, and the review sets by capture day."""

import hashlib
import json

from botocore.exceptions import ClientError
from dagster import (
    AssetRecordsFilter,
    DefaultSensorStatus,
    RunConfig,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from robotrace_assets import layout
from robotrace_assets.alerts.notify import Alert
from robotrace_assets.intake.discovery import Discovery, IntakeCursor, poll_new_keys
from robotrace_assets.lifecycle.archive import record_reopened
from robotrace_assets.pacing import runs_in_flight
from robotrace_assets.partitions import (
    REVIEW_DAYS_START,
    review_day_partitions,
    segment_partitions,
)
from robotrace_assets.resources import AlertsResource, ObjectStoreResource
from robotrace_assets.review.assets import CLIP_REVIEW
from robotrace_assets.review.decisions import DecisionError
from robotrace_assets.review.filing import file_decision
from robotrace_assets.review.jobs import clip_review_job, review_sets_job
from robotrace_assets.review.sets import MAX_SEGMENTS_PER_RUN, OP_NAME, ReviewSetsConfig
from robotrace_assets.review.shards import group_by_day
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
    # A decision on an archived segment reopens it: its partition comes back in this same
    # result (adding an active one changes nothing), and the reopen is recorded.
    segment_ids = sorted(runs)
    reopened = record_reopened(
        object_store, segment_ids, by="review_decision_sensor", reason="a new review decision"
    )
    if reopened:
        context.log.info(f"reopened {len(reopened)} archived segments for new decisions")
    return SensorResult(
        run_requests=list(runs.values()),
        dynamic_partitions_requests=[segment_partitions.build_add_request(segment_ids)]
        if segment_ids
        else [],
        cursor=found.cursor.to_json(),
        skip_reason=None if runs else SkipReason(f"no new decisions ({refused} refused)"),
    )


REVIEW_DAY_TAG = "robotrace/review_day"
REVIEWS_PER_TICK = 1000  # clip-review materializations read per tick (the rest: next tick)


def _sets_cursor(text: str | None) -> tuple[str | None, list[str]]:
    """(Dagster's event cursor, segments waiting for their day). An older cursor was the bare
    event cursor string."""
    if not text:
        return None, []
    try:
        doc = json.loads(text)
    except ValueError:
        return text, []
    if not isinstance(doc, dict):
        return text, []
    return doc.get("events"), list(doc.get("waiting") or [])


REVIEW_SETS_SENSOR = "review_sets_sensor"


@sensor(
    name=REVIEW_SETS_SENSOR,
    minimum_interval_seconds=sensor_interval_s(),
    default_status=DefaultSensorStatus.RUNNING,
    job=review_sets_job,
    description="After segment reviews, updates the review-complete set and the regression "
    "bank of each capture day touched: one run per day (several for a busy day), naming the "
    "segments whose review changed, so a run rewrites only their shards. Waits while its "
    "previous runs are in flight.",
)
def review_sets_sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
    if in_flight := runs_in_flight(context.instance, REVIEW_SETS_SENSOR):
        return SkipReason(f"{in_flight} review-set runs still in flight; new reviews wait")
    events, waiting = _sets_cursor(context.cursor)
    result = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=CLIP_REVIEW),
        limit=REVIEWS_PER_TICK,
        cursor=events,
        ascending=True,
    )
    if not result.records and not waiting:
        return SkipReason("no new clip reviews")
    changed = [r.partition_key for r in result.records if r.partition_key] + waiting
    last_day = review_day_partitions.get_last_partition_key() or REVIEW_DAYS_START
    days, waiting = group_by_day(changed, REVIEW_DAYS_START, last_day)
    if waiting:
        context.log.warning(f"{len(waiting)} segments minted after {last_day} wait for their day")
    newest = result.records[-1].storage_id if result.records else 0
    runs = [
        _day_run(day, segments[start : start + MAX_SEGMENTS_PER_RUN], newest)
        for day, segments in days.items()
        for start in range(0, len(segments), MAX_SEGMENTS_PER_RUN)
    ]
    cursor = json.dumps({"events": result.cursor if result.records else events, "waiting": waiting})
    return SensorResult(
        run_requests=runs,
        cursor=cursor,
        skip_reason=None if runs else SkipReason(f"{len(waiting)} segments wait for their day"),
    )


def _day_run(day: str, segments: list[str], newest: int) -> RunRequest:
    # The key names the segments too: waiting segments released on a tick without new
    # reviews must not collide with an earlier run's key.
    digest = hashlib.sha256(",".join(segments).encode()).hexdigest()[:12]
    return RunRequest(
        run_key=f"review_sets:{day}:{newest}:{digest}",
        partition_key=day,
        run_config=RunConfig(ops={OP_NAME: ReviewSetsConfig(segment_ids=segments)}),
        tags={REVIEW_DAY_TAG: day, "robotrace/segments": str(len(segments))},
    )
