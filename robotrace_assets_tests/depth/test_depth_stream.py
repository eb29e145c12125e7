"""The declared depth format read by the real ffmpeg: frames, drops, sensor, alignment to video,
and the files a buggy or hostile client could declare as depth instead."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robotrace_assets.depth import (
    DepthError,
    DepthStream,
    align_depth,
    probe_depth,
    read_depth_frames,
    write_depth_mkv,
)
from robotrace_assets.depth.stream import parse_depth_stream
from robotrace_assets.derivatives.labels import frame_times
from robotrace_assets.media.ffmpeg import run_ffmpeg


def ramp(count: int, height: int = 24, width: int = 32) -> np.ndarray:
    """Frame k is k * 10 + 500 mm everywhere but a 0 (no return) corner: frames say who they are."""
    frames = np.full((count, height, width), 500, dtype=np.uint16)
    frames += (np.arange(count, dtype=np.uint16) * 10)[:, None, None]
    frames[:, :2, :2] = 0
    return frames


def test_dropped_depth_frames_are_gaps_counted_and_left_without_depth(tmp_path: Path) -> None:
    path = write_depth_mkv(ramp(30), 30.0, tmp_path / "d.mkv", dropped=[5, 6, 7, 20])
    stream = probe_depth(str(path))
    assert (stream.modality, stream.width, stream.height) == ("lidar", 32, 24)
    assert (stream.frames, stream.fps, stream.dropped_frames) == (26, 30.0, 4)

    aligned = align_depth(stream, frame_times(30, 30.0, []))
    assert aligned.aligned_video_frames == 26
    assert aligned.unaligned_video_frames == 4
    index = aligned.index_table().column("depth_frame_index").to_pylist()
    assert index[5:8] == [None, None, None] and index[20] is None
    assert index[8] == 5  # the frame after the gap is the 6th stored one
    assert aligned.max_offset_ms < 1.0  # only Matroska's millisecond rounding
    assert aligned.frames_between(0.0, 0.5) == 15 - 3

    # Lossless, and decoded one stored frame each: no frame repeated over the gap.
    frames = read_depth_frames(str(path), stream.width, stream.height)
    assert frames.shape == (26, 24, 32)
    assert frames[5, 5, 5] == 500 + 8 * 10
    assert frames[0, 0, 0] == 0


def test_a_sensor_at_half_the_camera_rate_serves_every_video_frame(tmp_path: Path) -> None:
    stream = probe_depth(str(write_depth_mkv(ramp(15), 15.0, tmp_path / "d.mkv", modality="tof")))
    aligned = align_depth(stream, frame_times(30, 30.0, []))
    assert stream.modality == "tof"
    assert aligned.unaligned_video_frames == 0
    assert aligned.max_offset_ms == pytest.approx(33.3, abs=1.0)


def test_video_gaps_shift_the_frames_they_align_to(tmp_path: Path) -> None:
    stream = probe_depth(str(write_depth_mkv(ramp(30), 30.0, tmp_path / "d.mkv")))
    # The camera dropped frames 10-11: its 11th stored frame is at 12/30 s.
    video = frame_times(28, 30.0, [(9 / 30, 3 / 30)])
    index = align_depth(stream, video).index_table().column("depth_frame_index").to_pylist()
    assert index[9:11] == [9, 12]


def encode_video(path: Path, args: list[str]) -> Path:
    run_ffmpeg(
        ["-f", "lavfi", "-i", "testsrc=size=32x24:rate=10:duration=1", *args, "-y", str(path)],
        what="test video",
    )
    return path


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["-c:v", "libx264", "-pix_fmt", "yuv420p"], "needs ffv1/gray16le"),
        (["-c:v", "ffv1", "-pix_fmt", "gray"], "needs ffv1/gray16le"),
        (["-c:v", "ffv1", "-pix_fmt", "gray16le"], "no DEPTH_SENSOR tag"),
        (
            ["-c:v", "ffv1", "-pix_fmt", "gray16le", "-metadata:s:v:0", "DEPTH_SENSOR=sonar"],
            "DEPTH_SENSOR='sonar'",
        ),
        (
            [
                *("-c:v", "ffv1", "-pix_fmt", "gray16le"),
                *("-metadata:s:v:0", "DEPTH_SENSOR=lidar", "-metadata:s:v:0", "DEPTH_UNITS=m"),
            ],
            "in 'm'",
        ),
    ],
)
def test_objects_outside_the_format_are_refused_with_the_reason(
    tmp_path: Path, args: list[str], reason: str
) -> None:
    path = encode_video(tmp_path / "not-depth.mkv", args)
    with pytest.raises(DepthError, match=reason):
        probe_depth(str(path))


def test_garbage_and_cut_off_depth_objects_are_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.mkv"
    garbage.write_bytes(b"\x1a\x45\xdf\xa3" + bytes(range(256)) * 40)
    with pytest.raises(DepthError):
        probe_depth(str(garbage))
    whole = write_depth_mkv(ramp(30, 96, 128), 30.0, tmp_path / "d.mkv").read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole[: len(whole) // 3])
    stream = probe_depth(str(cut))  # the frames that are there, counted
    assert 0 < stream.frames < 30
    with pytest.raises(DepthError):
        read_depth_frames(str(cut), 128, 96)


def test_a_log_without_a_video_stream_is_refused() -> None:
    with pytest.raises(DepthError, match="no video stream"):
        parse_depth_stream("", "[info] Input #0, wav, from 'x':\n[info]   Stream #0:0: Audio: pcm")


@settings(max_examples=60, deadline=None)
@given(
    depth_fps=st.sampled_from([10.0, 15.0, 30.0, 60.0]),
    video_fps=st.sampled_from([10.0, 24.0, 30.0, 60.0]),
    dropped=st.sets(st.integers(0, 59), max_size=20),
    offset=st.floats(-0.02, 0.02),
)
def test_alignment_never_borrows_a_frame_from_further_than_half_a_depth_period(
    depth_fps: float, video_fps: float, dropped: set[int], offset: float
) -> None:
    kept = [k / depth_fps + offset for k in range(60) if k not in dropped]
    stream = DepthStream("lidar", 4, 4, depth_fps, tuple(kept), len(dropped))
    video = frame_times(int(2 * video_fps), video_fps, [])
    aligned = align_depth(stream, video)
    assert np.all(np.abs(aligned.offsets_s) <= 0.5 / depth_fps + 0.0011)
    assert aligned.aligned_video_frames + aligned.unaligned_video_frames == video.size
    table = aligned.index_table()
    assert table.num_rows == video.size
    assert table.column("depth_frame_index").null_count == aligned.unaligned_video_frames


def test_a_long_drop_is_written_as_one_short_filter(tmp_path: Path) -> None:
    """Hundreds of dropped frames (a minute-long segment losing its sensor) still write."""
    dropped = [*range(100, 250), 300, 302]
    path = write_depth_mkv(ramp(400, 12, 16), 30.0, tmp_path / "d.mkv", dropped=dropped)
    stream = probe_depth(str(path))
    assert (stream.frames, stream.dropped_frames) == (248, 152)
