"""The capture simulator against the real store: envelopes, declared digests, injected defects."""

import hashlib
import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from robotrace_assets.capture.simulator import Defect, SimulationError
from robotrace_assets.clips.timing import fit_clock_ms_ppm
from robotrace_assets.envelopes import MediaSessionEnvelope, SegmentEnvelope, validate
from robotrace_assets.media.probe import count_dropped_frames, probe_packet_times
from robotrace_assets_tests.helpers import simulate
from robotrace_assets_tests.helpers import trajectory_jerk_peak as jerk_peak


def _body(s3, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_clean_batch_matches_its_envelopes(s3, bucket: str) -> None:
    sessions = simulate(s3, bucket, sessions=2, segments=2)
    inbox = s3.list_objects_v2(Bucket=bucket, Prefix="robotics/inbox/")["Contents"]
    assert len(inbox) == 2 + 4  # one notification per envelope
    for entry in inbox:
        validate("inbox_event", json.loads(_body(s3, bucket, entry["Key"])))
    for session in sessions:
        stored = MediaSessionEnvelope.parse(_body(s3, bucket, session.envelope_key))
        assert stored.segment_ids == tuple(s.segment_id for s in session.segments)
        assert stored.consent_receipt_id is not None
        for segment in session.segments:
            envelope = SegmentEnvelope.parse(_body(s3, bucket, segment.envelope_key))
            raw = _body(s3, bucket, envelope.raw_key)
            assert len(raw) == envelope.raw_size_bytes
            assert hashlib.sha256(raw).hexdigest() == envelope.raw_sha256
            sensors = _body(s3, bucket, envelope.sensors_key)
            assert hashlib.sha256(sensors).hexdigest() == envelope.sensors_sha256
            head = s3.head_object(Bucket=bucket, Key=envelope.raw_key)
            assert head["ContentType"] == "video/mp4"
            assert head["ETag"].strip('"') == segment.digest.etag


def test_same_seed_same_capture(s3, bucket: str) -> None:
    first = simulate(s3, bucket, seed=3)[0]
    second = simulate(s3, bucket, seed=3)[0]
    assert first.envelope == second.envelope
    assert first.segments[0].envelope == second.segments[0].envelope


def test_signal_defects_are_really_in_the_data(s3, bucket: str, tmp_path: Path) -> None:
    session = simulate(
        s3,
        bucket,
        "dropped_frames@0.0",
        "jerk_spike@0.1",
        "clock_drift@0.2",
        "missing_consent",
        segments=3,
    )[0]
    dropped, spiky, drifting = session.segments
    assert json.loads(_body(s3, bucket, session.envelope_key))["consent"] is None

    video = tmp_path / "dropped.mp4"
    video.write_bytes(_body(s3, bucket, dropped.raw_key))
    assert count_dropped_frames(probe_packet_times(video), 30) >= 3
    clean_video = tmp_path / "clean.mp4"
    clean_video.write_bytes(_body(s3, bucket, spiky.raw_key))
    assert count_dropped_frames(probe_packet_times(clean_video), 30) == 0

    def table(segment):
        return pq.read_table(io.BytesIO(_body(s3, bucket, segment.sensors_key)))

    assert jerk_peak(table(spiky), 100.0) > 5 * jerk_peak(table(dropped), 100.0)
    offset_ms, skew_ppm = fit_clock_ms_ppm(
        table(drifting)["host_time_ns"].to_numpy(), table(drifting)["device_time_ns"].to_numpy()
    )
    assert skew_ppm == pytest.approx(250, abs=5)
    assert offset_ms == pytest.approx(40, abs=2)
    _, clean_skew = fit_clock_ms_ppm(
        table(dropped)["host_time_ns"].to_numpy(), table(dropped)["device_time_ns"].to_numpy()
    )
    assert abs(clean_skew) < 1


def test_storage_defects_are_really_in_the_bucket(s3, bucket: str) -> None:
    session = simulate(
        s3,
        bucket,
        "corrupt_after_upload@0.0",
        "truncated_upload@0.1",
        "missing_part@0.2",
        segments=3,
        multipart=True,
    )[0]
    corrupt, truncated, missing = session.segments
    for segment in session.segments:
        assert segment.envelope["upload"]["part_count"] >= 3

    body = _body(s3, bucket, corrupt.raw_key)
    assert len(body) == corrupt.envelope["raw"]["size_bytes"]
    assert hashlib.sha256(body).hexdigest() != corrupt.envelope["raw"]["sha256"]

    head = s3.head_object(Bucket=bucket, Key=truncated.raw_key)
    assert head["ContentLength"] < truncated.envelope["raw"]["size_bytes"]

    head = s3.head_object(Bucket=bucket, Key=missing.raw_key, PartNumber=1)
    assert head["PartsCount"] == missing.envelope["upload"]["part_count"] - 1
    full = s3.head_object(Bucket=bucket, Key=missing.raw_key)
    assert full["ContentLength"] < missing.envelope["raw"]["size_bytes"]


def test_defect_outside_the_batch_is_refused(s3, bucket: str) -> None:
    with pytest.raises(SimulationError, match="outside"):
        simulate(s3, bucket, "jerk_spike@3.0")
    with pytest.raises(SimulationError, match="unknown defect"):
        Defect.parse("gremlins")


def test_missing_part_needs_enough_parts(s3, bucket: str) -> None:
    with pytest.raises(SimulationError, match=">= 3 parts"):
        simulate(s3, bucket, "missing_part@0.0")
