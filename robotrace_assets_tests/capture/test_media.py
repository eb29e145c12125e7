"""Synthetic video encoding, exercised end-to-end with the bundled ffmpeg (no mocks)."""

from __future__ import annotations

import dataclasses
import itertools
import subprocess
from pathlib import Path

import pytest

from robotrace_assets.capture.media import VideoSpec, encode_synthetic_video
from robotrace_assets.media.ffmpeg import MediaError, ffmpeg_exe
from robotrace_assets.media.probe import (
    count_dropped_frames,
    probe_packet_times,
    probe_video_stream,
)

# Small and short: every encode here takes a fraction of a second.
SMALL = VideoSpec(seconds=2.0, fps=30, width=160, height=120)
CODECS = ["hevc", "h264"]


def _spec(**changes: object) -> VideoSpec:
    return dataclasses.replace(SMALL, **changes)


def _ffmpeg_banner(path: Path) -> str:
    """Raw ``ffmpeg -i`` stream summary, checked independently of probe_video_stream."""
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stderr


@pytest.mark.parametrize("codec", CODECS)
def test_encode_produces_expected_stream(tmp_path: Path, codec: str) -> None:
    path = tmp_path / "clip.mp4"
    info = encode_synthetic_video(path, _spec(codec=codec))

    assert info.path == path
    assert path.is_file()
    assert info.size_bytes == path.stat().st_size > 0
    assert info.content_type == "video/mp4"
    assert (info.codec, info.width, info.height, info.fps) == (codec, 160, 120, 30)
    assert info.frames == 60
    assert info.duration_s == pytest.approx(2.0, abs=1e-6)
    # Nothing but the finished file is left in the directory (no temp/partial files).
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]

    banner = _ffmpeg_banner(path)
    assert f"Video: {codec}" in banner
    assert "160x120" in banner
    if codec == "hevc":
        # Apple/browser-playable HEVC in MP4 needs the hvc1 sample entry, not hev1.
        assert "hvc1" in banner
    probe = probe_video_stream(path)
    assert (probe.codec, probe.width, probe.height) == (codec, 160, 120)

    times = probe_packet_times(path)
    assert len(times) == 60
    assert times == sorted(times)
    assert times[0] == pytest.approx(0.0, abs=1e-9)
    assert count_dropped_frames(times, 30) == 0


def test_faststart_puts_moov_before_mdat(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    encode_synthetic_video(path, _spec(codec="h264", seconds=1.0))
    head = path.read_bytes()
    # +faststart moves the index to the front so players can start before the full download.
    assert 0 <= head.find(b"moov") < head.find(b"mdat")


@pytest.mark.parametrize("codec", CODECS)
def test_same_spec_is_byte_identical_and_seed_changes_bytes(tmp_path: Path, codec: str) -> None:
    a = encode_synthetic_video(tmp_path / "a.mp4", _spec(codec=codec, seed=7))
    b = encode_synthetic_video(tmp_path / "b.mp4", _spec(codec=codec, seed=7))
    c = encode_synthetic_video(tmp_path / "c.mp4", _spec(codec=codec, seed=8))
    assert a.path.read_bytes() == b.path.read_bytes()
    assert a.path.read_bytes() != c.path.read_bytes()


@pytest.mark.parametrize("codec", CODECS)
def test_dropped_frames_leave_timestamp_gaps(tmp_path: Path, codec: str) -> None:
    info = encode_synthetic_video(
        tmp_path / "gappy.mp4", _spec(codec=codec, dropped_frames=(10, 11, 12))
    )
    times = probe_packet_times(info.path)

    assert info.frames == len(times) == 57
    assert count_dropped_frames(times, 30) == 3
    # The gap sits exactly where frames 10..12 were: 9/30 s is followed by 13/30 s.
    gaps = [(a, b) for a, b in itertools.pairwise(times) if b - a > 1.5 / 30]
    assert gaps == [pytest.approx((9 / 30, 13 / 30), abs=1e-6)]
    # Later frames keep their original timestamps rather than being shifted earlier.
    assert times[-1] == pytest.approx(59 / 30, abs=1e-6)
    assert info.duration_s == pytest.approx(2.0, abs=1e-6)


@pytest.mark.parametrize("codec", CODECS)
def test_bitrate_target_controls_file_size(tmp_path: Path, codec: str) -> None:
    # Filler data holds the size near bitrate * duration even for easy synthetic content.
    info = encode_synthetic_video(tmp_path / "cbr.mp4", _spec(codec=codec, bitrate_kbps=4000))
    expected_bytes = 4000 * 1000 * 2.0 / 8
    assert 0.7 * expected_bytes < info.size_bytes < 1.3 * expected_bytes
    default = encode_synthetic_video(tmp_path / "crf.mp4", _spec(codec=codec))
    assert info.size_bytes > 2 * default.size_bytes
    assert probe_video_stream(info.path).codec == codec


def test_failing_ffmpeg_raises_media_error_and_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.mp4"
    # libx265 refuses frames this small; ffmpeg itself fails, not our validation.
    with pytest.raises(MediaError, match=r"(?s)exited with code.*too small"):
        encode_synthetic_video(path, _spec(codec="hevc", width=8, height=8))
    assert list(tmp_path.iterdir()) == []


def test_failure_keeps_existing_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"previous upload")
    with pytest.raises(MediaError):
        encode_synthetic_video(path, _spec(codec="h264", width=20000, height=16))
    assert path.read_bytes() == b"previous upload"
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


@pytest.mark.parametrize(
    "changes",
    [
        {"width": 161},
        {"seconds": 0.0},
        {"fps": 0},
        {"dropped_frames": (60,)},
        {"dropped_frames": (-1,)},
        {"codec": "vp9"},
        {"bitrate_kbps": 0},
        {"seed": -1},
    ],
)
def test_invalid_spec_is_rejected_before_running_ffmpeg(
    tmp_path: Path, changes: dict[str, object]
) -> None:
    with pytest.raises(ValueError):
        encode_synthetic_video(tmp_path / "x.mp4", _spec(**changes))
    assert list(tmp_path.iterdir()) == []
