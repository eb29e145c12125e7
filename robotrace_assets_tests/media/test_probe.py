"""Packet and stream probes with the bundled ffmpeg on real clips (no mocks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from robotrace_assets.media.ffmpeg import MediaError, run_ffmpeg
from robotrace_assets.media.probe import (
    count_dropped_frames,
    probe_packet_times,
    probe_packets,
    probe_video_stream,
)


def test_packet_log_has_every_packet_and_the_keyframes(tmp_path: Path) -> None:
    clip = tmp_path / "gop.mp4"
    # A keyframe every 15 frames at 30 fps, with B-frames so decode order differs from pts.
    run_ffmpeg(
        [
            *("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30:duration=2"),
            *("-c:v", "libx264", "-g", "15", "-bf", "2", "-sc_threshold", "0", str(clip)),
        ],
        what="fixture",
    )
    log = probe_packets(str(clip))
    assert (log.codec, log.width, log.height) == ("h264", 160, 120)
    assert len(log.times) == 60
    assert log.times == sorted(log.times)
    assert log.keyframes == pytest.approx([0.0, 0.5, 1.0, 1.5])
    assert probe_packet_times(clip) == log.times


def test_probes_reject_non_media(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"definitely not an mp4")
    with pytest.raises(MediaError):
        probe_packet_times(junk)
    with pytest.raises(MediaError):
        probe_video_stream(junk)
    with pytest.raises(MediaError):
        probe_packet_times(tmp_path / "missing.mp4")


@pytest.mark.parametrize(
    ("times", "fps", "expected"),
    [
        ([], 30, 0),
        ([0.0], 30, 0),
        ([i / 30 for i in range(10)], 30, 0),
        ([0.0, 1 / 30, 3 / 30], 30, 1),
        ([0.0, 4 / 30, 5 / 30, 9 / 30], 30, 3 + 3),
        # Container rounding jitter of a few ms must not count as drops.
        ([0.0, 0.0341, 0.0660, 0.1002], 30, 0),
        # Order of packets (decode order with B-frames) does not matter.
        ([3 / 25, 0.0, 1 / 25], 25, 1),
    ],
)
def test_count_dropped_frames(times: list[float], fps: float, expected: int) -> None:
    assert count_dropped_frames(times, fps) == expected


def test_count_dropped_frames_rejects_bad_fps() -> None:
    with pytest.raises(ValueError):
        count_dropped_frames([0.0, 1.0], 0)
