"""Cutting an Egress recording into media segments of bounded length, by stream copy.

Stream copy can only cut at keyframes, so the cut points are chosen from the recording's own
keyframe times (read from its packet log, nothing decoded): each segment ends at the
last keyframe that keeps it within the configured length. A recording whose keyframes are
further apart than that cannot be cut without re-encoding and is refused with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from robotrace_assets.media.ffmpeg import MediaError, run_ffmpeg
from robotrace_assets.media.inputs import input_args
from robotrace_assets.media.probe import probe_packets

_CUT_EPSILON_S = 1e-3  # the segment muxer cuts at the first keyframe at or after a time


class SegmentingError(MediaError):
    pass


@dataclass(frozen=True)
class PacketTimes:
    times_s: tuple[float, ...]  # every video packet's pts, sorted, from the first
    keyframes_s: tuple[float, ...]

    @property
    def frame_interval_s(self) -> float:
        if len(self.times_s) < 2:
            return 1 / 30
        gaps = sorted(b - a for a, b in zip(self.times_s, self.times_s[1:], strict=False))
        return gaps[len(gaps) // 2]

    @property
    def duration_s(self) -> float:
        if not self.times_s:
            return 0.0
        return self.times_s[-1] - self.times_s[0] + self.frame_interval_s


def probe_keyframes(path: Path) -> PacketTimes:
    try:
        log = probe_packets(str(path))
    except MediaError as error:
        raise SegmentingError(str(error)) from None
    if not log.times:
        raise SegmentingError(f"{path.name} has no video packets")
    first = log.times[0]
    times = tuple(t - first for t in log.times)
    return PacketTimes(times, tuple(k - first for k in log.keyframes))


def plan_cuts(packets: PacketTimes, max_s: float) -> list[float]:
    """Cut times (s from the start) so that every segment lasts at most `max_s`."""
    if max_s <= 0:
        raise ValueError("max_s must be positive")
    total = packets.duration_s
    cuts: list[float] = []
    start = 0.0
    while total - start > max_s + 1e-9:
        candidates = [k for k in packets.keyframes_s if start < k <= start + max_s + 1e-9]
        if not candidates:
            raise SegmentingError(
                f"no keyframe within {max_s:g} s after {start:.3f} s: keyframes are too sparse "
                "to cut this recording into bounded segments by stream copy"
            )
        start = candidates[-1]
        cuts.append(start)
    return cuts


def cut_segments(path: Path, cuts: list[float], out_dir: Path) -> list[Path]:
    """Stream-copy `path` into one MP4 per span between cuts (bit-exact: same input, same bytes)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    pattern = out_dir / "segment_%04d.mp4"
    args = input_args(str(path))
    # Video only: the operator microphone can carry the coach speaking through the cell's
    # speaker, and coach audio must never enter training data.
    args += ["-map", "0:v:0", "-an", "-c", "copy", "-map_metadata", "-1"]
    args += ["-fflags", "+bitexact", "-f", "segment", "-reset_timestamps", "1"]
    args += ["-segment_format", "mp4", "-segment_format_options", "movflags=+faststart"]
    if cuts:
        args += ["-segment_times", ",".join(f"{max(0.0, c - _CUT_EPSILON_S):.6f}" for c in cuts)]
    else:
        args += ["-segment_time", "1000000000"]
    try:
        run_ffmpeg([*args, str(pattern)], what=f"cutting {path.name}")
    except MediaError as error:
        raise SegmentingError(str(error)) from None
    produced = sorted(out_dir.glob("segment_*.mp4"))
    if len(produced) != len(cuts) + 1:
        raise SegmentingError(
            f"cutting {path.name}: expected {len(cuts) + 1} segments, ffmpeg wrote {len(produced)}"
        )
    return produced
