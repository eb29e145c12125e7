"""What goes into a LeRobot export (clips as episodes) and what comes out of it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from robotrace_assets.depth import DepthStream

__all__ = [
    "BoolArray",
    "DepthSource",
    "EpisodeSource",
    "ExportedFile",
    "FloatArray",
    "IntArray",
    "LeRobotExport",
    "LeRobotExportError",
    "ProvenanceValue",
    "ResolvedEpisode",
]

# Scalars or lists of scalars; a column whose values pyarrow cannot type uniformly is stored as
# text rather than dropped.
ProvenanceValue = Any
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class LeRobotExportError(RuntimeError):
    """The dataset could not be exported; nothing was left at the destination."""


@dataclass(frozen=True)
class DepthSource:
    """Where a clip's depth stream (``robotrace_assets.depth``'s format) is read from.

    ``label`` names it in messages and identifies it (clips of one segment share it): an
    object key or a file name, never a signed URL. ``locate`` gives what to open and the
    headers to send, afresh for each read: a short-lived signed URL pinned to the proven ETag
    (If-Match), or a local path with no headers.
    """

    label: str
    locate: Callable[[], tuple[str, Mapping[str, str]]] = field(repr=False)
    # The stream as the depth derivative already measured it (its catalog record), so the export
    # does not read the whole object once more to probe it; None: probe it.
    measured: DepthStream | None = field(default=None, repr=False)

    @classmethod
    def local(cls, path: Path) -> DepthSource:
        """A depth file on disk (tests, local exports)."""
        return cls(str(path), lambda: (str(path), {}))


@dataclass(frozen=True)
class EpisodeSource:
    """One clip to deliver as one LeRobot episode.

    The clip is the window ``[start_s, end_s)`` of ``video_path``. ``trajectory`` holds the
    source segment's samples (``host_time_ns``, ``device_time_ns``, ``ee_x/y/z``,
    ``joint_0..``, optional ``force_x/y/z``); its first sample's host time is video time 0.
    ``metadata`` (provenance such as segment_id, consent_receipt_id, license_scope_id,
    safety_rules_version) becomes columns of the episodes table. ``labels`` is the source
    segment's label track (derivatives/labels.py, timestamps in video time): when given, each
    frame's task is the ``task_step`` at its instant (``task`` where no step covers it);
    without it every frame has ``task``. ``depth`` is the segment's depth stream (times on the
    same video clock), read only when the export includes depth.
    """

    clip_id: str
    task: str
    video_path: Path
    start_s: float
    end_s: float
    trajectory: pa.Table
    metadata: Mapping[str, ProvenanceValue] = field(default_factory=dict)
    labels: pa.Table | None = None
    depth: DepthSource | None = None


@dataclass(frozen=True)
class ExportedFile:
    """A file of the export, by path relative to the dataset root (POSIX separators)."""

    path: str
    size_bytes: int
    sha256: str


@dataclass(frozen=True)
class LeRobotExport:
    """What ``export_lerobot`` wrote."""

    root: Path
    files: tuple[ExportedFile, ...]
    total_episodes: int
    total_frames: int
    total_tasks: int
    fps: int
    video_key: str
    # (height, width) of observation.depth; None: the export has no depth.
    depth_shape: tuple[int, int] | None = None

    @property
    def episodes(self) -> int:
        """Alias of ``total_episodes``."""
        return self.total_episodes

    @property
    def frames(self) -> int:
        """Alias of ``total_frames``."""
        return self.total_frames

    def file(self, path: str) -> ExportedFile:
        """The entry for ``path`` (relative, POSIX), or KeyError."""
        for entry in self.files:
            if entry.path == path:
                return entry
        raise KeyError(path)


@dataclass
class ResolvedEpisode:
    """An episode resolved against its sources: sampled rows plus where it will be stored."""

    source: EpisodeSource
    episode_index: int
    task_index: int
    length: int
    # Columns sampled on the frame grid (see trajectory.sample_trajectory).
    state: FloatArray
    force: FloatArray | None
    host_time_ns: IntArray
    device_time_ns: IntArray
    file_number: int = 0
    dataset_from: int = 0
    # First frame of this episode inside its video file.
    video_from_frame: int = 0
    # Per-frame task_index from the label track; None: every frame has ``task_index``.
    task_indices: IntArray | None = None
    # The episode's distinct task indices in order of first appearance.
    episode_tasks: tuple[int, ...] = ()
    # Per frame, the stored depth frame aligned to it (-1: none, the sensor dropped it);
    # None when the export has no depth.
    depth_index: IntArray | None = None
