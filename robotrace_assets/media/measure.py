"""A segment's measured facts from the packets ffmpeg read: rate, frames, drops, gaps, truncation.

The packet log gives the timestamps; ffmpeg's input summary (its ``info`` log of the same
run) gives the container's declared duration and rate. No Dagster here.
"""

from __future__ import annotations

import itertools
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from robotrace_assets.media.ffmpeg import MediaError
from robotrace_assets.media.probe import PacketLog, count_dropped_frames

__all__ = ["GAP_FACTOR", "MediaProbe", "measure"]

# A gap is a timestamp step longer than this many nominal frame periods.
GAP_FACTOR = 1.5
# Packets may cover less than the container's declared duration by this much (edit lists,
# a slightly longer audio track) before the file counts as truncated.
_TRUNCATION_SLACK_S = 0.5
_TRUNCATION_SLACK_FRAMES = 3
_DURATION_RE = re.compile(r"Duration: (\d+):(\d{2}):(\d{2}(?:\.\d+)?)")
_VIDEO_LINE_RE = re.compile(r"Stream #0:\d+.*?: Video: .*")
_RATE_RE = re.compile(r"(\d+(?:\.\d+)?)(k?) (tbr|fps)\b")


@dataclass(frozen=True)
class MediaProbe:
    """The source's first video stream, measured from the packets the derivatives read."""

    codec: str
    width: int
    height: int
    # Nominal rate: the median packet interval, so dropped frames do not lower it.
    fps: float
    # Video packets in the stream (= frames for the codecs cameras write).
    frames: int
    # First to last timestamp plus one nominal frame period.
    duration_s: float
    dropped_frames: int
    # (start, length) in seconds: start is the timestamp of the last frame before the gap,
    # relative to the first frame; length is the interval to the next frame.
    timestamp_gaps: list[tuple[float, float]]
    # Longest interval between consecutive frames (one frame period when nothing dropped).
    max_gap_s: float


def container_duration(log: str) -> float | None:
    """The input's declared duration from ffmpeg's input summary (None if it declares none)."""
    m = _DURATION_RE.search(log)
    if m is None:
        return None
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))


def declared_fps(log: str) -> float | None:
    """tbr (else fps) of the input's first video stream line: the fallback for 1-frame clips."""
    line = _VIDEO_LINE_RE.search(log)
    if line is None:
        return None
    rates = {kind: float(v) * (1000 if k else 1) for v, k, kind in _RATE_RE.findall(line[0])}
    return rates.get("tbr") or rates.get("fps")


def nominal_fps(times: Sequence[float], log: str) -> float:
    deltas = [b - a for a, b in itertools.pairwise(times) if b > a]
    if deltas:
        # The median ignores gaps and jitter; 3 decimals keeps 29.97 and snaps 30.0000001.
        return round(1.0 / statistics.median(deltas), 3)
    declared = declared_fps(log)
    if declared:
        return declared
    raise MediaError("could not determine the frame rate")


def measure(packets: PacketLog, log: str) -> MediaProbe:
    """Facts of the stream from its packets; ``log`` is ffmpeg's info log of the same read.

    Raises ``MediaError`` when no frame was read or when the container declares more
    duration than its packets hold (a cut-off upload or file).
    """
    times = packets.times
    if not times:
        raise MediaError("no video frames could be read from the source")
    fps = nominal_fps(times, log)
    period = 1.0 / fps
    steps = [(a, b - a) for a, b in itertools.pairwise(times)]
    gaps = [(round(a - times[0], 6), round(d, 6)) for a, d in steps if d > GAP_FACTOR * period]
    probe = MediaProbe(
        codec=packets.codec,
        width=packets.width,
        height=packets.height,
        fps=fps,
        frames=len(times),
        duration_s=round(times[-1] - times[0] + period, 6),
        dropped_frames=count_dropped_frames(times, fps),
        timestamp_gaps=gaps,
        max_gap_s=round(max((d for _, d in steps), default=0.0), 6),
    )
    declared = container_duration(log)
    slack = max(_TRUNCATION_SLACK_S, _TRUNCATION_SLACK_FRAMES * period)
    if declared is not None and probe.duration_s + slack < declared:
        raise MediaError(
            f"source is truncated: its index declares {declared:.2f}s but only "
            f"{probe.duration_s:.2f}s of video ({probe.frames} frames) could be read"
        )
    return probe
