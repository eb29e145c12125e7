"""The review sets by capture day: an update rewrites only the changed segments' shards, a day
rebuild lists only that day's clip reviews, and the sensor asks for one run per touched day.
Synthetic clip-review records, the real store and a real Dagster instance."""

import json
import random
from datetime import UTC, datetime, timedelta

from dagster import (
    AssetMaterialization,
    DagsterRunStatus,
    RunConfig,
    build_sensor_context,
    materialize,
)

from robotrace_assets import catalog
from robotrace_assets.definitions import defs
from robotrace_assets.ids import id_day, new_id
from robotrace_assets.partitions import REVIEW_DAYS_START
from robotrace_assets.review.assets import CLIP_REVIEW, REGRESSION_BANK, REVIEW_COMPLETE
from robotrace_assets.review.sensors import review_sets_sensor
from robotrace_assets.review.sets import OP_NAME, ReviewSetsConfig, review_sets
from robotrace_assets.review.shards import day_prefix, read_days, reviewed_segments_of_day
from robotrace_assets_tests.helpers import store_for

DAY = datetime(2026, 6, 4, 9, 0, tzinfo=UTC)
RNG = random.Random(7)


def _segment(at: datetime) -> str:
    return new_id("seg", at, RNG)


def _review(store, segment_id: str, *statuses: str) -> None:
    rows = [
        {
            "clip_id": f"clip_{segment_id[4:]}"[:-1] + str(i),
            "segment_id": segment_id,
            "final_status": status,
            "reasons": ["jerk_spike: 40 m/s^3 (limit 25)"] if status == "rejected" else [],
        }
        for i, status in enumerate(statuses)
    ]
    store.write_record(catalog.CLIP_REVIEWS, segment_id, rows)


def _shards(s3, bucket: str, table: str, day: str) -> dict[str, tuple[str, datetime]]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=day_prefix(table, day)).get("Contents", [])
    return {item["Key"]: (item["ETag"], item["LastModified"]) for item in listed}


def _run(instance, store, day: str, segments: list[str] | None = None):
    config = RunConfig(ops={OP_NAME: ReviewSetsConfig(segment_ids=segments or [])})
    result = materialize(
        [review_sets],
        partition_key=day,
        instance=instance,
        resources={"object_store": store},
        run_config=config,
    )
    assert result.success
    by_key = {m.asset_key: m.metadata for m in result.asset_materializations_for_node(OP_NAME)}
    return {
        name: {k: getattr(v, "value", v) for k, v in by_key[key].items()}
        for name, key in (("complete", REVIEW_COMPLETE), ("bank", REGRESSION_BANK))
    }


def test_update_touches_only_changed_segments_and_moves_rejected_clips(
    s3, bucket, instance
) -> None:
    store = store_for(bucket)
    day = id_day(_segment(DAY))
    a, b, c = (_segment(DAY + timedelta(minutes=m)) for m in (1, 2, 3))
    later = _segment(DAY + timedelta(days=1))
    for segment in (a, b, c, later):
        _review(store, segment, "approved", "approved")
    first = _run(instance, store, day)  # no list: the whole day, and nothing of the next
    assert first["complete"]["mode"] == "rebuild" and first["complete"]["segments_touched"] == 3
    assert first["complete"]["clips_added"] == 6
    complete_before = _shards(s3, bucket, catalog.REVIEW_COMPLETE, day)
    assert len(complete_before) == 3
    assert not _shards(s3, bucket, catalog.REVIEW_COMPLETE, id_day(later))

    _review(store, b, "approved", "rejected")  # a reviewer rejects b's second clip
    second = _run(instance, store, day, [b])
    assert second["complete"]["mode"] == "segments"
    assert (second["complete"]["clips_added"], second["complete"]["clips_removed"]) == (0, 1)
    assert (second["bank"]["clips_added"], second["bank"]["shards_written"]) == (1, 1)
    assert second["bank"]["top_reasons"] == {"jerk_spike": 1}
    complete_after = _shards(s3, bucket, catalog.REVIEW_COMPLETE, day)
    for untouched in (a, c):  # same object, never rewritten: same ETag, same LastModified
        key = f"{day_prefix(catalog.REVIEW_COMPLETE, day)}{untouched}.parquet"
        assert complete_after[key] == complete_before[key]
    rows = {r["clip_id"]: r for r in read_days(store, catalog.REVIEW_COMPLETE, [day])}
    bank = read_days(store, catalog.REGRESSION_BANK, [day])
    assert [r["segment_id"] for r in bank] == [b] and bank[0]["clip_id"] not in rows
    assert len(rows) == 5

    _review(store, b, "rejected", "rejected")  # b has no approved clip left: its shard goes
    third = _run(instance, store, day, [b])
    assert third["complete"]["shards_deleted"] == 1
    assert len(_shards(s3, bucket, catalog.REVIEW_COMPLETE, day)) == 2
    again = _run(instance, store, day, [b])  # nothing changed: nothing written
    assert again["bank"]["shards_written"] == 0 and again["complete"]["shards_deleted"] == 0


def test_day_listing_is_one_key_range_and_old_ids_join_the_first_day(s3, bucket) -> None:
    store = store_for(bucket)
    before = _segment(DAY - timedelta(seconds=1) - timedelta(hours=9))  # 23:59:59 the day before
    inside = [_segment(DAY), _segment(DAY + timedelta(hours=14, minutes=59))]
    after = _segment(DAY + timedelta(hours=15))  # 00:00 the next day
    ancient = _segment(datetime(2023, 5, 1, tzinfo=UTC))
    for segment in (before, *inside, after, ancient):
        _review(store, segment, "approved")
    day = id_day(inside[0])
    assert reviewed_segments_of_day(s3, bucket, day, REVIEW_DAYS_START) == sorted(inside)
    first = reviewed_segments_of_day(s3, bucket, REVIEW_DAYS_START, REVIEW_DAYS_START)
    assert first == [ancient]


def test_sensor_requests_one_run_per_touched_day_with_the_changed_segments(instance) -> None:
    day_one = [_segment(DAY + timedelta(minutes=m)) for m in (1, 2)]
    day_two = _segment(DAY + timedelta(days=2))
    future = _segment(datetime.now(UTC) + timedelta(days=3))  # a capture clock far ahead
    for segment in (*day_one, day_two, future, day_one[0]):
        instance.add_dynamic_partitions("segment", [segment])
        instance.report_runless_asset_event(
            AssetMaterialization(asset_key=CLIP_REVIEW, partition=segment)
        )
    # evaluate_tick checks each request's day against the partitions, as the daemon does.
    repository = defs.get_repository_def()
    result = review_sets_sensor.evaluate_tick(
        build_sensor_context(instance=instance, repository_def=repository)
    )
    runs = {str(r.partition_key): r for r in result.run_requests or []}
    assert sorted(runs) == sorted({id_day(day_one[0]), id_day(day_two)})
    ops = runs[id_day(day_one[0])].run_config["ops"][OP_NAME]["config"]  # pyright: ignore
    assert ops["segment_ids"] == sorted(day_one)
    assert json.loads(result.cursor or "")["waiting"] == [future]  # no day partition yet
    again = review_sets_sensor.evaluate_tick(
        build_sensor_context(instance=instance, cursor=result.cursor, repository_def=repository)
    )
    assert not again.run_requests  # nothing new; the future segment still waits


def test_sensor_waits_for_its_runs_in_flight_then_covers_what_arrived(instance) -> None:
    """Under a burst a summary run per tick cost more than the segments: while a review-set
    run is queued or running the sensor launches nothing and keeps its cursor."""
    repository = defs.get_repository_def()
    first, second = _segment(DAY + timedelta(minutes=1)), _segment(DAY + timedelta(minutes=2))
    for segment in (first, second):
        instance.add_dynamic_partitions("segment", [segment])
    instance.report_runless_asset_event(
        AssetMaterialization(asset_key=CLIP_REVIEW, partition=first)
    )
    tick = review_sets_sensor.evaluate_tick(
        build_sensor_context(instance=instance, repository_def=repository)
    )
    assert len(tick.run_requests or []) == 1
    job = defs.resolve_job_def("review_sets_job")
    in_flight = instance.create_run_for_job(
        job, status=DagsterRunStatus.NOT_STARTED, tags={"dagster/sensor_name": "review_sets_sensor"}
    )
    instance.report_runless_asset_event(
        AssetMaterialization(asset_key=CLIP_REVIEW, partition=second)
    )
    waiting = review_sets_sensor.evaluate_tick(
        build_sensor_context(instance=instance, cursor=tick.cursor, repository_def=repository)
    )
    assert not waiting.run_requests and "in flight" in (waiting.skip_message or "")
    instance.report_run_canceled(in_flight)
    after = review_sets_sensor.evaluate_tick(
        build_sensor_context(instance=instance, cursor=tick.cursor, repository_def=repository)
    )
    (run,) = after.run_requests or []
    assert run.run_config["ops"][OP_NAME]["config"]["segment_ids"] == [second]  # pyright: ignore
