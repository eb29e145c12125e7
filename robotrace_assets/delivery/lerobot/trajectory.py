"""Episode windows and the robot trajectory sampled onto an episode's frame grid."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from robotrace_assets.delivery.lerobot.layout import FORCE_COLUMNS, JOINT_RE, POSITION_COLUMNS
from robotrace_assets.delivery.lerobot.model import (
    EpisodeSource,
    FloatArray,
    IntArray,
    LeRobotExportError,
)
from robotrace_assets.delivery.lerobot.video import SourceVideo

__all__ = ["check_episode_window", "frame_count", "sample_trajectory", "state_layout"]

_NS_PER_S = 1_000_000_000
# Fuzz for "how many frame instants fit in [start, end)" so 1.5 s at 30 fps is 45, not 46.
_FRAME_COUNT_EPS = 1e-6
# A clip may end this far past the last source frame's display interval (float rounding).
_WINDOW_SLACK_S = 1e-3


def frame_count(start_s: float, end_s: float, fps: int) -> int:
    """Frame instants ``start_s + k / fps`` that fall inside ``[start_s, end_s)``."""
    return math.ceil((end_s - start_s) * fps - _FRAME_COUNT_EPS)


def _joint_columns(table: pa.Table) -> list[str]:
    joints = [(int(m.group(1)), name) for name in table.column_names if (m := JOINT_RE.match(name))]
    return [name for _, name in sorted(joints)]


def _column(table: pa.Table, name: str) -> FloatArray:
    return np.asarray(table.column(name).to_numpy(), dtype=np.float64)


def state_layout(episodes: Sequence[EpisodeSource]) -> tuple[list[str], bool]:
    """Joint columns shared by every trajectory, and whether all of them carry force."""
    required = {"host_time_ns", "device_time_ns", *POSITION_COLUMNS}
    joints: list[str] | None = None
    with_force = True
    for source in episodes:
        names = set(source.trajectory.column_names)
        missing = required - names
        if missing:
            raise LeRobotExportError(
                f"clip {source.clip_id}: trajectory lacks columns {sorted(missing)}"
            )
        these = _joint_columns(source.trajectory)
        if joints is None:
            joints = these
        elif these != joints:
            raise LeRobotExportError(
                f"clip {source.clip_id}: joints {these} differ from the first clip's {joints}"
            )
        with_force &= set(FORCE_COLUMNS) <= names
    assert joints is not None
    return joints, with_force


def check_episode_window(source: EpisodeSource, video: SourceVideo, fps: int) -> int:
    """The episode's frame count, once its window, task and video agree."""
    where = f"clip {source.clip_id}"
    if not (math.isfinite(source.start_s) and math.isfinite(source.end_s)):
        raise LeRobotExportError(f"{where}: window bounds must be finite")
    if source.start_s < 0 or source.end_s <= source.start_s:
        raise LeRobotExportError(f"{where}: invalid window [{source.start_s}, {source.end_s}) s")
    if source.end_s > video.duration_s + _WINDOW_SLACK_S:
        raise LeRobotExportError(
            f"{where}: window [{source.start_s}, {source.end_s}) s is outside the video"
            f" {source.video_path} ({video.duration_s:.6f} s long)"
        )
    if not source.task.strip():
        raise LeRobotExportError(f"{where}: task must be a non-empty string")
    length = frame_count(source.start_s, source.end_s, fps)
    if length < 1:
        raise LeRobotExportError(f"{where}: window is shorter than one frame at {fps} fps")
    return length


def _host_times(source: EpisodeSource) -> tuple[IntArray, IntArray]:
    """Host and device clocks of the log, checked to be non-empty and strictly increasing."""
    table = source.trajectory
    where = f"clip {source.clip_id}"
    if table.num_rows == 0:
        raise LeRobotExportError(f"{where}: empty trajectory window (trajectory has no rows)")
    host = np.asarray(table.column("host_time_ns").to_numpy(), dtype=np.int64)
    device = np.asarray(table.column("device_time_ns").to_numpy(), dtype=np.int64)
    if host.size > 1 and not np.all(np.diff(host) > 0):
        raise LeRobotExportError(f"{where}: trajectory host_time_ns is not strictly increasing")
    return host, device


def _frame_times(source: EpisodeSource, host_rel: FloatArray, length: int, fps: int) -> IntArray:
    """Frame instants in ns relative to the log's first sample, all inside the log."""
    where = f"clip {source.clip_id}"
    start_ns, end_ns = source.start_s * _NS_PER_S, source.end_s * _NS_PER_S
    if not np.any((host_rel >= start_ns) & (host_rel < end_ns)):
        raise LeRobotExportError(
            f"{where}: empty trajectory window: no samples in [{source.start_s}, {source.end_s})"
            f" s (trajectory spans 0..{host_rel[-1] / _NS_PER_S:.6f} s)"
        )
    frame_rel_ns = np.rint(
        (source.start_s + np.arange(length, dtype=np.float64) / fps) * _NS_PER_S
    ).astype(np.int64)
    if frame_rel_ns[0] < host_rel[0] or frame_rel_ns[-1] > host_rel[-1]:
        raise LeRobotExportError(
            f"{where}: trajectory (0..{host_rel[-1] / _NS_PER_S:.6f} s) does not cover the frames"
            f" at {frame_rel_ns[0] / _NS_PER_S:.6f}..{frame_rel_ns[-1] / _NS_PER_S:.6f} s"
        )
    return frame_rel_ns


def sample_trajectory(
    source: EpisodeSource, length: int, fps: int, joints: Sequence[str], with_force: bool
) -> tuple[FloatArray, FloatArray | None, IntArray, IntArray]:
    """State, force, host and device time on the episode's frame grid, by linear interpolation
    in host time. Raises when the log does not cover every frame instant (no extrapolation)."""
    table = source.trajectory
    host, device = _host_times(source)
    # Relative ns stay exact in float64 (< 2**53 ns ~ 104 days); absolute epoch ns would not.
    host_rel = (host - host[0]).astype(np.float64)
    device_rel = (device - device[0]).astype(np.float64)
    frame_rel_ns = _frame_times(source, host_rel, length, fps)
    t = frame_rel_ns.astype(np.float64)
    state_cols = [*POSITION_COLUMNS, *joints]
    state = np.stack([np.interp(t, host_rel, _column(table, c)) for c in state_cols], axis=1)
    force = (
        np.stack([np.interp(t, host_rel, _column(table, c)) for c in FORCE_COLUMNS], axis=1)
        if with_force
        else None
    )
    host_ns = host[0] + frame_rel_ns
    device_ns = device[0] + np.rint(np.interp(t, host_rel, device_rel)).astype(np.int64)
    return state, force, host_ns, device_ns
