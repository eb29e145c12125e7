"""Robot logs as robots write them, read through the pipeline: a segment whose sensor log is an
MCAP or a ROS 2 bag is proven, clipped and scored like one with our Parquet schema; a log the
topic map cannot read leaves the segment reviewable without signals, with the reason."""

import hashlib
import io
import json
import math
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from robotrace_assets import catalog
from robotrace_assets.clips.assets import CLIPS
from robotrace_assets.clips.rows import clip_rows
from robotrace_assets.derivatives.assets import PROXY
from robotrace_assets.proof.assets import PROVIDER_PROOF
from robotrace_assets.records.proofs import ProofRecord
from robotrace_assets.records.segments import SegmentRecord
from robotrace_assets.records.sessions import load_session_envelope
from robotrace_assets.robotlogs.writers import default_topic_map, write_mcap, write_ros2_bag
from robotrace_assets.segments.assets import SEGMENT, SEGMENT_PARTS
from robotrace_assets_tests.helpers import failure_messages, run_assets, simulate, store_for

FULL = [SEGMENT, SEGMENT_PARTS, PROVIDER_PROOF, PROXY, CLIPS]


@pytest.fixture
def topic_map(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "topic_map.json"
    path.write_text(json.dumps({"version": 1, "default": default_topic_map()}))
    monkeypatch.setenv("ROBOTRACE_TOPIC_MAP_FILE", str(path))
    return path


def _swap_sensor_log(s3, bucket: str, segment, data: bytes, fmt: str) -> None:
    """What a robot does: upload the log it already writes, and declare its format."""
    s3.put_object(Bucket=bucket, Key=segment.sensors_key, Body=data)
    doc = dict(segment.envelope)
    doc["sensors"] = {
        **doc["sensors"],
        "format": fmt,
        "size_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    s3.put_object(Bucket=bucket, Key=segment.envelope_key, Body=json.dumps(doc).encode())


@pytest.mark.parametrize("fmt", ["mcap", "ros2bag"])
def test_robot_log_gives_the_signals_of_the_same_parquet(
    fmt: str, s3, bucket, instance, topic_map
) -> None:
    segment = simulate(s3, bucket)[0].segments[0]
    parquet = s3.get_object(Bucket=bucket, Key=segment.sensors_key)["Body"].read()
    table = pq.read_table(io.BytesIO(parquet))
    data = write_mcap(table) if fmt == "mcap" else write_ros2_bag(table)
    _swap_sensor_log(s3, bucket, segment, data, fmt)

    result = run_assets(instance, bucket, FULL, segment.segment_id)
    assert result.success, failure_messages(result)
    store = store_for(bucket)
    rows = store.read_record(catalog.CLIPS, segment.segment_id)
    segment_row = SegmentRecord.from_row(store.read_record(catalog.SEGMENTS, segment.segment_id)[0])
    probe = store.read_record(catalog.MEDIA_PROBES, segment.segment_id)[0]
    proof = ProofRecord(store.read_record(catalog.PROOFS, segment.segment_id)[0])
    session = load_session_envelope(store, segment_row.media_session_id)
    expected, _, _ = clip_rows(segment_row, session, probe, proof, table)
    assert len(rows) == len(expected)
    for got, want in zip(rows, expected, strict=True):
        for name in (k for k in want if k.startswith("signal_") and k != "signal_notes"):
            if isinstance(want[name], float):
                assert math.isclose(got[name], want[name], rel_tol=1e-6, abs_tol=1e-6), name
        assert got["machine_status"] == want["machine_status"]


def test_unreadable_robot_log_leaves_the_segment_reviewable(
    s3, bucket, instance, topic_map
) -> None:
    segment = simulate(s3, bucket)[0].segments[0]
    parquet = s3.get_object(Bucket=bucket, Key=segment.sensors_key)["Body"].read()
    table = pq.read_table(io.BytesIO(parquet))
    # The robot logs its pose on another topic than the topic map names.
    data = write_mcap(
        table,
        topics={"pose": "/other/pose", "joints": "/joint_states", "wrench": "/robot/wrench"},
    )
    _swap_sensor_log(s3, bucket, segment, data, "mcap")
    result = run_assets(instance, bucket, FULL, segment.segment_id)
    assert result.success, failure_messages(result)
    rows = store_for(bucket).read_record(catalog.CLIPS, segment.segment_id)
    assert rows and all(r["machine_status"] == "needs_review" for r in rows)
    reasons = " ".join(" ".join(r["machine_reasons"]) for r in rows)
    assert "no safety signals" in reasons and "/robot/ee_pose" in reasons
