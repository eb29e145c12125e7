"""Review derivatives through Dagster, against the real store and ffmpeg."""

import hashlib
import io
import json
import os

import pyarrow as pa
import webvtt
from dagster import (
    AssetMaterialization,
    DagsterInstance,
    RunRequest,
    build_sensor_context,
)

# The sensor daemon's own step that turns a sensor's backfill request into a backfill: calling
# it (instead of running the whole daemon) keeps the test off the clock.
from dagster._core.utils import make_new_backfill_id
from dagster._daemon.sensor import _submit_backfill_request

from robotrace_assets import catalog, layout
from robotrace_assets.definitions import defs
from robotrace_assets.derivatives.assets import (
    CONTACT_SHEET,
    DERIVATIVE_KEYS,
    LABELS,
    MEDIA_PROBE,
    PROXY,
    THUMBNAILS,
    review_derivatives,
)
from robotrace_assets.derivatives.labels import read_label_track
from robotrace_assets.derivatives.profiles import CURRENT_PROFILE
from robotrace_assets.derivatives.sensors import (
    MISSING_TAG,
    OUTDATED_TAG,
    REFRESH_TAG,
    derivative_refresh_sensor,
)
from robotrace_assets.derivatives.staleness import select_stale
from robotrace_assets.proof.assets import PROVIDER_PROOF
from robotrace_assets.segments.assets import SEGMENT, SEGMENT_PARTS
from robotrace_assets_tests.helpers import (
    failure_messages,
    latest_metadata,
    materialized,
    resources_for,
    run_assets,
    simulate,
    store_for,
)

PROVE = [SEGMENT, SEGMENT_PARTS, PROVIDER_PROOF]
TINY = {"segments": 1, "seconds": 2.0, "fps": 10, "width": 64, "height": 48}
FULL = [*PROVE, PROXY]


def test_one_pass_derivatives_are_published_and_verified(s3, bucket, instance) -> None:
    segment = simulate(s3, bucket, "dropped_frames@0.0")[0].segments[0]
    result = run_assets(instance, bucket, FULL, segment.segment_id)
    assert result.success, failure_messages(result)
    for key in DERIVATIVE_KEYS:
        assert materialized(instance, key, segment.segment_id), key
    proxy = latest_metadata(instance, PROXY, segment.segment_id)
    assert proxy["profile_version"] == CURRENT_PROFILE.version
    assert proxy["source_sha256"] == segment.envelope["raw"]["sha256"]
    body = s3.get_object(Bucket=bucket, Key=proxy["object_key"])["Body"].read()
    assert hashlib.sha256(body).hexdigest() == proxy["sha256"]
    head = s3.head_object(Bucket=bucket, Key=proxy["object_key"])
    assert head["Metadata"]["robotrace-source-segment"] == segment.segment_id
    assert head["Metadata"]["robotrace-lifecycle"] == "regenerable"
    tags = s3.get_object_tagging(Bucket=bucket, Key=proxy["object_key"])["TagSet"]
    assert {"Key": "lifecycle", "Value": "regenerable"} in tags
    thumbs = latest_metadata(instance, THUMBNAILS, segment.segment_id)
    assert thumbs["count"] == CURRENT_PROFILE.thumbnails
    sheet = latest_metadata(instance, CONTACT_SHEET, segment.segment_id)
    assert sheet["preview"].startswith("![contact sheet](data:image/jpeg;base64,")
    probe = latest_metadata(instance, MEDIA_PROBE, segment.segment_id)
    assert probe["codec"] == "hevc" and probe["dropped_frames"] >= 3
    rows = store_for(bucket).read_record(catalog.DERIVATIVES, segment.segment_id) or []
    assert {r["kind"] for r in rows} == {
        "proxy",
        "thumbnail",
        "contact_sheet",
        "labels",
        "labels_vtt",
        "transcript",
        "transcript_vtt",
        "depth",  # the no-depth record: this capture declares no depth stream
    }
    assert all(r["source_key"] == segment.raw_key for r in rows)


def _label_track(s3, bucket, instance, segment_id: str) -> tuple[dict, pa.Table]:
    labels = latest_metadata(instance, LABELS, segment_id)
    body = s3.get_object(Bucket=bucket, Key=labels["object_key"])["Body"].read()
    assert hashlib.sha256(body).hexdigest() == labels["sha256"]
    return labels, read_label_track(body)


def test_label_track_is_published_proven_and_one_row_per_frame(s3, bucket, instance) -> None:
    segment = simulate(s3, bucket, **TINY)[0].segments[0]
    result = run_assets(instance, bucket, FULL, segment.segment_id)
    assert result.success, failure_messages(result)
    labels, table = _label_track(s3, bucket, instance, segment.segment_id)
    probe = latest_metadata(instance, MEDIA_PROBE, segment.segment_id)
    assert table.num_rows == probe["frames"] == labels["frames"] == segment.video.frames
    assert labels["profile_version"] == CURRENT_PROFILE.version
    assert labels["source_sha256"] == segment.envelope["raw"]["sha256"]
    assert labels["task_source"] == "task_steps" and labels["motion_reason"] == ""
    assert {"idle", "moving"} <= set(table["motion_phase"].to_pylist())
    steps = [s["label"] for s in segment.envelope["task_steps"]]
    assert set(table["task_step"].to_pylist()) <= set(steps)
    head = s3.head_object(Bucket=bucket, Key=labels["object_key"])
    assert head["Metadata"]["robotrace-source-segment"] == segment.segment_id
    assert head["Metadata"]["robotrace-lifecycle"] == "regenerable"
    vtt = s3.get_object(Bucket=bucket, Key=labels["webvtt_key"])
    assert vtt["ContentType"] == "text/vtt"
    text = vtt["Body"].read()
    assert hashlib.sha256(text).hexdigest() == labels["webvtt_sha256"]
    cues = webvtt.from_buffer(io.StringIO(text.decode()))
    assert len(cues) >= 2 and cues[0].start == "00:00:00.000"


def test_unreadable_trajectory_still_gets_labels_with_unknown_phase(s3, bucket, instance) -> None:
    """A proven but unreadable robot log: the segment still gets its label track, every phase
    "unknown" and the reason recorded; nothing else about the segment fails."""
    segment = simulate(s3, bucket, **TINY)[0].segments[0]
    garbage = b"not a parquet file at all"
    s3.put_object(Bucket=bucket, Key=segment.sensors_key, Body=garbage)
    doc = json.loads(s3.get_object(Bucket=bucket, Key=segment.envelope_key)["Body"].read())
    doc["sensors"].update(sha256=hashlib.sha256(garbage).hexdigest(), size_bytes=len(garbage))
    s3.put_object(Bucket=bucket, Key=segment.envelope_key, Body=json.dumps(doc).encode())
    result = run_assets(instance, bucket, FULL, segment.segment_id)
    assert result.success, failure_messages(result)
    labels, table = _label_track(s3, bucket, instance, segment.segment_id)
    assert set(table["motion_phase"].to_pylist()) == {"unknown"}
    assert "unreadable" in labels["motion_reason"]
    assert table.num_rows == segment.video.frames


def test_undecodable_but_proven_segment_fails_and_uploads_nothing(s3, bucket, instance) -> None:
    """A client that uploads garbage with a matching SHA-256 passes proof; derivatives must then
    fail that partition cleanly and leave no object behind."""
    segment = simulate(s3, bucket)[0].segments[0]
    garbage = os.urandom(segment.digest.size)
    s3.put_object(Bucket=bucket, Key=segment.raw_key, Body=garbage, ContentType="video/mp4")
    doc = json.loads(s3.get_object(Bucket=bucket, Key=segment.envelope_key)["Body"].read())
    doc["raw"]["sha256"] = hashlib.sha256(garbage).hexdigest()
    s3.put_object(Bucket=bucket, Key=segment.envelope_key, Body=json.dumps(doc).encode())
    result = run_assets(instance, bucket, FULL, segment.segment_id)
    assert materialized(instance, PROVIDER_PROOF, segment.segment_id)
    assert not result.success
    assert "ffmpeg" in failure_messages(result)
    assert not materialized(instance, PROXY, segment.segment_id)
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=f"{layout.DERIVATIVES}/")
    assert listing.get("KeyCount", 0) == 0


def test_guard_refuses_derivatives_of_an_unproven_segment(s3, bucket, instance) -> None:
    segment = simulate(s3, bucket)[0].segments[0]
    result = run_assets(instance, bucket, [PROXY], segment.segment_id, with_checks=False)
    assert "is not proven" in failure_messages(result)
    assert not materialized(instance, PROXY, segment.segment_id)


def test_multi_segment_run_records_good_segments_and_names_the_bad(s3, bucket, instance) -> None:
    segments = simulate(s3, bucket, segments=3)[0].segments
    # Dynamic partitions keep insertion order, which is what a partition range spans.
    instance.add_dynamic_partitions("segment", [s.segment_id for s in segments])
    for segment in (segments[0], segments[2]):
        assert run_assets(instance, bucket, PROVE, segment.segment_id).success
    job = defs.resolve_job_def("review_derivatives_job")
    result = job.execute_in_process(
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": segments[0].segment_id,
            "dagster/asset_partition_range_end": segments[2].segment_id,
        },
        resources=resources_for(bucket),
        raise_on_error=False,
    )
    assert not result.success
    assert f"{segments[1].segment_id}: segment {segments[1].segment_id} is not proven" in (
        failure_messages(result)
    )
    assert [materialized(instance, PROXY, s.segment_id) for s in segments] == [True, False, True]


def test_select_stale_picks_missing_and_outdated_proven_segments() -> None:
    stale = select_stale({"a", "b", "c"}, {"a": "f1", "b": "f0", "x": "f0"}, "f1")
    assert stale.missing == ["c"] and stale.outdated == ["b"]
    assert stale.targets == ["b", "c"]


def _submit_as_sensor_daemon(instance: DagsterInstance, request: RunRequest) -> None:
    assert request.requires_backfill_daemon()
    _submit_backfill_request(make_new_backfill_id(), request, instance)


def test_refresh_sensor_backfills_exactly_the_stale_segments(s3, bucket, instance) -> None:
    current, outdated, missing, unproven = simulate(s3, bucket, segments=4)[0].segments
    assert run_assets(instance, bucket, FULL, current.segment_id).success
    for segment in (outdated, missing):
        assert run_assets(instance, bucket, PROVE, segment.segment_id).success
    instance.add_dynamic_partitions("segment", [unproven.segment_id])
    # Derivatives made by an older profile, as recorded by an earlier deployment.
    instance.report_runless_asset_event(
        AssetMaterialization(
            asset_key=PROXY,
            partition=outdated.segment_id,
            metadata={"profile_fingerprint": "older-profile"},
        )
    )
    context = build_sensor_context(instance=instance, repository_def=defs.get_repository_def())
    # evaluate_tick validates the request against the sensor's asset selection, as the daemon does.
    (request,) = derivative_refresh_sensor.evaluate_tick(context).run_requests or []
    _submit_as_sensor_daemon(instance, request)
    (backfill,) = instance.get_backfills()
    # 1 segment without derivatives and 1 with an older profile
    assert (backfill.tags[MISSING_TAG], backfill.tags[OUTDATED_TAG]) == ("1", "1")
    assert backfill.tags[REFRESH_TAG] == CURRENT_PROFILE.version
    targeted = backfill.asset_backfill_data.target_subset.get_partitions_subset(
        PROXY
    ).get_partition_keys()
    assert sorted(targeted) == sorted([outdated.segment_id, missing.segment_id])
    assert set(backfill.asset_selection) == set(review_derivatives.keys)
    # While that backfill is pending, the sensor does not pile another one on top.
    again = derivative_refresh_sensor.evaluate_tick(context)
    assert not again.run_requests and "still running" in (again.skip_message or "")
