"""A declared depth object as ffmpeg reads it: frame times, size, sensor; format violations.

Read by stream copy into the packet log (nothing decoded, the same way the raw video is
probed); codec, pixel format and the stream's tags come from ffmpeg's input summary of the
same run. See ``robotrace_assets.depth`` for the format.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from robotrace_assets.media.ffmpeg import MediaError, run_ffmpeg
from robotrace_assets.media.inputs import input_args, source_label
from robotrace_assets.media.measure import declared_fps, nominal_fps
from robotrace_assets.media.probe import count_dropped_frames, packet_log_args, parse_packet_log

__all__ = [
    "CONTENT_TYPE",
    "FORMAT",
    "MODALITIES",
    "ROLE",
    "DepthError",
    "DepthStream",
    "parse_depth_stream",
    "probe_depth",
]

ROLE = "depth"
FORMAT = "robotrace-depth-mkv-v1"
CONTENT_TYPE = "video/x-matroska"
MODALITIES = ("lidar", "tof", "structured_light", "stereo")
CODEC, PIXEL_FORMAT, UNITS = "ffv1", "gray16le", "mm"
SENSOR_TAG, UNITS_TAG = "DEPTH_SENSOR", "DEPTH_UNITS"

_VIDEO_RE = re.compile(r"^\s*Stream #0:\d+.*?: Video: (?P<codec>\w+)[^,]*, (?P<pix>\w+)")
# ffmpeg's log prefixes each line with its level (and context): "[info]   Stream #0:0: ...".
_PREFIX_RE = re.compile(r"^(?:\[[^\]]*\] )+")
_TAG_RE = re.compile(r"^(?P<indent>\s+)(?P<key>[A-Za-z0-9_]+)\s*:\s?(?P<value>.*)$")


class DepthError(ValueError):
    """The depth object is not a usable depth stream; the message is safe to log."""


@dataclass(frozen=True)
class DepthStream:
    """What the depth object holds, measured from its packets."""

    modality: str
    width: int
    height: int
    fps: float  # nominal: the median frame interval, so drops do not lower it
    times: tuple[float, ...]  # presentation time of every frame, seconds on the video clock
    dropped_frames: int  # frames missing between the timestamps at the nominal rate

    @property
    def frames(self) -> int:
        return len(self.times)


def _input_summary(log: str) -> list[str]:
    """The input's lines of ffmpeg's info log (the output section repeats the tags)."""
    lines = [_PREFIX_RE.sub("", line) for line in log.splitlines()]
    end = next(
        (i for i, line in enumerate(lines) if line.startswith(("Output #", "Stream mapping"))),
        len(lines),
    )
    return lines[:end]


def _video_stream(lines: list[str]) -> tuple[str, str, dict[str, str]]:
    """Codec, pixel format and tags of the first video stream in the input summary."""
    for i, line in enumerate(lines):
        match = _VIDEO_RE.match(line)
        if match is None:
            continue
        tags: dict[str, str] = {}
        indent = len(line) - len(line.lstrip())
        for tail in lines[i + 1 :]:
            if len(tail) - len(tail.lstrip()) <= indent:
                break  # the next stream or section
            if (tag := _TAG_RE.match(tail)) and tag["key"] != "Metadata":
                tags[tag["key"].upper()] = tag["value"].strip()
        return match["codec"], match["pix"], tags
    raise DepthError("the depth object has no video stream")


def _snapped_fps(measured: float, declared: float | None) -> float:
    """Matroska's millisecond times make 30 fps measure 30.303: the declared rate wins when it
    is that close."""
    if declared and abs(measured - declared) <= 0.02 * declared:
        return declared
    return measured


def parse_depth_stream(packet_log: str, info_log: str) -> DepthStream:
    """The depth stream from a framecrc packet log and ffmpeg's info log of the same read."""
    codec, pixel_format, tags = _video_stream(_input_summary(info_log))
    if codec != CODEC or pixel_format != PIXEL_FORMAT:
        raise DepthError(
            f"depth stream is {codec}/{pixel_format}; {FORMAT} needs {CODEC}/{PIXEL_FORMAT} "
            "(lossless 16-bit millimetres)"
        )
    modality = tags.get(SENSOR_TAG, "").lower()
    if modality not in MODALITIES:
        found = f"{SENSOR_TAG}={modality!r}" if modality else f"no {SENSOR_TAG} tag"
        raise DepthError(f"depth stream has {found}; expected one of {', '.join(MODALITIES)}")
    units = tags.get(UNITS_TAG, UNITS).lower()
    if units != UNITS:
        raise DepthError(f"depth stream is in {units!r}; {FORMAT} stores millimetres ({UNITS})")
    try:
        packets = parse_packet_log(packet_log)
        times = packets.times
        if not times:
            raise DepthError("the depth stream holds no frames")
        fps = _snapped_fps(nominal_fps(times, info_log), declared_fps(info_log))
    except MediaError as error:
        raise DepthError(f"depth stream unreadable: {error}") from None
    return DepthStream(
        modality=modality,
        width=packets.width,
        height=packets.height,
        fps=fps,
        times=tuple(times),
        dropped_frames=count_dropped_frames(times, fps),
    )


def probe_depth(source: str, headers: Mapping[str, str] | None = None) -> DepthStream:
    """Probe a depth object (local path or signed URL, pinned by ``headers``): no decode."""
    try:
        run = run_ffmpeg(
            [*input_args(source, headers), *packet_log_args("-")],
            what=f"probing depth stream {source_label(source)}",
            source=source,
            loglevel="info",
        )
    except MediaError as error:
        raise DepthError(str(error)) from None
    return parse_depth_stream(run.stdout.decode("utf-8", "replace"), run.stderr)
