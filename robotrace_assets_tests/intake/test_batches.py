"""Batched intake: ranged runs of several segments, each segment with its own outcome.

The sensor's run requests are executed as the daemon would launch them (same job, same tags,
same asset selection) on a real instance and the real store; the split sensor is evaluated on the
failed batch run it watches.
"""

from dagster import (
    AssetKey,
    DagsterInstance,
    DagsterRunStatus,
    RunRequest,
    build_run_status_sensor_context,
    build_sensor_context,
)

from robotrace_assets.definitions import defs
from robotrace_assets.intake.batches import SegmentBatch, plan_runs
from robotrace_assets.intake.discovery import SegmentReady
from robotrace_assets.intake.jobs import SEGMENT_RUN_ASSETS
from robotrace_assets.intake.sensors import capture_intake_sensor, intake_batch_split_sensor
from robotrace_assets.proof.assets import PROVIDER_PROOF
from robotrace_assets.review.assets import CLIP_REVIEW
from robotrace_assets_tests.helpers import (
    check_outcomes,
    materialized,
    resources_for,
    simulate,
)


def ready(*ids: str) -> list[SegmentReady]:
    return [SegmentReady(i, "msess_x", f"etag-{i}") for i in ids]


def test_new_segments_are_batched_in_order_and_known_ones_run_alone() -> None:
    segments = ready("seg_05", "seg_01", "seg_03", "seg_02", "seg_04")
    batches, alone = plan_runs(segments, lambda s: s != "seg_03", batch_size=2)
    assert [[s.segment_id for s in b.segments] for b in batches] == [
        ["seg_01", "seg_02"],
        ["seg_04", "seg_05"],
    ]
    assert [s.segment_id for s in alone] == ["seg_03"]


def test_a_lone_segment_or_batching_off_gives_runs_of_one() -> None:
    assert plan_runs(ready("seg_01"), lambda s: True, batch_size=25) == ([], ready("seg_01"))
    batches, alone = plan_runs(ready("seg_01", "seg_02"), lambda s: True, batch_size=1)
    assert batches == [] and len(alone) == 2
    # A remainder of one after full batches runs as an ordinary one-segment run.
    batches, alone = plan_runs(ready("seg_01", "seg_02", "seg_03"), lambda s: True, 2)
    assert len(batches) == 1 and [s.segment_id for s in alone] == ["seg_03"]


def test_batch_run_key_names_the_versions() -> None:
    one = SegmentBatch(tuple(ready("seg_01", "seg_02")))
    other = SegmentBatch((ready("seg_01")[0], SegmentReady("seg_02", "msess_x", "etag-new")))
    assert one.run_key != other.run_key
    assert one.run_key == SegmentBatch(tuple(ready("seg_01", "seg_02"))).run_key


def launch(instance: DagsterInstance, bucket: str, request: RunRequest):
    """What the daemon does with a run request: the named job with its tags (its selection is
    the whole job, SEGMENT_RUN_ASSETS)."""
    assert list(request.asset_selection or []) == SEGMENT_RUN_ASSETS
    job = defs.resolve_job_def(request.job_name or "segment_pipeline_job")
    return job.execute_in_process(
        instance=instance,
        partition_key=request.partition_key,
        tags=dict(request.tags),
        resources=resources_for(bucket),
        raise_on_error=False,
    )


def intake_tick(instance: DagsterInstance, bucket: str) -> list[RunRequest]:
    context = build_sensor_context(instance=instance, resources=resources_for(bucket))
    result = capture_intake_sensor(context)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
    return [r for r in result.run_requests or [] if r.job_name == "segment_pipeline_job"]


def split_sensor(instance: DagsterInstance, failed):
    """The split sensor evaluated on a failed run, as the daemon evaluates it."""
    run = instance.get_run_by_id(failed.run_id)
    assert run is not None and run.status == DagsterRunStatus.FAILURE
    context = build_run_status_sensor_context(
        sensor_name="intake_batch_split_sensor",
        dagster_instance=instance,
        dagster_run=run,
        dagster_event=failed.get_run_failure_event(),
    ).for_run_failure()
    return intake_batch_split_sensor(context)


def metadata_of(instance: DagsterInstance, key: AssetKey, segment_id: str) -> dict:
    from dagster import AssetRecordsFilter

    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key, asset_partitions=[segment_id]), limit=1
    ).records
    event = records[0].asset_materialization
    assert event is not None
    return {k: v.value for k, v in event.metadata.items()}


def test_a_good_batch_runs_once_and_each_segment_keeps_its_own_record(s3, bucket, instance) -> None:
    segments = simulate(s3, bucket, segments=3)[0].segments
    ids = sorted(s.segment_id for s in segments)
    (request,) = intake_tick(instance, bucket)
    assert request.partition_key is None  # a range, not one partition
    result = launch(instance, bucket, request)
    assert result.success
    for segment in segments:
        sid = segment.segment_id
        assert all(materialized(instance, key, sid) for key in SEGMENT_RUN_ASSETS)
        # The proof metadata is the segment's own, not a run-mate's.
        proof = metadata_of(instance, PROVIDER_PROOF, sid)
        assert proof["byte_size"] == segment.envelope["raw"]["size_bytes"]
        assert proof["integrity_status"] == "verified"
        # One current check evaluation per segment, all passed.
        assert set(check_outcomes(instance, sid).values()) == {True}
    assert len({metadata_of(instance, PROVIDER_PROOF, i)["sha256"] for i in ids}) == 3


def test_a_bad_segment_fails_alone_and_its_run_mates_finish(s3, bucket, instance) -> None:
    segments = simulate(s3, bucket, "corrupt_after_upload@0.1", segments=3)[0].segments
    bad = segments[1].segment_id
    good = [s.segment_id for s in segments if s.segment_id != bad]
    (request,) = intake_tick(instance, bucket)
    batch = launch(instance, bucket, request)
    assert not batch.success
    # The bad segment's proof failed its checks and blocked it; its run-mates' derivatives were
    # recorded before the step failed naming the bad one.
    assert check_outcomes(instance, bad)["sha256_matches_envelope"] is False
    assert all(materialized(instance, AssetKey(["derivatives", "proxy"]), g) for g in good)
    assert not materialized(instance, AssetKey(["derivatives", "proxy"]), bad)

    splits = split_sensor(instance, batch)
    assert sorted(r.partition_key or "" for r in splits) == sorted(s.segment_id for s in segments)
    assert len({r.run_key for r in splits}) == 3

    outcomes = {r.partition_key: launch(instance, bucket, r).success for r in splits}
    assert outcomes == {bad: False, **dict.fromkeys(good, True)}
    assert all(materialized(instance, CLIP_REVIEW, g) for g in good)
    assert not materialized(instance, CLIP_REVIEW, bad)


def test_split_sensor_ignores_runs_of_one(s3, bucket, instance) -> None:
    simulate(s3, bucket, "corrupt_after_upload@0.0")
    (request,) = intake_tick(instance, bucket)
    assert request.partition_key is not None
    result = launch(instance, bucket, request)
    assert not result.success
    skipped = split_sensor(instance, result)
    assert not isinstance(skipped, list)
