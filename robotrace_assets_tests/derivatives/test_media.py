"""Single-pass review derivatives, exercised with the bundled ffmpeg on real clips (no mocks).

Every property of the outputs is checked with ffmpeg itself, independently of the code under
test: ``ffmpeg -i`` stderr for codec and size, stream-copy framemd5 for packet timestamps,
keyframe-only decoding for GOP spacing, and the MP4 box layout for faststart.
"""

from __future__ import annotations

import dataclasses
import functools
import http.server
import itertools
import math
import os
import re
import subprocess
import threading
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import pytest

from bench.derivatives_baselines import make_proxy_only, make_separately
from robotrace_assets.capture.media import VideoSpec, encode_synthetic_video
from robotrace_assets.derivatives.media import DerivativeError, DerivativeSet, make_derivatives
from robotrace_assets.derivatives.profiles import DerivativeProfile
from robotrace_assets.media.ffmpeg import ffmpeg_exe
from robotrace_assets.media.probe import probe_packet_times

PROFILE = DerivativeProfile()
FPS = 30
# 3 s at 30 fps; 640x480 is the "typical" camera, 1280x720 exercises downscaling to 480 and
# 320x240 checks that a small source is never upscaled.
BASE = VideoSpec(seconds=3.0, fps=FPS, width=640, height=480, codec="hevc")
DROPPED = (20, 21, 22)
SIGNATURE = "f00dfacecafe0123456789abcdef5ec7e7"
CREDENTIAL = "AKIAFAKEFAKEFAKE"
SIGNED_QUERY = f"X-Amz-Credential={CREDENTIAL}%2F20250101&X-Amz-Signature={SIGNATURE}"


# --------------------------------------------------------------------------- independent probes


def _banner(path: Path) -> str:
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stderr


def _stream(path: Path) -> tuple[str, int, int]:
    """(codec, width, height) of the first video stream as ``ffmpeg -i`` reports it."""
    match = re.search(r"Video: (\w+).*?, (\d{2,5})x(\d{2,5})[\s,\[]", _banner(path))
    assert match, f"no video stream in {path.name}"
    return match.group(1), int(match.group(2)), int(match.group(3))


def _keyframe_times(path: Path) -> list[float]:
    """Timestamps of the keyframes, by decoding only keyframes (``-skip_frame nokey``)."""
    proc = subprocess.run(
        [
            ffmpeg_exe(),
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "error",
            "-skip_frame",
            "nokey",
            "-i",
            str(path),
            "-map",
            "0:v:0",
            "-fps_mode",
            "passthrough",
            "-f",
            "framemd5",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    tb = re.search(r"#tb 0: (\d+)/(\d+)", proc.stdout)
    assert tb
    base = Fraction(int(tb.group(1)), int(tb.group(2)))
    rows = [line.split(",") for line in proc.stdout.splitlines() if not line.startswith("#")]
    return sorted(float(int(row[2]) * base) for row in rows if row and row[0].strip() == "0")


def _top_level_boxes(path: Path) -> list[str]:
    """Types of the MP4's top-level boxes in file order."""
    data = path.read_bytes()
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        kind = data[offset + 4 : offset + 8].decode("latin-1")
        if size == 1:  # 64-bit largesize follows the type
            size = int.from_bytes(data[offset + 8 : offset + 16], "big")
        elif size == 0:  # box runs to the end of the file
            size = len(data) - offset
        boxes.append(kind)
        offset += size
    return boxes


def _span(times: list[float], fps: float) -> float:
    return times[-1] - times[0] + 1.0 / fps


def _even(value: float) -> int:
    """What ffmpeg's ``-2`` does to a scaled dimension: nearest even number (rounded down)."""
    return int(value) // 2 * 2


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The source clips, encoded once per module (x265 is the slow part of this file)."""
    root = tmp_path_factory.mktemp("sources")
    specs = {
        "vga": BASE,
        "dropped": dataclasses.replace(BASE, dropped_frames=DROPPED),
        "hd": dataclasses.replace(BASE, seconds=2.0, width=1280, height=720),
        "small": dataclasses.replace(BASE, seconds=2.0, width=320, height=240),
    }
    return {
        name: encode_synthetic_video(root / f"{name}.mp4", spec).path
        for name, spec in specs.items()
    }


@pytest.fixture(scope="module")
def vga_set(clips: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> DerivativeSet:
    out = tmp_path_factory.mktemp("vga-derivatives")
    return make_derivatives(str(clips["vga"]), out, PROFILE, duration_hint_s=BASE.seconds)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass  # keep pytest output clean; the requests themselves are what is tested


@pytest.fixture(scope="module")
def http_base(clips: dict[str, Path]) -> Iterator[str]:
    """A loopback HTTP server over the clips' directory, like a presigned GET (streamed)."""
    handler = functools.partial(_QuietHandler, directory=str(clips["vga"].parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# --------------------------------------------------------------------------- profile


def test_profile_fingerprint_is_stable_and_covers_every_field() -> None:
    assert PROFILE.fingerprint() == DerivativeProfile().fingerprint()
    assert re.fullmatch(r"[0-9a-f]{16}", PROFILE.fingerprint())
    changes = {
        "version": "d4",
        "proxy_height": 360,
        "proxy_crf": 23,
        "proxy_preset": "fast",
        "keyframe_interval_s": 2.0,
        "thumbnails": 6,
        "thumbnail_width": 160,
        "sheet_columns": 3,
        "sheet_tile_width": 200,
        "threads": 1,
        "label_moving_speed_m_s": 0.02,
        "label_contact_force_n": 12.0,
    }
    assert set(changes) == {f.name for f in dataclasses.fields(DerivativeProfile)}
    prints = {dataclasses.replace(PROFILE, **{k: v}).fingerprint() for k, v in changes.items()}
    assert len(prints) == len(changes) and PROFILE.fingerprint() not in prints


@pytest.mark.parametrize(
    "change",
    [
        {"proxy_height": 481},
        {"thumbnail_width": 0},
        {"thumbnails": 0},
        {"proxy_crf": 60},
        {"proxy_preset": "warp"},
        {"keyframe_interval_s": 0.0},
        {"keyframe_interval_s": math.inf},
    ],
)
def test_profile_rejects_values_ffmpeg_would_choke_on(change: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        dataclasses.replace(PROFILE, **change)


# --------------------------------------------------------------------------- one pass


def test_one_pass_writes_exactly_the_derivatives(vga_set: DerivativeSet) -> None:
    out = vga_set.proxy.parent
    expected = {"proxy.mp4", "contact_sheet.jpg", *(f"thumb_{i:02d}.jpg" for i in range(1, 9))}
    # Nothing else: no work dir, no packet log, no partial files.
    assert {p.name for p in out.iterdir()} == expected
    assert [p.name for p in vga_set.thumbnails] == [f"thumb_{i:02d}.jpg" for i in range(1, 9)]
    assert vga_set.contact_sheet == out / "contact_sheet.jpg"
    assert vga_set.profile == PROFILE
    assert vga_set.seconds > 0


@pytest.mark.parametrize(("clip", "size"), [("hd", (854, 480)), ("small", (320, 240))])
def test_proxy_is_h264_at_most_proxy_height_without_upscaling(
    clips: dict[str, Path], tmp_path: Path, clip: str, size: tuple[int, int]
) -> None:
    result = make_derivatives(str(clips[clip]), tmp_path, PROFILE, duration_hint_s=2.0)
    assert _stream(result.proxy) == ("h264", *size)
    assert "Audio:" not in _banner(result.proxy)


def test_proxy_keeps_duration_timestamps_and_faststart(
    clips: dict[str, Path], vga_set: DerivativeSet
) -> None:
    source = probe_packet_times(clips["vga"])
    proxy = probe_packet_times(vga_set.proxy)
    assert abs(_span(proxy, FPS) - _span(source, FPS)) <= 1.0 / FPS
    assert len(proxy) == len(source)
    boxes = _top_level_boxes(vga_set.proxy)
    assert boxes.index("moov") < boxes.index("mdat")
    # The profile fingerprint travels inside the proxy, so a file says how it was made.
    assert PROFILE.fingerprint() in _banner(vga_set.proxy)


def test_proxy_keyframes_are_at_most_one_interval_apart(vga_set: DerivativeSet) -> None:
    keys = _keyframe_times(vga_set.proxy)
    assert keys[0] == 0.0
    last_frame = probe_packet_times(vga_set.proxy)[-1]
    # Include the stretch after the last keyframe: scrubbing there must be responsive too.
    spacing = [b - a for a, b in zip(keys, [*keys[1:], last_frame], strict=True)]
    assert max(spacing) <= PROFILE.keyframe_interval_s + 1e-6
    assert len(keys) >= math.floor(BASE.seconds / PROFILE.keyframe_interval_s)


def test_thumbnails_and_contact_sheet_sizes(vga_set: DerivativeSet) -> None:
    assert len(vga_set.thumbnails) == PROFILE.thumbnails
    thumb_height = _even(PROFILE.thumbnail_width * BASE.height / BASE.width)
    for thumb in vga_set.thumbnails:
        assert _stream(thumb) == ("mjpeg", PROFILE.thumbnail_width, thumb_height)
    # Evenly spaced frames of a moving clip: no two stills are the same picture.
    assert len({t.read_bytes() for t in vga_set.thumbnails}) == PROFILE.thumbnails
    tile_height = _even(PROFILE.sheet_tile_width * BASE.height / BASE.width)
    rows = math.ceil(PROFILE.thumbnails / PROFILE.sheet_columns)
    assert _stream(vga_set.contact_sheet) == (
        "mjpeg",
        PROFILE.sheet_columns * PROFILE.sheet_tile_width,
        rows * tile_height,
    )


def test_probe_of_a_clean_clip(vga_set: DerivativeSet) -> None:
    probe = vga_set.probe
    assert (probe.codec, probe.width, probe.height) == ("hevc", 640, 480)
    assert probe.fps == FPS
    assert probe.frames == BASE.source_frames == 90
    assert probe.duration_s == pytest.approx(BASE.seconds, abs=1e-6)
    assert probe.dropped_frames == 0
    assert probe.timestamp_gaps == []
    assert probe.max_gap_s == pytest.approx(1.0 / FPS, abs=1e-6)


def test_probe_finds_dropped_frames_and_the_gap(clips: dict[str, Path], tmp_path: Path) -> None:
    result = make_derivatives(str(clips["dropped"]), tmp_path, PROFILE, duration_hint_s=3.0)
    probe = result.probe
    # The nominal rate is the camera's, not frames / duration (which the drops would lower).
    assert probe.fps == FPS
    assert probe.frames == 90 - len(DROPPED)
    assert probe.dropped_frames == len(DROPPED)
    assert len(probe.timestamp_gaps) == 1
    start, length = probe.timestamp_gaps[0]
    # Frame 19 is the last before the gap, frame 23 the first after it.
    assert start == pytest.approx(19 / FPS, abs=1e-6)
    assert length == pytest.approx(4 / FPS, abs=1e-6)
    assert probe.max_gap_s == pytest.approx(length)
    assert len(result.thumbnails) == PROFILE.thumbnails


@pytest.mark.parametrize("hint", [None, 1.0, 10.0])
def test_missing_or_wrong_duration_hint_still_gives_every_still(
    clips: dict[str, Path], tmp_path: Path, hint: float | None
) -> None:
    result = make_derivatives(str(clips["vga"]), tmp_path, PROFILE, duration_hint_s=hint)
    assert len(result.thumbnails) == PROFILE.thumbnails
    assert result.probe.frames == 90
    assert result.contact_sheet.is_file()


def test_fewer_frames_than_thumbnails(tmp_path: Path) -> None:
    clip = encode_synthetic_video(
        tmp_path / "src" / "tiny.mp4", VideoSpec(seconds=0.2, fps=FPS, width=160, height=120)
    )
    result = make_derivatives(str(clip.path), tmp_path / "out", PROFILE, duration_hint_s=0.2)
    assert result.probe.frames == 6
    assert 1 <= len(result.thumbnails) <= 6
    assert result.contact_sheet.is_file()


def test_other_profile_settings_are_applied(clips: dict[str, Path], tmp_path: Path) -> None:
    profile = DerivativeProfile(
        proxy_height=240,
        thumbnails=5,
        thumbnail_width=160,
        sheet_columns=3,
        keyframe_interval_s=0.5,
    )
    result = make_derivatives(str(clips["vga"]), tmp_path, profile, duration_hint_s=3.0)
    assert _stream(result.proxy) == ("h264", 320, 240)
    assert len(result.thumbnails) == 5
    assert _stream(result.thumbnails[0])[1:] == (160, 120)
    assert _stream(result.contact_sheet)[1:] == (3 * 240, 2 * 180)
    keys = _keyframe_times(result.proxy)
    assert max(b - a for a, b in itertools.pairwise(keys)) <= 0.5 + 1e-6


# --------------------------------------------------------------------------- http sources


@pytest.mark.parametrize("hint", [3.0, None])
def test_http_source_is_streamed(
    http_base: str, vga_set: DerivativeSet, tmp_path: Path, hint: float | None
) -> None:
    url = f"{http_base}/vga.mp4?{SIGNED_QUERY}"
    result = make_derivatives(url, tmp_path, PROFILE, duration_hint_s=hint)
    assert result.probe == vga_set.probe
    assert _stream(result.proxy) == ("h264", 640, 480)
    assert len(result.thumbnails) == PROFILE.thumbnails


@pytest.mark.parametrize("path", ["/not-there.mp4", "/corrupt.mp4"])
def test_http_failure_never_reveals_the_signed_url(
    http_base: str, clips: dict[str, Path], tmp_path: Path, path: str
) -> None:
    (clips["vga"].parent / "corrupt.mp4").write_bytes(os.urandom(50_000))
    url = f"{http_base}{path}?{SIGNED_QUERY}"
    with pytest.raises(DerivativeError) as caught:
        make_derivatives(url, tmp_path / "out", PROFILE, duration_hint_s=3.0)
    message = str(caught.value)
    assert "ffmpeg exited" in message
    for secret in (SIGNATURE, CREDENTIAL, url, SIGNED_QUERY):
        assert secret not in message
    # No chained exception carries the argv (and with it the URL) into a traceback either.
    assert caught.value.__cause__ is None
    assert list((tmp_path / "out").iterdir()) == []


# --------------------------------------------------------------------------- failures


def _corrupt(src: Path, dest: Path) -> None:
    dest.write_bytes(os.urandom(200_000))


def _empty(src: Path, dest: Path) -> None:
    dest.write_bytes(b"")


def _truncated(src: Path, dest: Path) -> None:
    data = src.read_bytes()
    dest.write_bytes(data[: int(len(data) * 0.3)])


@pytest.mark.parametrize("damage", [_corrupt, _empty, _truncated], ids=lambda f: f.__name__)
@pytest.mark.parametrize("maker", ["one_pass", "separately"])
def test_bad_sources_raise_and_leave_out_dir_empty(
    clips: dict[str, Path], tmp_path: Path, damage: Callable[[Path, Path], None], maker: str
) -> None:
    # A local name that looks like a signed URL: it must not leak through a message either.
    bad = tmp_path / f"segment.mp4?X-Amz-Signature={SIGNATURE}"
    damage(clips["vga"], bad)
    out = tmp_path / "out"
    make = make_derivatives if maker == "one_pass" else make_separately
    with pytest.raises(DerivativeError) as caught:
        make(str(bad), out, PROFILE, duration_hint_s=3.0)
    assert SIGNATURE not in str(caught.value)
    assert str(bad) not in str(caught.value)
    assert list(out.iterdir()) == []


def test_truncation_is_named(clips: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "cut.mp4"
    _truncated(clips["vga"], bad)
    with pytest.raises(DerivativeError, match="truncated"):
        make_derivatives(str(bad), tmp_path / "out", PROFILE)


def test_missing_source_and_bad_hint(tmp_path: Path) -> None:
    with pytest.raises(DerivativeError, match="not a readable file"):
        make_derivatives(str(tmp_path / "nope.mp4"), tmp_path / "out", PROFILE, 3.0)
    assert list((tmp_path / "out").iterdir()) == []
    with pytest.raises(ValueError):
        make_derivatives(str(tmp_path / "nope.mp4"), tmp_path / "out", PROFILE, -1.0)


def test_audio_only_source_has_no_video_to_derive(tmp_path: Path) -> None:
    audio = tmp_path / "audio.m4a"
    subprocess.run(
        [
            ffmpeg_exe(),
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=1",
            "-c:a",
            "aac",
            str(audio),
        ],
        check=True,
    )
    with pytest.raises(DerivativeError):
        make_derivatives(str(audio), tmp_path / "out", PROFILE, 1.0)
    assert list((tmp_path / "out").iterdir()) == []


# --------------------------------------------------------------------------- baselines


def test_make_separately_matches_one_pass(
    clips: dict[str, Path], vga_set: DerivativeSet, tmp_path: Path
) -> None:
    result = make_separately(str(clips["vga"]), tmp_path, PROFILE, duration_hint_s=3.0)
    assert {p.name for p in tmp_path.iterdir()} == {p.name for p in vga_set.proxy.parent.iterdir()}
    assert result.probe == vga_set.probe
    assert _stream(result.proxy) == _stream(vga_set.proxy)
    assert [_stream(t) for t in result.thumbnails] == [_stream(t) for t in vga_set.thumbnails]
    assert _stream(result.contact_sheet) == _stream(vga_set.contact_sheet)
    # Same frames selected by the same filter: the JPEGs are byte-identical.
    assert [t.read_bytes() for t in result.thumbnails] == [
        t.read_bytes() for t in vga_set.thumbnails
    ]


def test_make_proxy_only(clips: dict[str, Path], vga_set: DerivativeSet, tmp_path: Path) -> None:
    proxy = make_proxy_only(str(clips["hd"]), tmp_path, PROFILE)
    assert proxy == tmp_path / "proxy.mp4"
    assert [p.name for p in tmp_path.iterdir()] == ["proxy.mp4"]
    assert _stream(proxy) == ("h264", 854, 480)
    boxes = _top_level_boxes(proxy)
    assert boxes.index("moov") < boxes.index("mdat")
