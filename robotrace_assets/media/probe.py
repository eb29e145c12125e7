"""What a video holds, read by ffmpeg itself (no Dagster here).

imageio-ffmpeg ships a static ffmpeg but no ffprobe, so packets are read by stream copy into
the framecrc muxer (nothing decoded; timestamps and keyframe flags exactly as the container
stores them, gaps from dropped frames included) and stream facts from ``ffmpeg -i``'s log.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from robotrace_assets.media.ffmpeg import MediaError, run_ffmpeg, stderr_tail
from robotrace_assets.media.inputs import input_args, source_label

__all__ = [
    "PACKET_LOG_FORMAT",
    "PacketLog",
    "VideoStreamProbe",
    "count_dropped_frames",
    "packet_log_args",
    "parse_packet_log",
    "probe_packet_times",
    "probe_packets",
    "probe_video_stream",
]

# framecrc: one line per packet with its pts and, unlike framemd5, its flags (keyframes).
PACKET_LOG_FORMAT = "framecrc"
# Columns of a framehash packet line: stream, dts, pts, duration, size, hash[, F=flags].
_PTS_COLUMN = 2
_TB_RE = re.compile(r"#tb 0:\s*(\d+)/(\d+)")
_CODEC_RE = re.compile(r"#codec_id 0:\s*(\S+)")
_DIMENSIONS_HEADER_RE = re.compile(r"#dimensions 0:\s*(\d+)x(\d+)")
_VIDEO_STREAM_RE = re.compile(r"Stream #\d+:\d+.*?: Video: (?P<codec>\w+)(?P<rest>.*)")
# Anchored on ", WxH" so hex codec tags such as "0x31637668" can never match.
_DIMENSIONS_RE = re.compile(r",\s(?P<w>\d{1,5})x(?P<h>\d{1,5})(?=[\s,]|$)")


@dataclass(frozen=True)
class PacketLog:
    """The first video stream's packets, as the container stores them."""

    codec: str
    width: int
    height: int
    times: list[float]  # presentation times of every packet, seconds, sorted
    keyframes: list[float]  # presentation times of the keyframe packets, sorted


@dataclass(frozen=True)
class VideoStreamProbe:
    """First video stream as reported by ``ffmpeg -i``."""

    codec: str
    width: int
    height: int


def packet_log_args(output: str) -> list[str]:
    """Output arguments writing the first video stream's packet log to ``output`` ("-": stdout)."""
    return ["-map", "0:v:0", "-c", "copy", "-f", PACKET_LOG_FORMAT, output]


def _is_keyframe(fields: Sequence[str]) -> bool:
    # The muxer prints flags only when they differ from "key" alone.
    flags = next((f for f in fields[6:] if f.startswith("F=")), None)
    return flags is None or bool(int(flags[2:], 16) & 1)


def parse_packet_log(text: str) -> PacketLog:
    """The packets of stream 0 from a framecrc (or framemd5, without keyframes) log."""
    time_base: Fraction | None = None
    codec, width, height = "", 0, 0
    packets: list[tuple[int, bool]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#"):
            if m := _TB_RE.match(line):
                time_base = Fraction(int(m.group(1)), int(m.group(2)))
            elif m := _CODEC_RE.match(line):
                codec = m.group(1)
            elif m := _DIMENSIONS_HEADER_RE.match(line):
                width, height = int(m.group(1)), int(m.group(2))
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) > _PTS_COLUMN and fields[0] == "0":
            packets.append((int(fields[_PTS_COLUMN]), _is_keyframe(fields)))
    if time_base is None:
        raise MediaError("packet log has no header (no video stream read)")
    packets.sort()
    times = [float(pts * time_base) for pts, _ in packets]
    keyframes = [float(pts * time_base) for pts, key in packets if key]
    return PacketLog(codec, width, height, times, keyframes)


def probe_packets(source: str, headers: Mapping[str, str] | None = None) -> PacketLog:
    """Packet log of the first video stream of a local path or http(s) URL (no decode)."""
    run = run_ffmpeg(
        [*input_args(source, headers), *packet_log_args("-")],
        what=f"probing packets of {source_label(source)}",
        source=source,
    )
    return parse_packet_log(run.stdout.decode("utf-8", "replace"))


def probe_packet_times(path: Path) -> list[float]:
    """Presentation timestamps (seconds, sorted) of every packet of the first video stream."""
    return probe_packets(str(path)).times


def probe_video_stream(path: Path) -> VideoStreamProbe:
    """Codec and frame size of the first video stream, parsed from ``ffmpeg -i``'s log."""
    # Without an output ffmpeg exits 1 after printing the input summary, so the exit code
    # carries no meaning here; only the parsed log does.
    run = run_ffmpeg(
        input_args(str(path)), what=f"probing {Path(path).name}", loglevel="info", check=False
    )
    for line in run.stderr.splitlines():
        stream_match = _VIDEO_STREAM_RE.search(line)
        if stream_match is None:
            continue
        dims = _DIMENSIONS_RE.search(stream_match.group("rest"))
        if dims is None:
            break
        return VideoStreamProbe(
            codec=stream_match.group("codec"),
            width=int(dims.group("w")),
            height=int(dims.group("h")),
        )
    raise MediaError(f"no video stream found in {Path(path).name}: {stderr_tail(run.stderr)}")


def count_dropped_frames(packet_times: Sequence[float], fps: float) -> int:
    """Frames missing between consecutive timestamps, assuming a nominal constant ``fps``.

    Each gap of ``dt`` seconds should hold ``round(dt * fps)`` frame intervals; any intervals
    beyond one are frames that never made it into the stream.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    times = sorted(packet_times)
    return sum(max(0, round((b - a) * fps) - 1) for a, b in itertools.pairwise(times))
