"""The bucket sensor against the real store and a real Dagster instance."""

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dagster import build_sensor_context

from robotrace_assets import layout
from robotrace_assets.intake.discovery import LOOKBACK, Intake, IntakeCursor
from robotrace_assets.intake.sensors import capture_intake_sensor
from robotrace_assets.objectstore.multipart import (
    MIN_PART_SIZE,
    PresignedMultipartUploader,
    UploadInterrupted,
)
from robotrace_assets_tests.helpers import resources_for, simulate


def tick(instance, bucket: str, cursor: str | None):
    context = build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources=resources_for(bucket),
    )
    result = capture_intake_sensor(context)
    return result, context


def run_keys(result) -> list[str]:
    return sorted(r.run_key for r in getattr(result, "run_requests", None) or [])


def test_new_objects_are_discovered_once(s3, bucket, instance) -> None:
    sessions = simulate(s3, bucket, sessions=2, segments=2)
    result, _ = tick(instance, bucket, None)
    keys = run_keys(result)
    assert len([k for k in keys if k.startswith("session:")]) == 2
    added = {
        r.partitions_def_name: set(r.partition_keys) for r in result.dynamic_partitions_requests
    }
    assert added["media_session"] == {s.media_session_id for s in sessions}
    assert added["segment"] == {g.segment_id for s in sessions for g in s.segments}
    # Four new segments at once: one ranged run over all four, in the order they were added.
    (segment_run,) = [r for r in result.run_requests if r.run_key.startswith("segments:")]
    first, *_, last = sorted(added["segment"])
    assert segment_run.tags["dagster/asset_partition_range_start"] == first
    assert segment_run.tags["dagster/asset_partition_range_end"] == last
    assert segment_run.tags["robotrace/io"] == "heavy"
    # Named jobs, so the UI says what a run is (not Dagster's hidden asset job).
    assert segment_run.job_name == "segment_pipeline_job"
    assert {r.job_name for r in result.run_requests if r.run_key.startswith("session:")} == {
        "media_session_job"
    }
    assert {k.to_user_string() for k in segment_run.asset_selection} == {
        "segments/segment",
        "segments/segment_parts",
        "proof/provider_proof",
        "derivatives/proxy",
        "derivatives/thumbnails",
        "derivatives/contact_sheet",
        "derivatives/labels",
        "derivatives/transcript",
        "derivatives/depth",
        "segments/media_probe",
        "clips/clip",
        "review/clip_review",
        "payouts/segment_payout",
    }
    # The next tick, with the cursor the daemon stored, finds nothing new.
    again, _ = tick(instance, bucket, result.cursor)
    assert run_keys(again) == []


def test_restart_without_cursor_repeats_the_same_run_keys(s3, bucket, instance) -> None:
    """A daemon that lost its cursor re-lists, but every run key is the same, so Dagster's run
    key de-duplication launches nothing twice."""
    simulate(s3, bucket, segments=2)
    first, _ = tick(instance, bucket, None)
    second, _ = tick(instance, bucket, None)
    assert run_keys(first) == run_keys(second) != []


def test_relisted_entry_inside_the_lookback_is_not_handled_twice(s3, bucket, instance) -> None:
    simulate(s3, bucket)
    first, _ = tick(instance, bucket, None)
    cursor = IntakeCursor.from_json(first.cursor)
    assert cursor.recent  # remembered, because the next listing starts LOOKBACK earlier
    found = Intake(s3, bucket).discover(cursor)
    assert found.keys_listed == len(cursor.recent)  # re-listed ...
    assert found.segments == [] and found.sessions == []  # ... but not handled again


def test_new_entries_after_the_cursor_cost_only_themselves(s3, bucket) -> None:
    now = datetime.now(UTC)
    for i in range(50):  # old entries, written long before the cursor
        key = layout.inbox_key("segment", f"seg_old{i}", now - timedelta(hours=2, seconds=i))
        s3.put_object(Bucket=bucket, Key=key, Body=b"{}")
    intake = Intake(s3, bucket)
    cursor = intake.discover(IntakeCursor()).cursor
    for i in range(3):
        key = layout.inbox_key("segment", f"seg_new{i}", now + timedelta(seconds=i))
        s3.put_object(Bucket=bucket, Key=key, Body=b"{}")
    found = intake.discover(cursor)
    assert found.keys_listed == 3
    assert found.list_requests == 1


def test_incomplete_upload_waits_and_is_picked_up_later(s3, bucket, instance, tmp_path) -> None:
    session = simulate(s3, bucket)[0]
    segment = session.segments[0]
    # Replace the finished object with an upload still in progress: 1 of 2 parts sent.
    s3.delete_object(Bucket=bucket, Key=segment.raw_key)
    big = tmp_path / "big.mp4"
    big.write_bytes(os.urandom(MIN_PART_SIZE + 100))
    uploader = PresignedMultipartUploader(s3, bucket, part_size=MIN_PART_SIZE)
    with pytest.raises(UploadInterrupted):
        uploader.upload(big, segment.raw_key, "video/mp4", stop_after_parts=1)
    first, _ = tick(instance, bucket, None)
    assert not [k for k in run_keys(first) if k.startswith("segment:")]
    assert segment.segment_id in json.loads(first.cursor)["pending"]
    still, _ = tick(instance, bucket, first.cursor)
    assert not [k for k in run_keys(still) if k.startswith("segment:")]
    uploader.upload(big, segment.raw_key, "video/mp4")  # the client resumes and completes
    done, _ = tick(instance, bucket, still.cursor)
    etag = _etag(s3, bucket, segment.raw_key)
    envelope_etag = _etag(s3, bucket, segment.envelope_key)
    assert [k for k in run_keys(done) if k.startswith("segment:")] == [
        f"segment:{segment.segment_id}:{etag}+{envelope_etag}"
    ]
    assert json.loads(done.cursor)["pending"] == {}


def _etag(s3, bucket: str, key: str) -> str:
    return s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')


def test_malformed_envelope_is_requested_so_its_partition_fails_clearly(
    s3, bucket, instance
) -> None:
    seg_id = "seg_01KT9WNH809PJX8W9XC34AE1HS"
    s3.put_object(Bucket=bucket, Key=layout.segment_envelope_key(seg_id), Body=b"{broken")
    s3.put_object(
        Bucket=bucket, Key=layout.inbox_key("segment", seg_id, datetime.now(UTC)), Body=b"{}"
    )
    result, _ = tick(instance, bucket, None)
    assert run_keys(result) == [f"segment:{seg_id}:envelope:invalid"]


def test_lookback_is_minutes_not_hours() -> None:
    assert timedelta(minutes=1) <= LOOKBACK <= timedelta(hours=1)


def test_unrelated_keys_under_the_inbox_are_ignored(s3, bucket) -> None:
    s3.put_object(Bucket=bucket, Key=f"{layout.INBOX}/README.txt", Body=b"hi")
    found = Intake(s3, bucket).discover(IntakeCursor())
    assert found.ignored == [f"{layout.INBOX}/README.txt"]
    assert Path(found.ignored[0]).name == "README.txt"


def test_a_tick_out_of_time_leaves_the_rest_for_the_next_one(s3, bucket) -> None:
    """The time budget bounds a tick under a burst; what it leaves is handled next tick, once."""
    simulate(s3, bucket, segments=3)
    intake = Intake(s3, bucket)
    starved = intake.discover(IntakeCursor(), budget=timedelta(0))
    assert starved.segments == [] and starved.sessions == [] and starved.deferred == 4
    found = intake.discover(starved.cursor)
    assert len(found.segments) == 3 and len(found.sessions) == 1 and found.deferred == 0
    again = intake.discover(found.cursor)
    assert again.segments == [] and again.sessions == []


def test_a_burst_past_the_tick_limit_drains_without_waiting_for_the_lookback(s3, bucket) -> None:
    """More new entries than one tick takes: the next tick takes the rest at once. Entries it
    already handled, which the lookback lists again, do not count against its limit."""
    now = datetime.now(UTC)
    ids = [f"seg_{i:026d}" for i in range(7)]
    for i, segment_id in enumerate(ids):
        key = layout.inbox_key("segment", segment_id, now + timedelta(milliseconds=i))
        s3.put_object(Bucket=bucket, Key=key, Body=b"{}")
    intake = Intake(s3, bucket)
    seen: list[str] = []
    cursor = IntakeCursor()
    for _ in range(3):
        found = intake.discover(cursor, limit=3, now=now)
        seen += [s.segment_id for s in found.segments]
        cursor = found.cursor
    assert seen == ids  # 3 + 3 + 1, each once, in order
    assert intake.discover(cursor, limit=3, now=now).segments == []
