"""Depth maps of a LeRobot export: each episode frame matched to the clip's depth stream.

Frame ``k`` of an episode is the instant ``start_s + k / fps`` on the video clock, the clock the
depth stream's timestamps are on. ``align_depth`` gives each instant the nearest stored depth
frame within half a depth period; an instant the sensor left without one (a dropped frame, or
past the stream's end) gets an all-zero map and ``observation.depth_valid`` False, never a
neighbour's map. Maps are the stored millimetres, bit for bit (the format is lossless).

Each depth source is probed once (no decode). Its frames are decoded when an episode's data
is written, and the last decoded source is kept: clips arrive grouped by segment, so each
segment's stream is decoded about once and memory holds one segment's maps at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from robotrace_assets.delivery.lerobot.model import (
    DepthSource,
    EpisodeSource,
    LeRobotExportError,
    ResolvedEpisode,
)
from robotrace_assets.depth import DepthError, DepthStream, align_depth, probe_depth
from robotrace_assets.depth.frames import iter_depth_frames

__all__ = ["DepthMaps", "DepthStreams", "depth_array"]

DepthMaps = npt.NDArray[np.uint16]


def depth_array(maps: DepthMaps) -> pa.FixedSizeListArray:
    """(n, height, width) maps as n nested fixed-size lists (height lists of width values):
    the layout ``datasets.Array2D`` casts from, with the map's shape in the column type."""
    _, height, width = maps.shape
    flat = pa.array(np.ascontiguousarray(maps, dtype=np.uint16).reshape(-1), type=pa.uint16())
    return pa.FixedSizeListArray.from_arrays(pa.FixedSizeListArray.from_arrays(flat, width), height)


def _unreadable(clip_id: str, source: DepthSource, error: DepthError) -> LeRobotExportError:
    # DepthError messages never carry the signed URL; the label is the object key.
    return LeRobotExportError(f"clip {clip_id}: depth stream {source.label}: {error}")


class DepthStreams:
    """The depth sources of one export: probed once each, decoded one at a time."""

    def __init__(self) -> None:
        self._probes: dict[str, DepthStream] = {}
        self._decoded: tuple[str, DepthMaps] | None = None

    def _probe(self, clip_id: str, source: DepthSource) -> DepthStream:
        if source.label not in self._probes:
            self._probes[source.label] = source.measured or self._read(clip_id, source)
        return self._probes[source.label]

    @staticmethod
    def _read(clip_id: str, source: DepthSource) -> DepthStream:
        try:
            location, headers = source.locate()
            return probe_depth(location, headers)
        except DepthError as error:
            raise _unreadable(clip_id, source, error) from None

    def shape(self, episodes: Sequence[EpisodeSource]) -> tuple[int, int]:
        """(height, width) of every clip's depth map. Refuses a clip whose segment has no
        depth stream (the export never fills a clip with zeros it did not measure) and maps
        of another size than the first clip's (one feature, one shape)."""
        shape: tuple[int, int] | None = None
        for source in episodes:
            if source.depth is None:
                raise LeRobotExportError(
                    f"clip {source.clip_id}: its segment has no depth stream; an export with "
                    "depth needs one for every clip (export without depth, or leave it out)"
                )
            stream = self._probe(source.clip_id, source.depth)
            these = (stream.height, stream.width)
            if shape is None:
                shape = these
            elif these != shape:
                raise LeRobotExportError(
                    f"clip {source.clip_id}: depth maps are {these[1]}x{these[0]}, the first"
                    f" clip's are {shape[1]}x{shape[0]}; one depth feature needs one map size"
                )
        assert shape is not None  # _check_arguments refuses an empty export
        return shape

    def align(self, source: EpisodeSource, length: int, fps: int) -> npt.NDArray[np.int64]:
        """Per frame of the episode, the index of the stored depth frame at its instant, or
        -1 where the sensor has none."""
        assert source.depth is not None
        stream = self._probe(source.clip_id, source.depth)
        instants = source.start_s + np.arange(length, dtype=np.float64) / fps
        return align_depth(stream, instants).depth_index

    def _frames(self, clip_id: str, source: DepthSource) -> DepthMaps:
        if self._decoded is not None and self._decoded[0] == source.label:
            return self._decoded[1]
        self._decoded = None  # free the previous segment's maps before decoding the next
        stream = self._probe(clip_id, source)
        try:
            location, headers = source.locate()
            parts = list(iter_depth_frames(location, stream.width, stream.height, headers))
        except DepthError as error:
            raise LeRobotExportError(
                f"clip {clip_id}: depth stream {source.label}: {error}"
            ) from None
        frames = (
            np.concatenate(parts)
            if parts
            else np.zeros((0, stream.height, stream.width), dtype=np.uint16)
        )
        if frames.shape[0] != stream.frames:
            raise LeRobotExportError(
                f"clip {clip_id}: depth stream {source.label} decodes to {frames.shape[0]} "
                f"frames, its packets say {stream.frames}"
            )
        self._decoded = (source.label, frames)
        return frames

    def maps(self, ep: ResolvedEpisode, shape: tuple[int, int]) -> DepthMaps:
        """The episode's maps: the aligned stored frame, or zeros where there is none."""
        assert ep.source.depth is not None and ep.depth_index is not None
        frames = self._frames(ep.source.clip_id, ep.source.depth)
        out = np.zeros((ep.length, *shape), dtype=np.uint16)
        valid = ep.depth_index >= 0
        out[valid] = frames[ep.depth_index[valid]]
        return out
