"""Egress recordings -> segments: bounded length at keyframes, bit-exact re-runs, and hostile
inputs (sparse keyframes, a size that disagrees with Egress, unreadable telemetry) refused
before anything is handed off."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from robotrace_assets import layout
from robotrace_assets.media.ffmpeg import run_ffmpeg
from robotrace_assets.teleop.lifecycle import Recording
from robotrace_assets.teleop.planner import (
    TELEMETRY_NAME,
    HandOffError,
    SessionFacts,
    egress_prefix,
    hand_off_recordings,
)
from robotrace_assets.teleop.segmenting import (
    PacketTimes,
    SegmentingError,
    plan_cuts,
    probe_keyframes,
)

TENANT = "ten_01KT9WNH80AAAAAAAAAAAAAAAC"
MSESS = "msess_01KT9WNH80AAAAAAAAAAAAAAAD"
START_NS = 1_780_000_000_000_000_000


def facts() -> SessionFacts:
    return SessionFacts(
        session_id="sess_01KT9WNH80AAAAAAAAAAAAAAAA",
        tenant_id=TENANT,
        media_session_id=MSESS,
        room_name="sess_01KT9WNH80AAAAAAAAAAAAAAAA",
        room_sid="RM_1",
        operator_id="op_01KT9WNH80AAAAAAAAAAAAAAAB",
        task_brief_id="tb_01KT9WNH80TB0000000000000A",
        tier=3,
        device={"model": "cell", "has_lidar": False},
        task={"name": "pick", "steps": ["reach"]},
        environment={},
        consent=None,
        license=None,
        safety_rules_version="v4.2",
        created_at=datetime(2026, 6, 4, tzinfo=UTC),
    )


def mp4(path: Path, seconds: float, gop: int) -> Path:
    run_ffmpeg(
        [
            *("-f", "lavfi"),
            *("-i", f"testsrc2=size=160x120:rate=30:duration={seconds}"),
            *("-c:v", "libx264", "-preset", "ultrafast", "-g", str(gop), str(path)),
        ],
        what="fixture",
    )
    return path


def test_cuts_keep_every_segment_within_the_limit() -> None:
    packets = PacketTimes(
        tuple(i / 30 for i in range(30 * 25)), tuple(float(k) for k in range(0, 25, 2))
    )
    cuts = plan_cuts(packets, 5.0)
    bounds = [0.0, *cuts, packets.duration_s]
    assert all(0 < b - a <= 5.0 + 1e-9 for a, b in itertools.pairwise(bounds))
    assert set(cuts) <= set(packets.keyframes_s)
    with pytest.raises(SegmentingError, match="keyframes are too sparse"):
        plan_cuts(PacketTimes(packets.times_s, (0.0, 12.0)), 5.0)


def recording(key: str, size: int) -> Recording:
    return Recording(
        egress_id="EG_1",
        status="EGRESS_COMPLETE",
        identity="operator:x",
        file_key=key,
        size_bytes=size,
        started_at_ns=START_NS,
        ended_at_ns=START_NS + 7 * 10**9,
        usable=True,
    )


def test_hand_off_is_bit_exact_and_bounded(s3, bucket, tmp_path) -> None:
    video = mp4(tmp_path / "op.mp4", 7.0, 30)
    key = egress_prefix(TENANT, MSESS) + "operator.mp4"
    s3.upload_file(str(video), bucket, key)
    rec = recording(key, video.stat().st_size)
    first = hand_off_recordings(s3, bucket, facts(), [rec], 3.0)
    envelopes = [
        json.loads(s3.get_object(Bucket=bucket, Key=layout.segment_envelope_key(s))["Body"].read())
        for s in first
    ]
    assert len(first) == 3
    for envelope in envelopes:
        started = datetime.fromisoformat(envelope["started_at"].replace("Z", "+00:00"))
        ended = datetime.fromisoformat(envelope["ended_at"].replace("Z", "+00:00"))
        assert 0 < (ended - started).total_seconds() <= 3.0
        assert envelope["source"] == "teleop" and envelope["provenance"]["tier"] == 3
        assert "sensors" not in envelope  # no data-track telemetry was recorded
    assert [e["boundary_reason"] for e in envelopes][-1] == "end_of_session"
    second = hand_off_recordings(s3, bucket, facts(), [rec], 3.0)
    assert second == first
    again = [
        json.loads(s3.get_object(Bucket=bucket, Key=layout.segment_envelope_key(s))["Body"].read())
        for s in second
    ]
    assert [e["raw"]["sha256"] for e in again] == [e["raw"]["sha256"] for e in envelopes]
    probe = probe_keyframes(video)
    assert probe.keyframes_s[:3] == (0.0, 1.0, 2.0)


def test_hostile_recordings_are_refused_before_any_hand_off(s3, bucket, tmp_path) -> None:
    video = mp4(tmp_path / "op.mp4", 3.0, 30)
    prefix = egress_prefix(TENANT, MSESS)
    s3.upload_file(str(video), bucket, prefix + "operator.mp4")
    size = video.stat().st_size
    with pytest.raises(HandOffError, match="differs"):
        hand_off_recordings(s3, bucket, facts(), [recording(prefix + "operator.mp4", size + 1)], 3)
    with pytest.raises(HandOffError, match="not in the bucket"):
        hand_off_recordings(s3, bucket, facts(), [recording(prefix + "gone.mp4", size)], 3)
    s3.put_object(Bucket=bucket, Key=prefix + TELEMETRY_NAME, Body=b"not parquet")
    with pytest.raises(HandOffError, match="telemetry"):
        hand_off_recordings(s3, bucket, facts(), [recording(prefix + "operator.mp4", size)], 3)
    s3.put_object(Bucket=bucket, Key=prefix + "junk.mp4", Body=b"\x00" * 4096)
    with pytest.raises(SegmentingError):
        hand_off_recordings(s3, bucket, facts(), [recording(prefix + "junk.mp4", 4096)], 3)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=layout.ENVELOPES).get("KeyCount", 0)
    assert listed == 0  # nothing was handed off
