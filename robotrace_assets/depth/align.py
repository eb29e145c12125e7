"""Depth frames matched to video frames on the shared capture clock (plain numpy).

Each video frame takes the nearest depth frame when one lies within half a depth frame period
(plus the container's millisecond rounding): a sensor at half the camera's rate serves two
video frames a depth frame, and a depth frame the sensor dropped leaves its video frames
without depth rather than borrowing a stale one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from robotrace_assets.depth.stream import DepthStream

__all__ = ["DEPTH_INDEX_SCHEMA", "DepthAlignment", "align_depth"]

# Matroska stores times in milliseconds: a frame may sit up to half of one off its grid.
_ROUNDING_S = 0.0011

DEPTH_INDEX_SCHEMA = pa.schema(
    [
        pa.field("frame_index", pa.int64(), nullable=False),  # video frame
        pa.field("timestamp_s", pa.float64(), nullable=False),  # video frame time
        pa.field("depth_frame_index", pa.int64()),  # null: no depth frame near this frame
        pa.field("depth_timestamp_s", pa.float64()),
        pa.field("offset_ms", pa.float64()),  # depth time - video time
    ]
)


@dataclass(frozen=True)
class DepthAlignment:
    """The depth stream against the video frames it accompanies."""

    stream: DepthStream
    video_times: npt.NDArray[np.float64]
    depth_index: npt.NDArray[np.int64]  # per video frame; -1 where no depth frame is near
    tolerance_s: float

    @property
    def aligned_video_frames(self) -> int:
        return int(np.count_nonzero(self.depth_index >= 0))

    @property
    def unaligned_video_frames(self) -> int:
        return int(self.video_times.size - self.aligned_video_frames)

    @property
    def offsets_s(self) -> npt.NDArray[np.float64]:
        matched = self.depth_index >= 0
        depth = np.asarray(self.stream.times, dtype=np.float64)
        return depth[self.depth_index[matched]] - self.video_times[matched]

    @property
    def max_offset_ms(self) -> float:
        offsets = self.offsets_s
        return round(float(np.abs(offsets).max()) * 1000, 3) if offsets.size else 0.0

    def frames_between(self, start_s: float, end_s: float) -> int:
        """Depth frames captured in [start_s, end_s) on the video clock (a clip's window)."""
        times = np.asarray(self.stream.times, dtype=np.float64)
        return int(np.count_nonzero((times >= start_s) & (times < end_s)))

    def summary(self) -> dict[str, object]:
        """The JSON-friendly facts a record, an event and a clip carry."""
        return {
            "modality": self.stream.modality,
            "frames": self.stream.frames,
            "fps": self.stream.fps,
            "width": self.stream.width,
            "height": self.stream.height,
            "dropped_frames": self.stream.dropped_frames,
            "video_frames": int(self.video_times.size),
            "aligned_video_frames": self.aligned_video_frames,
            "unaligned_video_frames": self.unaligned_video_frames,
            "max_offset_ms": self.max_offset_ms,
        }

    def index_table(self) -> pa.Table:
        """One row per video frame: the depth frame it shows, if any, and how far off."""
        matched = self.depth_index >= 0
        depth_times = np.asarray(self.stream.times, dtype=np.float64)
        picked = np.where(matched, self.depth_index, 0)
        at = depth_times[picked] if depth_times.size else np.zeros(picked.size)
        return pa.table(
            {
                "frame_index": np.arange(self.video_times.size, dtype=np.int64),
                "timestamp_s": self.video_times,
                "depth_frame_index": pa.array(self.depth_index, mask=~matched),
                "depth_timestamp_s": pa.array(at, mask=~matched),
                "offset_ms": pa.array((at - self.video_times) * 1000, mask=~matched),
            },
            schema=DEPTH_INDEX_SCHEMA,
        )


def align_depth(stream: DepthStream, video_times: npt.ArrayLike) -> DepthAlignment:
    """Match every video frame (``video_times``: seconds on the shared clock) to depth."""
    video = np.asarray(video_times, dtype=np.float64)
    depth = np.asarray(stream.times, dtype=np.float64)
    tolerance = 0.5 / stream.fps + _ROUNDING_S
    if not depth.size:
        index = np.full(video.size, -1, dtype=np.int64)
        return DepthAlignment(stream, video, index, tolerance)
    after = np.clip(np.searchsorted(depth, video), 0, depth.size - 1)
    before = np.clip(after - 1, 0, depth.size - 1)
    nearest = np.where(np.abs(depth[before] - video) <= np.abs(depth[after] - video), before, after)
    near = np.abs(depth[nearest] - video) <= tolerance
    index = np.where(near, nearest, -1).astype(np.int64)
    return DepthAlignment(stream, video, index, tolerance)
