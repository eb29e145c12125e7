"""The clip object's depth: frames inside each clip's window and the modality the depth stream's
own tag names, never the envelope's device.has_lidar (real SeaweedFS, ffmpeg and Dagster)."""

import hashlib
import json
from pathlib import Path

import numpy as np

from robotrace_assets import catalog, layout
from robotrace_assets.clips.assets import CLIPS
from robotrace_assets.depth import write_depth_mkv
from robotrace_assets.derivatives.assets import PROXY
from robotrace_assets.proof.assets import PROVIDER_PROOF
from robotrace_assets.segments.assets import SEGMENT, SEGMENT_PARTS
from robotrace_assets_tests.helpers import failure_messages, run_assets, simulate, store_for

FULL = [SEGMENT, SEGMENT_PARTS, PROVIDER_PROOF, PROXY, CLIPS]
# Seed 0: the first session's device (teleop_cell_rev4) has LiDAR; 2 s at 15 fps is 30 frames,
# and dropped_depth_frames leaves out depth frames 15 and 16 (1.0 s to 1.13 s).
SMALL = {"seconds": 2.0, "fps": 15, "width": 96, "height": 64, "codec": "h264", "seed": 0}


def _clips(bucket: str, segment_id: str) -> list[dict]:
    return store_for(bucket).read_record(catalog.CLIPS, segment_id) or []


def _seed_depth(clip: dict) -> dict | None:
    return json.loads(clip["clip_object"])["depth"]


def _declare_tof_stream(s3, bucket: str, segment, tmp_path: Path) -> None:
    """The client's depth object is a time-of-flight stream: what the clip must report."""
    frames = np.full((30, 16, 24), 1500, dtype=np.uint16)
    body = write_depth_mkv(frames, 15.0, tmp_path / "tof.mkv", modality="tof").read_bytes()
    doc = json.loads(s3.get_object(Bucket=bucket, Key=segment.envelope_key)["Body"].read())
    (declared,) = doc["objects"]
    s3.put_object(
        Bucket=bucket, Key=declared["object_key"], Body=body, ContentType=declared["content_type"]
    )
    declared.update(size_bytes=len(body), sha256=hashlib.sha256(body).hexdigest())
    s3.put_object(Bucket=bucket, Key=segment.envelope_key, Body=json.dumps(doc).encode())


def test_clips_count_depth_frames_in_their_window_with_the_data_modality(
    s3, bucket, instance, tmp_path: Path
) -> None:
    session = simulate(s3, bucket, "dropped_depth_frames@0.0", segments=2, depth=True, **SMALL)[0]
    assert session.envelope["device"]["has_lidar"]
    dropped, tof = session.segments
    _declare_tof_stream(s3, bucket, tof, tmp_path)
    for segment in session.segments:
        result = run_assets(instance, bucket, FULL, segment.segment_id)
        assert result.success, failure_messages(result)

    clips = _clips(bucket, dropped.segment_id)
    assert len(clips) >= 2
    assert {c["depth_modality"] for c in clips} == {"lidar"}
    for clip in clips:
        assert _seed_depth(clip) == {"modality": "lidar", "frames": clip["depth_frames"]}
    assert sum(c["depth_frames"] for c in clips) == 28  # every stored depth frame, once
    (gap,) = [c for c in clips if c["start_s"] <= 1.0 < c["end_s"]]
    assert gap["depth_frames"] == gap["video_frames"] - 2  # the two dropped depth frames
    assert sum(c["depth_frames"] for c in clips) < sum(c["video_frames"] for c in clips)

    tof_clips = _clips(bucket, tof.segment_id)
    assert {c["depth_modality"] for c in tof_clips} == {"tof"}  # the stream's tag, not LiDAR
    assert sum(c["depth_frames"] for c in tof_clips) == 30


def test_clips_of_a_segment_without_depth_report_none(s3, bucket, instance) -> None:
    # A LiDAR device whose capture declares no depth stream.
    segment = simulate(s3, bucket, segments=1, **SMALL)[0].segments[0]
    result = run_assets(instance, bucket, FULL, segment.segment_id)
    assert result.success, failure_messages(result)
    clips = _clips(bucket, segment.segment_id)
    assert clips
    for clip in clips:
        assert clip["depth_modality"] is None and clip["depth_frames"] is None
        assert _seed_depth(clip) is None


def test_clips_refuse_a_declared_depth_stream_never_derived(s3, bucket, instance) -> None:
    """Derivatives made before the depth derivative existed: the clip must not claim no depth."""
    segment = simulate(s3, bucket, segments=1, depth=True, **SMALL)[0].segments[0]
    assert run_assets(instance, bucket, FULL[:-1], segment.segment_id).success
    s3.delete_object(
        Bucket=bucket, Key=layout.catalog_key(catalog.DEPTH_STREAMS, segment.segment_id)
    )
    result = run_assets(instance, bucket, [CLIPS], segment.segment_id, with_checks=False)
    assert not result.success
    assert "has no depth record: materialize its derivatives" in failure_messages(result)
