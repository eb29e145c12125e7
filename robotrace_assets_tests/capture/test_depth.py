"""Simulated LiDAR depth: declared in the segment envelope, uploaded, readable by the depth
probe from the bucket, with the dropped-frames defect as gaps (real SeaweedFS and ffmpeg)."""

from __future__ import annotations

from robotrace_assets.capture.depth import depth_size
from robotrace_assets.depth import FORMAT, ROLE, probe_depth
from robotrace_assets.objectstore.client import presign_get
from robotrace_assets_tests.helpers import simulate

SMALL = {"seconds": 2.0, "fps": 15, "width": 96, "height": 64, "codec": "h264"}


def test_lidar_segments_declare_and_upload_their_depth_stream(s3, bucket: str) -> None:
    sessions = simulate(
        s3, bucket, "dropped_depth_frames@1.1", sessions=3, segments=2, depth=True, **SMALL
    )
    lidar = [s for s in sessions if s.envelope["device"]["has_lidar"]]
    assert lidar, "the seed should give at least one LiDAR device"
    drops = []
    for session in sessions:
        for segment in session.segments:
            declared = [o for o in segment.envelope.get("objects", ()) if o["role"] == ROLE]
            if not session.envelope["device"]["has_lidar"]:
                assert not declared  # a phone without LiDAR has no depth to declare
                continue
            (obj,) = declared
            assert obj["format"] == FORMAT
            head = s3.head_object(Bucket=bucket, Key=obj["object_key"])
            assert head["ContentLength"] == obj["size_bytes"]
            stream = probe_depth(presign_get(s3, bucket, obj["object_key"]))
            assert (stream.width, stream.height) == depth_size(96, 64)
            assert stream.modality == "lidar" and stream.fps == 15.0
            dropped = "dropped_depth_frames" in segment.defects
            assert stream.dropped_frames == (2 if dropped else 0)
            assert stream.frames == 30 - stream.dropped_frames
            drops.append(stream.dropped_frames)
    assert 2 in drops and 0 in drops


def test_depth_stays_off_unless_asked(s3, bucket: str) -> None:
    sessions = simulate(s3, bucket, sessions=3, seed=4, **SMALL)
    assert not [s for session in sessions for s in session.segments if s.envelope.get("objects")]
