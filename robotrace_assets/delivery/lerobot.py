"""Export reviewed clips as a LeRobot v3.0 dataset, and check such a dataset as a loader would.

Layout (LeRobot ``codebase_version`` "v3.0": many episodes per file)::

    meta/info.json                                  fps, totals, path templates, features
    meta/stats.json                                 per-feature min/max/mean/std/count(/q..)
    meta/tasks.parquet                              task (index) -> task_index
    meta/episodes/chunk-000/file-000.parquet        one row per episode (+ provenance)
    data/chunk-CCC/file-FFF.parquet                 one row per video frame
    videos/{video_key}/chunk-CCC/file-FFF.mp4       the same episodes, back to back

Time model: every episode is resampled onto one constant frame grid. Frame ``k`` of an episode
is the source video at ``start_s + k / fps`` and its ``timestamp`` is exactly ``k / fps``
(float32), so LeRobot's 1e-4 s tolerance can never trip on capture jitter. The robot's own
clock is interpolated onto the same instants and kept in ``device_time_ns``; it is evidence,
never a timestamp. ``action`` is the next frame's observed state (the log has no commands);
the last frame of an episode holds its own state rather than borrowing data past the clip.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from robotrace_assets.capture.media import (
    MediaError,
    ffmpeg_exe,
    probe_packet_times,
    probe_video_stream,
    run_ffmpeg,
    stderr_tail,
)

__all__ = [
    "CODEBASE_VERSION",
    "DATA_PATH",
    "EPISODES_PATH",
    "INFO_PATH",
    "STATS_PATH",
    "TASKS_PATH",
    "TIMESTAMP_TOLERANCE_S",
    "VIDEO_PATH",
    "EpisodeSource",
    "ExportedFile",
    "LeRobotExport",
    "LeRobotExportError",
    "export_lerobot",
    "validate_lerobot",
]

CODEBASE_VERSION = "v3.0"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
EPISODES_DIR = "meta/episodes"
DATA_DIR = "data"
_CHUNK_FILE = "chunk-{chunk_index:03d}/file-{file_index:03d}"
EPISODES_PATH = f"{EPISODES_DIR}/{_CHUNK_FILE}.parquet"
DATA_PATH = f"{DATA_DIR}/{_CHUNK_FILE}.parquet"
VIDEO_PATH = "videos/{video_key}/" + _CHUNK_FILE + ".mp4"

# LeRobotDataset's default tolerance_s: the loader rejects data timestamps and decoded video
# frames that are further than this from the k / fps grid.
TIMESTAMP_TOLERANCE_S = 1e-4
# Informational size caps LeRobot writes into info.json; we split files by episode count, and
# the recorder only reads these when appending to the dataset.
_DATA_FILES_SIZE_IN_MB = 100
_VIDEO_FILES_SIZE_IN_MB = 500

# LeRobot encodes with a GOP of 2 so a random-access query decodes at most one extra frame;
# no B-frames keeps pts == dts, so packet timestamps are exactly the frame grid.
_GOP = 2
_CRF = 23
_X264_PRESET = "veryfast"
_PIX_FMT = "yuv420p"
_FFMPEG_TIMEOUT_S = 3600.0
_STDERR_TAIL_CHARS = 2000
_NS_PER_S = 1_000_000_000
# Fuzz for "how many frame instants fit in [start, end)" so 1.5 s at 30 fps is 45, not 46.
_FRAME_COUNT_EPS = 1e-6
# A clip may end this far past the last source frame's display interval (float rounding).
_WINDOW_SLACK_S = 1e-3

# Image stats as LeRobot computes them: up to 100 sampled frames per episode, downsampled to
# ~150 px when the long side is >= 300 px, per-channel values in [0, 1].
_STATS_MIN_SAMPLES = 100
_STATS_MAX_SAMPLES = 10_000
_STATS_POWER = 0.75
_STATS_TARGET_PX = 150
_STATS_DOWNSAMPLE_FROM_PX = 300
_QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}

STATE_KEY = "observation.state"
ACTION_KEY = "action"
FORCE_KEY = "observation.force"
_POSITION_COLUMNS = ("ee_x", "ee_y", "ee_z")
_FORCE_COLUMNS = ("force_x", "force_y", "force_z")
_JOINT_RE = re.compile(r"^joint_(\d+)$")
_CHUNK_FILE_RE = re.compile(r"chunk-(\d+)/file-(\d+)\.parquet$")

# Scalars or lists of scalars; a column whose values pyarrow cannot type uniformly is stored as
# text rather than dropped.
ProvenanceValue = Any
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class LeRobotExportError(RuntimeError):
    """The dataset could not be exported; nothing was left at the destination."""


@dataclass(frozen=True)
class EpisodeSource:
    """One clip to deliver as one LeRobot episode.

    The clip is the window ``[start_s, end_s)`` of ``video_path``. ``trajectory`` holds the
    source segment's samples (``host_time_ns``, ``device_time_ns``, ``ee_x/y/z``,
    ``joint_0..``, optional ``force_x/y/z``); its first sample's host time is video time 0.
    ``metadata`` (provenance such as segment_id, consent_receipt_id, license_scope_id,
    safety_rules_version) becomes columns of the episodes table.
    """

    clip_id: str
    task: str
    video_path: Path
    start_s: float
    end_s: float
    trajectory: pa.Table
    metadata: Mapping[str, ProvenanceValue] = field(default_factory=dict)


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


# Episode columns we write ourselves; provenance keys may not shadow them.
_RESERVED_EPISODE_COLUMNS = frozenset(
    {
        "episode_index",
        "tasks",
        "length",
        "data/chunk_index",
        "data/file_index",
        "dataset_from_index",
        "dataset_to_index",
        "meta/episodes/chunk_index",
        "meta/episodes/file_index",
        "clip_id",
        "clip_start_s",
        "clip_end_s",
    }
)


@dataclass(frozen=True)
class _SourceVideo:
    """Facts about a source MP4 measured once per path."""

    duration_s: float
    width: int
    height: int


@dataclass
class _Episode:
    """An episode resolved against its sources: sampled rows plus where it will be stored."""

    source: EpisodeSource
    episode_index: int
    task_index: int
    length: int
    # Columns sampled on the frame grid (see _sample_trajectory).
    state: FloatArray
    force: FloatArray | None
    host_time_ns: IntArray
    device_time_ns: IntArray
    file_number: int = 0
    dataset_from: int = 0
    # First frame of this episode inside its video file.
    video_from_frame: int = 0


# --------------------------------------------------------------------------------------------
# ffmpeg helpers


def _run_ffmpeg(args: Sequence[str], *, what: str) -> subprocess.CompletedProcess[bytes]:
    return run_ffmpeg(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", *args],
        what=what,
        error=LeRobotExportError,
        timeout_s=_FFMPEG_TIMEOUT_S,
    )


def _probe_source(path: Path) -> _SourceVideo:
    try:
        times = probe_packet_times(path)
        stream = probe_video_stream(path)
    except MediaError as exc:
        raise LeRobotExportError(f"cannot read source video {path}: {exc}") from exc
    if not times:
        raise LeRobotExportError(f"source video {path} has no video frames")
    # The last frame is displayed for one nominal interval; estimate it from the median gap.
    frame_s = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    return _SourceVideo(times[-1] + frame_s, stream.width, stream.height)


# --------------------------------------------------------------------------------------------
# Episodes: windows, trajectory sampling


def _frame_count(start_s: float, end_s: float, fps: int) -> int:
    """Frame instants ``start_s + k / fps`` that fall inside ``[start_s, end_s)``."""
    return math.ceil((end_s - start_s) * fps - _FRAME_COUNT_EPS)


def _joint_columns(table: pa.Table) -> list[str]:
    joints = [
        (int(m.group(1)), name) for name in table.column_names if (m := _JOINT_RE.match(name))
    ]
    return [name for _, name in sorted(joints)]


def _column(table: pa.Table, name: str) -> FloatArray:
    return np.asarray(table.column(name).to_numpy(), dtype=np.float64)


def _sample_trajectory(
    source: EpisodeSource, length: int, fps: int, joints: Sequence[str], with_force: bool
) -> tuple[FloatArray, FloatArray | None, IntArray, IntArray]:
    """State, force, host and device time on the episode's frame grid, by linear interpolation
    in host time. Raises when the log does not cover every frame instant (no extrapolation)."""
    table = source.trajectory
    where = f"clip {source.clip_id}"
    if table.num_rows == 0:
        raise LeRobotExportError(f"{where}: empty trajectory window (trajectory has no rows)")
    host = np.asarray(table.column("host_time_ns").to_numpy(), dtype=np.int64)
    device = np.asarray(table.column("device_time_ns").to_numpy(), dtype=np.int64)
    if host.size > 1 and not np.all(np.diff(host) > 0):
        raise LeRobotExportError(f"{where}: trajectory host_time_ns is not strictly increasing")
    # Relative ns stay exact in float64 (< 2**53 ns ~ 104 days); absolute epoch ns would not.
    host_rel = (host - host[0]).astype(np.float64)
    device_rel = (device - device[0]).astype(np.float64)

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
    t = frame_rel_ns.astype(np.float64)
    state_cols = [*_POSITION_COLUMNS, *joints]
    state = np.stack([np.interp(t, host_rel, _column(table, c)) for c in state_cols], axis=1)
    force = (
        np.stack([np.interp(t, host_rel, _column(table, c)) for c in _FORCE_COLUMNS], axis=1)
        if with_force
        else None
    )
    host_ns = host[0] + frame_rel_ns
    device_ns = device[0] + np.rint(np.interp(t, host_rel, device_rel)).astype(np.int64)
    return state, force, host_ns, device_ns


def _check_episode_source(source: EpisodeSource, video: _SourceVideo, fps: int) -> int:
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
    length = _frame_count(source.start_s, source.end_s, fps)
    if length < 1:
        raise LeRobotExportError(f"{where}: window is shorter than one frame at {fps} fps")
    return length


# --------------------------------------------------------------------------------------------
# Video


def _encode_video_file(
    episodes: Sequence[_Episode], out_path: Path, fps: int, width: int, height: int
) -> None:
    """Cut every episode's window, resample to constant ``fps`` and encode them back to back.

    One ffmpeg run per output file: each input is seeked to its window (accurate seek, so the
    first kept frame is the first at or after start_s), forced onto the fps grid (dropped
    source frames are filled by repeating the previous one), padded by cloning the last frame
    if the source runs short, cut to exactly ``length`` frames and re-stamped ``n / fps``.
    """
    args: list[str] = ["-loglevel", "error", "-y"]
    chains: list[str] = []
    for i, ep in enumerate(episodes):
        # Read a little past the window so fps rounding never starves the last frame.
        read_s = ep.length / fps + 1.0
        args += ["-ss", f"{ep.source.start_s:.6f}", "-t", f"{read_s:.6f}"]
        args += ["-i", str(ep.source.video_path)]
        chains.append(
            f"[{i}:v:0]fps={fps},tpad=stop_mode=clone:stop={ep.length},"
            f"trim=end_frame={ep.length},setpts=N/({fps}*TB),"
            f"scale={width}:{height},setsar=1[v{i}]"
        )
    joined = "".join(f"[v{i}]" for i in range(len(episodes)))
    # Re-stamp after concat too: frame n of the file is at n / fps, whatever durations concat
    # inferred for segment ends.
    chains.append(
        f"{joined}concat=n={len(episodes)}:v=1:a=0,setpts=N/({fps}*TB),format={_PIX_FMT}[out]"
    )
    args += [
        "-filter_complex",
        ";".join(chains),
        "-map",
        "[out]",
        "-an",
        "-sn",
        "-dn",
        "-c:v",
        "libx264",
        "-preset",
        _X264_PRESET,
        "-crf",
        str(_CRF),
        "-g",
        str(_GOP),
        "-bf",
        "0",
        "-pix_fmt",
        _PIX_FMT,
        # Timestamps are already exact; passthrough guarantees ffmpeg neither dups nor drops.
        "-fps_mode",
        "passthrough",
        "-movflags",
        "+faststart",
        "-map_metadata",
        "-1",
        "-f",
        "mp4",
        str(out_path),
    ]
    _run_ffmpeg(args, what=f"encoding {out_path.name}")

    try:
        times = probe_packet_times(out_path)
    except MediaError as exc:
        raise LeRobotExportError(f"cannot probe encoded video {out_path}: {exc}") from exc
    expected = sum(ep.length for ep in episodes)
    grid = np.arange(expected) / fps
    if len(times) != expected or np.max(np.abs(np.asarray(times) - grid)) > TIMESTAMP_TOLERANCE_S:
        raise LeRobotExportError(
            f"encoded {out_path.name} has {len(times)} frames off the 1/{fps} s grid;"
            f" expected {expected} on it"
        )


def _estimate_num_samples(length: int) -> int:
    low = min(_STATS_MIN_SAMPLES, length)
    return max(low, min(int(length**_STATS_POWER), _STATS_MAX_SAMPLES))


def _stats_frame_size(width: int, height: int) -> tuple[int, int]:
    long_side = max(width, height)
    if long_side < _STATS_DOWNSAMPLE_FROM_PX:
        return width, height
    factor = max(1, int(long_side / _STATS_TARGET_PX))
    return max(1, width // factor), max(1, height // factor)


def _video_episode_stats(
    path: Path, episodes: Sequence[_Episode], width: int, height: int
) -> list[dict[str, np.ndarray]]:
    """Per-episode pixel stats (LeRobot image stats: shape (3, 1, 1), values in [0, 1]).

    Decodes the whole file once, streaming, and keeps only the sampled frames; a decode error
    fails the export (the file would not load either).
    """
    sw, sh = _stats_frame_size(width, height)
    frame_bytes = sw * sh * 3
    wanted: dict[int, int] = {}  # file frame -> position in `episodes`
    for pos, ep in enumerate(episodes):
        picks = np.round(np.linspace(0, ep.length - 1, _estimate_num_samples(ep.length)))
        for k in np.unique(picks.astype(np.int64)):
            wanted[ep.video_from_frame + int(k)] = pos
    samples: list[list[np.ndarray]] = [[] for _ in episodes]
    cmd = [
        ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-i",
        str(path),
        "-map",
        "0:v:0",
        "-vf",
        f"scale={sw}:{sh}:flags=neighbor",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-",
    ]
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err
            )
        except OSError as exc:
            raise LeRobotExportError(f"decoding {path.name}: could not run ffmpeg: {exc}") from exc
        assert proc.stdout is not None
        frame = 0
        try:
            while chunk := proc.stdout.read(frame_bytes):
                if len(chunk) != frame_bytes:
                    break
                pos = wanted.get(frame)
                if pos is not None:
                    pixels = np.frombuffer(chunk, dtype=np.uint8).reshape(sh, sw, 3)
                    samples[pos].append(pixels)
                frame += 1
        finally:
            proc.stdout.close()
            code = proc.wait(timeout=_FFMPEG_TIMEOUT_S)
        err.seek(0)
        stderr = err.read()
    if code != 0 or stderr.strip():
        raise LeRobotExportError(
            f"decoding {path.name} failed (exit {code}):\n{stderr_tail(stderr)}"
        )
    stats = []
    for ep, frames in zip(episodes, samples, strict=True):
        if not frames:
            raise LeRobotExportError(
                f"decoding {path.name}: no frames for episode {ep.episode_index}"
            )
        # (n, h, w, c) -> per channel over (n, h, w), kept as (c, 1, 1) like LeRobot.
        pixels = np.stack(frames).astype(np.float64) / 255.0
        stats.append(
            {
                "min": pixels.min(axis=(0, 1, 2)).reshape(3, 1, 1),
                "max": pixels.max(axis=(0, 1, 2)).reshape(3, 1, 1),
                "mean": pixels.mean(axis=(0, 1, 2)).reshape(3, 1, 1),
                "std": pixels.std(axis=(0, 1, 2)).reshape(3, 1, 1),
                "count": np.array([len(frames)]),
            }
        )
    return stats


# --------------------------------------------------------------------------------------------
# Stats


def _numeric_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """LeRobot numeric stats over the frame axis: per-dimension arrays, ``count`` as ``[n]``."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    stats = {
        "min": arr.min(axis=0),
        "max": arr.max(axis=0),
        "mean": arr.mean(axis=0),
        "std": arr.std(axis=0),
        "count": np.array([arr.shape[0]]),
    }
    for name, q in _QUANTILES.items():
        stats[name] = np.quantile(arr, q, axis=0)
    return stats


def _aggregate_image_stats(parts: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Combine per-episode image stats: count-weighted mean, pooled variance, min/max."""
    counts = np.array([p["count"][0] for p in parts], dtype=np.float64)
    total = counts.sum()
    means = np.stack([p["mean"] for p in parts])
    weights = counts.reshape(-1, 1, 1, 1)
    mean = (means * weights).sum(axis=0) / total
    var = ((np.stack([p["std"] for p in parts]) ** 2 + (means - mean) ** 2) * weights).sum(
        axis=0
    ) / total
    return {
        "min": np.min(np.stack([p["min"] for p in parts]), axis=0),
        "max": np.max(np.stack([p["max"] for p in parts]), axis=0),
        "mean": mean,
        "std": np.sqrt(var),
        "count": np.array([int(total)]),
    }


def _jsonable(stats: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, dict[str, Any]]:
    return {key: {k: np.asarray(v).tolist() for k, v in s.items()} for key, s in stats.items()}


# --------------------------------------------------------------------------------------------
# Writing


def _features(
    state_names: Sequence[str], with_force: bool, video_key: str, fps: int, width: int, height: int
) -> dict[str, dict[str, Any]]:
    dim = len(state_names)
    features: dict[str, dict[str, Any]] = {
        STATE_KEY: {"dtype": "float32", "shape": [dim], "names": list(state_names)},
        ACTION_KEY: {"dtype": "float32", "shape": [dim], "names": list(state_names)},
    }
    if with_force:
        features[FORCE_KEY] = {"dtype": "float32", "shape": [3], "names": list(_FORCE_COLUMNS)}
    features[video_key] = {
        "dtype": "video",
        "shape": [height, width, 3],
        "names": ["height", "width", "channels"],
        "info": {
            "video.height": height,
            "video.width": width,
            "video.codec": "h264",
            "video.pix_fmt": _PIX_FMT,
            "video.is_depth_map": False,
            "video.fps": fps,
            "video.channels": 3,
            "has_audio": False,
        },
    }
    # Both clocks are kept for audit; neither is the LeRobot timestamp.
    features["device_time_ns"] = {"dtype": "int64", "shape": [1], "names": None}
    features["host_time_ns"] = {"dtype": "int64", "shape": [1], "names": None}
    for name, dtype in (
        ("timestamp", "float32"),
        ("frame_index", "int64"),
        ("episode_index", "int64"),
        ("index", "int64"),
        ("task_index", "int64"),
    ):
        features[name] = {"dtype": dtype, "shape": [1], "names": None}
    return features


def _fixed_list(values: FloatArray) -> pa.FixedSizeListArray:
    flat = pa.array(np.ascontiguousarray(values, dtype=np.float32).reshape(-1), type=pa.float32())
    return pa.FixedSizeListArray.from_arrays(flat, values.shape[1])


def _episode_columns(ep: _Episode, fps: int) -> dict[str, np.ndarray]:
    """Numeric data columns of one episode, as numpy (also the input to stats)."""
    frame_index = np.arange(ep.length, dtype=np.int64)
    # Next frame's state; the last frame holds (no data from beyond the clip window).
    action = np.concatenate([ep.state[1:], ep.state[-1:]], axis=0)
    columns: dict[str, np.ndarray] = {
        STATE_KEY: ep.state.astype(np.float32),
        ACTION_KEY: action.astype(np.float32),
    }
    if ep.force is not None:
        columns[FORCE_KEY] = ep.force.astype(np.float32)
    columns |= {
        "device_time_ns": ep.device_time_ns,
        "host_time_ns": ep.host_time_ns,
        # Exactly k / fps, computed in float64 and rounded once to float32.
        "timestamp": (frame_index / fps).astype(np.float32),
        "frame_index": frame_index,
        "episode_index": np.full(ep.length, ep.episode_index, dtype=np.int64),
        "index": ep.dataset_from + frame_index,
        "task_index": np.full(ep.length, ep.task_index, dtype=np.int64),
    }
    return columns


def _data_table(columns_per_episode: Sequence[Mapping[str, np.ndarray]]) -> pa.Table:
    arrays: dict[str, pa.Array] = {}
    for name in columns_per_episode[0]:
        values = np.concatenate([cols[name] for cols in columns_per_episode], axis=0)
        arrays[name] = _fixed_list(values) if values.ndim == 2 else pa.array(values)
    return pa.table(arrays)


def _provenance_array(values: list[ProvenanceValue]) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # Mixed types across episodes: keep them all, as text.
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def _episodes_table(
    episodes: Sequence[_Episode],
    tasks: Sequence[str],
    fps: int,
    chunks_size: int,
    video_key: str,
    stats: Sequence[Mapping[str, Mapping[str, np.ndarray]]],
) -> pa.Table:
    cols: dict[str, list[Any]] = {
        "episode_index": [],
        "tasks": [],
        "length": [],
        "data/chunk_index": [],
        "data/file_index": [],
        "dataset_from_index": [],
        "dataset_to_index": [],
        f"videos/{video_key}/chunk_index": [],
        f"videos/{video_key}/file_index": [],
        f"videos/{video_key}/from_timestamp": [],
        f"videos/{video_key}/to_timestamp": [],
        "meta/episodes/chunk_index": [],
        "meta/episodes/file_index": [],
        "clip_id": [],
        "clip_start_s": [],
        "clip_end_s": [],
    }
    for ep in episodes:
        chunk, file = divmod(ep.file_number, chunks_size)
        cols["episode_index"].append(ep.episode_index)
        cols["tasks"].append([tasks[ep.task_index]])
        cols["length"].append(ep.length)
        cols["data/chunk_index"].append(chunk)
        cols["data/file_index"].append(file)
        cols["dataset_from_index"].append(ep.dataset_from)
        cols["dataset_to_index"].append(ep.dataset_from + ep.length)
        cols[f"videos/{video_key}/chunk_index"].append(chunk)
        cols[f"videos/{video_key}/file_index"].append(file)
        cols[f"videos/{video_key}/from_timestamp"].append(ep.video_from_frame / fps)
        cols[f"videos/{video_key}/to_timestamp"].append((ep.video_from_frame + ep.length) / fps)
        cols["meta/episodes/chunk_index"].append(0)
        cols["meta/episodes/file_index"].append(0)
        cols["clip_id"].append(ep.source.clip_id)
        cols["clip_start_s"].append(float(ep.source.start_s))
        cols["clip_end_s"].append(float(ep.source.end_s))
    arrays: dict[str, pa.Array] = {name: pa.array(values) for name, values in cols.items()}
    # Per-episode stats, flattened as LeRobot does ("stats/<feature>/<stat>").
    for key in stats[0]:
        for stat in stats[0][key]:
            arrays[f"stats/{key}/{stat}"] = pa.array(
                [np.asarray(s[key][stat]).tolist() for s in stats]
            )
    keys = sorted({k for ep in episodes for k in ep.source.metadata})
    for key in keys:
        arrays[key] = _provenance_array([ep.source.metadata.get(key) for ep in episodes])
    return pa.table(arrays)


def _write_json(path: Path, payload: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=4, ensure_ascii=False) + "\n", encoding="utf-8")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _inventory(root: Path) -> tuple[ExportedFile, ...]:
    return tuple(
        ExportedFile(p.relative_to(root).as_posix(), p.stat().st_size, _sha256(p))
        for p in sorted(root.rglob("*"))
        if p.is_file()
    )


# --------------------------------------------------------------------------------------------
# Export


def _check_arguments(
    episodes: Sequence[EpisodeSource],
    fps: int,
    video_key: str,
    codec: str,
    episodes_per_file: int,
    chunks_size: int,
) -> None:
    if not episodes:
        raise LeRobotExportError("no episodes to export")
    if isinstance(fps, bool) or not isinstance(fps, int) or fps <= 0:
        raise LeRobotExportError(f"fps must be a positive integer, got {fps!r}")
    if codec != "h264":
        # H.264 decodes everywhere (torchcodec, pyav, browsers); AV1 is where users get stuck.
        raise LeRobotExportError(f"only codec 'h264' is supported, got {codec!r}")
    if not video_key or "/" in video_key:
        raise LeRobotExportError(f"video_key must be non-empty without '/', got {video_key!r}")
    if episodes_per_file < 1 or chunks_size < 1:
        raise LeRobotExportError("episodes_per_file and chunks_size must be >= 1")
    seen: set[str] = set()
    for source in episodes:
        if source.clip_id in seen:
            raise LeRobotExportError(f"clip {source.clip_id} is listed twice")
        seen.add(source.clip_id)
        clash = _RESERVED_EPISODE_COLUMNS.intersection(source.metadata)
        clash |= {k for k in source.metadata if k.startswith(("stats/", "videos/", "data/"))}
        if clash:
            raise LeRobotExportError(
                f"clip {source.clip_id}: metadata keys {sorted(clash)} clash with LeRobot columns"
            )


def _state_layout(episodes: Sequence[EpisodeSource]) -> tuple[list[str], bool]:
    """Joint columns shared by every trajectory, and whether all of them carry force."""
    required = {"host_time_ns", "device_time_ns", *_POSITION_COLUMNS}
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
        with_force &= set(_FORCE_COLUMNS) <= names
    assert joints is not None
    return joints, with_force


def _prepare_destination(out_dir: Path, overwrite: bool) -> None:
    occupied = out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir()))
    if occupied and not overwrite:
        raise LeRobotExportError(f"{out_dir} already exists and is not empty")
    out_dir.parent.mkdir(parents=True, exist_ok=True)


def _publish(staging: Path, out_dir: Path) -> None:
    """Move the finished dataset into place; an existing one is replaced only afterwards."""
    old: Path | None = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{uuid.uuid4().hex}")
        os.replace(out_dir, old)
    try:
        os.replace(staging, out_dir)
    except OSError:
        if old is not None:
            os.replace(old, out_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def export_lerobot(
    episodes: Sequence[EpisodeSource],
    out_dir: Path,
    *,
    fps: int = 30,
    robot_type: str = "robotrace_arm",
    video_key: str = "observation.images.main",
    codec: str = "h264",
    episodes_per_file: int = 50,
    chunks_size: int = 1000,
    overwrite: bool = False,
) -> LeRobotExport:
    """Write ``episodes`` (in order: episode_index = position) as a LeRobot v3.0 dataset.

    Everything is built in a hidden sibling directory, validated with ``validate_lerobot``
    and renamed into ``out_dir`` only on success, so a failure leaves nothing behind.
    ``out_dir`` must not exist (or be empty) unless ``overwrite`` is set.
    """
    _check_arguments(episodes, fps, video_key, codec, episodes_per_file, chunks_size)
    out_dir = Path(out_dir)
    _prepare_destination(out_dir, overwrite)
    joints, with_force = _state_layout(episodes)
    state_names = [*_POSITION_COLUMNS, *joints]

    # Hidden sibling on the same filesystem, so publishing is a rename.
    staging = out_dir.with_name(f".{out_dir.name}.staging-{uuid.uuid4().hex}")
    staging.mkdir()
    published = False
    try:
        sources: dict[Path, _SourceVideo] = {}
        for source in episodes:
            path = Path(source.video_path)
            if path not in sources:
                if not path.is_file():
                    raise LeRobotExportError(f"clip {source.clip_id}: no video at {path}")
                sources[path] = _probe_source(path)
        first = sources[Path(episodes[0].video_path)]
        width, height = first.width, first.height
        if width % 2 or height % 2:
            raise LeRobotExportError(f"frame size {width}x{height} must be even for yuv420p")

        tasks: list[str] = []
        resolved: list[_Episode] = []
        total = 0
        for idx, source in enumerate(episodes):
            video = sources[Path(source.video_path)]
            if (video.width, video.height) != (width, height):
                raise LeRobotExportError(
                    f"clip {source.clip_id}: {video.width}x{video.height} differs from the first"
                    f" clip's {width}x{height}; one video feature needs one frame size"
                )
            length = _check_episode_source(source, video, fps)
            state, force, host_ns, device_ns = _sample_trajectory(
                source, length, fps, joints, with_force
            )
            if source.task not in tasks:
                tasks.append(source.task)
            ep = _Episode(
                source, idx, tasks.index(source.task), length, state, force, host_ns, device_ns
            )
            ep.file_number = idx // episodes_per_file
            ep.dataset_from = total
            total += length
            resolved.append(ep)

        groups: dict[int, list[_Episode]] = {}
        for ep in resolved:
            groups.setdefault(ep.file_number, []).append(ep)

        episode_stats: list[dict[str, dict[str, np.ndarray]]] = []
        all_columns: list[dict[str, np.ndarray]] = []
        for number, group in groups.items():
            chunk, file = divmod(number, chunks_size)
            offset = 0
            for ep in group:
                ep.video_from_frame = offset
                offset += ep.length
            video_rel = VIDEO_PATH.format(video_key=video_key, chunk_index=chunk, file_index=file)
            video_path = staging / video_rel
            video_path.parent.mkdir(parents=True, exist_ok=True)
            _encode_video_file(group, video_path, fps, width, height)
            pixel_stats = _video_episode_stats(video_path, group, width, height)

            group_columns = [_episode_columns(ep, fps) for ep in group]
            data_path = staging / DATA_PATH.format(chunk_index=chunk, file_index=file)
            data_path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(_data_table(group_columns), data_path)
            for columns, pixels in zip(group_columns, pixel_stats, strict=True):
                stats = {name: _numeric_stats(values) for name, values in columns.items()}
                stats[video_key] = pixels
                episode_stats.append(stats)
            all_columns.extend(group_columns)

        global_stats = {
            name: _numeric_stats(np.concatenate([c[name] for c in all_columns], axis=0))
            for name in all_columns[0]
        }
        global_stats[video_key] = _aggregate_image_stats([s[video_key] for s in episode_stats])

        episodes_path = staging / EPISODES_PATH.format(chunk_index=0, file_index=0)
        episodes_path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(
            _episodes_table(resolved, tasks, fps, chunks_size, video_key, episode_stats),
            episodes_path,
        )
        # LeRobot keeps tasks as a DataFrame indexed by the task text; naming the index makes
        # it a plain "task" column for non-pandas readers too.
        task_frame = pd.DataFrame(
            {"task_index": np.arange(len(tasks), dtype=np.int64)},
            index=pd.Index(tasks, name="task"),
        )
        task_frame.to_parquet(staging / TASKS_PATH)
        _write_json(staging / STATS_PATH, _jsonable(global_stats))
        info = {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": robot_type,
            "total_episodes": len(resolved),
            "total_frames": total,
            "total_tasks": len(tasks),
            "chunks_size": chunks_size,
            "data_files_size_in_mb": _DATA_FILES_SIZE_IN_MB,
            "video_files_size_in_mb": _VIDEO_FILES_SIZE_IN_MB,
            "fps": fps,
            "splits": {"train": f"0:{len(resolved)}"},
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH,
            "features": _features(state_names, with_force, video_key, fps, width, height),
        }
        _write_json(staging / INFO_PATH, info)

        # The export's own decode already proved every file decodes; skip a second pass.
        problems = validate_lerobot(staging, decode=False)
        if problems:
            raise LeRobotExportError("export failed its own validation:\n" + "\n".join(problems))
        files = _inventory(staging)
        _publish(staging, out_dir)
        published = True
    finally:
        if not published:
            shutil.rmtree(staging, ignore_errors=True)

    return LeRobotExport(
        root=out_dir,
        files=files,
        total_episodes=len(resolved),
        total_frames=total,
        total_tasks=len(tasks),
        fps=fps,
        video_key=video_key,
    )


# --------------------------------------------------------------------------------------------
# Validation


def _read_json(path: Path, problems: list[str]) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.append(f"missing {path.name}")
    except (OSError, ValueError) as exc:
        problems.append(f"unreadable {path.name}: {exc}")
    return None


def _read_parquet_dir(
    root: Path, rel_dir: str, problems: list[str]
) -> list[tuple[tuple[int, int], pa.Table]] | None:
    """Every ``chunk-*/file-*.parquet`` under ``rel_dir`` in path order, with its indices."""
    paths = sorted((root / rel_dir).glob("chunk-*/file-*.parquet"))
    if not paths:
        problems.append(f"missing {rel_dir}/chunk-*/file-*.parquet")
        return None
    out = []
    for path in paths:
        match = _CHUNK_FILE_RE.search(path.as_posix())
        assert match is not None
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException) as exc:
            problems.append(f"unreadable {path.relative_to(root).as_posix()}: {exc}")
            return None
        out.append(((int(match.group(1)), int(match.group(2))), table))
    return out


_REQUIRED_DATA_COLUMNS = ("index", "episode_index", "frame_index", "timestamp", "task_index")


def _check_data_schema(data: pa.Table, features: Mapping[str, Any], problems: list[str]) -> bool:
    """Columns and types against info.json; False when a column the checks need is missing."""
    ok = True
    for name in _REQUIRED_DATA_COLUMNS:
        if name not in features:
            problems.append(f"info.json features lack {name!r}")
        if name not in data.column_names:
            problems.append(f"data lacks required column {name!r}")
            ok = False
    for name, ft in features.items():
        if ft.get("dtype") in ("video", "image"):
            continue
        if name not in data.column_names:
            problems.append(f"data lacks feature column {name!r}")
            ok = False
            continue
        typ = data.schema.field(name).type
        shape = list(ft.get("shape", [1]))
        if shape == [1]:
            expected = pa.from_numpy_dtype(np.dtype(ft["dtype"]))
            if typ != expected:
                problems.append(f"data column {name!r} is {typ}, info.json says {ft['dtype']}")
        elif not (
            pa.types.is_fixed_size_list(typ) or pa.types.is_list(typ)
        ) or typ.value_type != pa.from_numpy_dtype(np.dtype(ft["dtype"])):
            problems.append(f"data column {name!r} is {typ}, info.json says {ft['dtype']}{shape}")
        elif pa.types.is_fixed_size_list(typ) and [typ.list_size] != shape:
            problems.append(f"data column {name!r} has {typ.list_size} values, shape is {shape}")
    return ok


_REQUIRED_EPISODE_COLUMNS = (
    "episode_index",
    "tasks",
    "length",
    "data/chunk_index",
    "data/file_index",
    "dataset_from_index",
    "dataset_to_index",
)


def _check_episodes_schema(table: pa.Table, video_keys: Sequence[str], problems: list[str]) -> bool:
    """The columns the per-episode checks read exist and hold no nulls."""
    needed = [*_REQUIRED_EPISODE_COLUMNS]
    for key in video_keys:
        needed += [f"videos/{key}/{c}" for c in ("chunk_index", "file_index")]
        needed += [f"videos/{key}/{c}" for c in ("from_timestamp", "to_timestamp")]
    ok = True
    for name in needed:
        if name not in table.column_names:
            problems.append(f"episodes table lacks column {name!r}")
            ok = False
        elif table.column(name).null_count:
            problems.append(f"episodes table column {name!r} has nulls")
            ok = False
    return ok


def _task_table(root: Path, problems: list[str]) -> dict[int, str] | None:
    path = root / TASKS_PATH
    if not path.is_file():
        problems.append(f"missing {TASKS_PATH}")
        return None
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError, pa.ArrowException) as exc:
        problems.append(f"unreadable {TASKS_PATH}: {exc}")
        return None
    if "task_index" not in frame.columns:
        problems.append(f"{TASKS_PATH} has no task_index column")
        return None
    # LeRobot reads the task text from the index (tasks.loc[task]); accept a column as well.
    texts = frame["task"] if "task" in frame.columns else pd.Series(frame.index, index=frame.index)
    return {int(i): str(t) for i, t in zip(frame["task_index"], texts, strict=True)}


@dataclass
class _VideoFile:
    times: FloatArray | None
    error: str | None


def _probe_video_file(
    path: Path, features: Mapping[str, Any], key: str, decode: bool
) -> tuple[_VideoFile, list[str]]:
    problems: list[str] = []
    try:
        times = np.asarray(probe_packet_times(path), dtype=np.float64)
        stream = probe_video_stream(path)
    except MediaError as exc:
        return _VideoFile(None, str(exc)), problems
    info = features.get(key, {}).get("info", {})
    codec = info.get("video.codec", "h264")
    if stream.codec != codec:
        problems.append(f"{path.name} of {key}: codec {stream.codec}, info.json says {codec}")
    shape = features.get(key, {}).get("shape")
    if shape and list(shape[:2]) != [stream.height, stream.width]:
        problems.append(
            f"{path.name} of {key}: {stream.width}x{stream.height}, info.json shape is {shape}"
        )
    if decode:
        try:
            proc = subprocess.run(
                [
                    *(ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(path)),
                    *("-map", "0:v:0", "-f", "null", "-"),
                ],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=_FFMPEG_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            problems.append(f"{path.name} of {key}: could not decode: {exc}")
        else:
            if proc.returncode != 0 or proc.stderr.strip():
                problems.append(f"{path.name} of {key}: decode errors: {stderr_tail(proc.stderr)}")
    return _VideoFile(times, None), problems


def _check_episode_rows(
    ep: Mapping[str, Any],
    rows: IntArray,
    cols: Mapping[str, np.ndarray],
    fps: int,
    problems: list[str],
) -> None:
    e = ep["episode_index"]
    length = int(ep["length"])
    lo, hi = int(ep["dataset_from_index"]), int(ep["dataset_to_index"])
    if hi - lo != length:
        problems.append(f"episode {e}: dataset index range {lo}..{hi} holds {hi - lo} != {length}")
    if rows.size != length:
        problems.append(f"episode {e}: {rows.size} data rows, episodes table says {length}")
    if rows.size == 0:
        return
    if not np.array_equal(cols["index"][rows], np.arange(lo, lo + rows.size)):
        problems.append(f"episode {e}: global index is not {lo}..{lo + rows.size - 1} in order")
    frame_index = cols["frame_index"][rows]
    expected = np.arange(rows.size)
    if not np.array_equal(frame_index, expected):
        bad = int(np.flatnonzero(frame_index != expected)[0])
        problems.append(
            f"episode {e}: frame_index does not restart/count from 0 (row {bad} has"
            f" {int(frame_index[bad])})"
        )
    ts = cols["timestamp"][rows].astype(np.float64)
    if abs(ts[0]) > TIMESTAMP_TOLERANCE_S:
        problems.append(f"episode {e}: first timestamp is {ts[0]:.6f} s, not 0")
    dt = np.diff(ts)
    off = np.abs(dt - 1.0 / fps)
    if dt.size and off.max() > TIMESTAMP_TOLERANCE_S:
        bad = int(np.argmax(off > TIMESTAMP_TOLERANCE_S))
        problems.append(
            f"episode {e}: timestamp step at frame {bad + 1} is {dt[bad]:.6f} s, not 1/{fps}"
            f" (tolerance {TIMESTAMP_TOLERANCE_S} s)"
        )


def _check_episode_video(
    ep: Mapping[str, Any],
    key: str,
    video: _VideoFile,
    rel: str,
    fps: int,
    problems: list[str],
) -> None:
    e = ep["episode_index"]
    length = int(ep["length"])
    start = float(ep[f"videos/{key}/from_timestamp"])
    end = float(ep[f"videos/{key}/to_timestamp"])
    if abs((end - start) - length / fps) > 1.0 / fps:
        problems.append(
            f"episode {e}: video span {end - start:.6f} s of {key} differs from"
            f" {length} frames / {fps} fps = {length / fps:.6f} s"
        )
    if video.times is None:
        return
    half = 0.5 / fps
    inside = video.times[(video.times >= start - half) & (video.times < end - half)]
    if inside.size != length:
        problems.append(
            f"episode {e}: {rel} has {inside.size} frames in [{start:.6f}, {end:.6f}) s,"
            f" expected {length}"
        )
        return
    grid = start + np.arange(length) / fps
    worst = float(np.max(np.abs(inside - grid)))
    if worst > TIMESTAMP_TOLERANCE_S:
        problems.append(f"episode {e}: {rel} frames are up to {worst:.6f} s off the 1/{fps} s grid")


def validate_lerobot(root: Path, *, decode: bool = True) -> list[str]:
    """Read a LeRobot v3.0 dataset back the way LeRobot's loader would; list every problem.

    An empty list means valid. ``decode=False`` skips the full decode of each MP4 (packet
    timestamps and codec are still checked).
    """
    root = Path(root)
    problems: list[str] = []
    info = _read_json(root / INFO_PATH, problems)
    if not isinstance(info, dict):
        if info is not None:
            problems.append(f"{INFO_PATH} is not a JSON object")
        return problems
    if info.get("codebase_version") != CODEBASE_VERSION:
        problems.append(f"codebase_version is {info.get('codebase_version')!r}, not 'v3.0'")
    fps = info.get("fps")
    features = info.get("features")
    if isinstance(fps, bool) or not isinstance(fps, int) or fps <= 0:
        problems.append(f"fps must be a positive integer, got {fps!r}")
        return problems
    if not isinstance(features, dict) or not all(isinstance(f, dict) for f in features.values()):
        problems.append("info.json has no features (a mapping of feature dicts)")
        return problems
    for name in ("data_path", "video_path"):
        if not isinstance(info.get(name), str):
            problems.append(f"info.json has no {name} template")
    stats = _read_json(root / STATS_PATH, problems)
    tasks = _task_table(root, problems)
    episode_files = _read_parquet_dir(root, EPISODES_DIR, problems)
    data_files = _read_parquet_dir(root, DATA_DIR, problems)
    if episode_files is None or data_files is None or tasks is None:
        return problems

    try:
        episodes_table = pa.concat_tables([t for _, t in episode_files], promote_options="default")
        data = pa.concat_tables([t for _, t in data_files], promote_options="default")
    except pa.ArrowException as exc:
        problems.append(f"parquet files do not share one schema: {exc}")
        return problems
    if not _check_data_schema(data, features, problems):
        return problems
    video_keys = [k for k, ft in features.items() if ft.get("dtype") == "video"]
    if not _check_episodes_schema(episodes_table, video_keys, problems):
        return problems
    episodes = episodes_table.to_pylist()

    # Totals.
    for name, actual in (
        ("total_episodes", len(episodes)),
        ("total_frames", data.num_rows),
        ("total_tasks", len(tasks)),
    ):
        if info.get(name) != actual:
            problems.append(f"info.json {name} is {info.get(name)}, the files hold {actual}")
    if isinstance(stats, dict):
        missing = [k for k in features if k not in stats]
        if missing:
            problems.append(f"stats.json lacks {missing}")

    cols = {name: data.column(name).to_numpy() for name in _REQUIRED_DATA_COLUMNS}
    if not np.array_equal(cols["index"], np.arange(data.num_rows)):
        bad = int(np.flatnonzero(cols["index"] != np.arange(data.num_rows))[0])
        problems.append(
            f"global index is not contiguous 0..{data.num_rows - 1}: row {bad} has"
            f" {int(cols['index'][bad])}"
        )
    file_of_row = np.concatenate(
        [np.full(t.num_rows, n, dtype=np.int64) for n, (_, t) in enumerate(data_files)]
    )
    file_numbers = {indices: n for n, (indices, _) in enumerate(data_files)}

    episode_ids = [ep.get("episode_index") for ep in episodes]
    if episode_ids != list(range(len(episodes))):
        problems.append("episodes table episode_index is not 0..N-1 in order")
    unknown = sorted(set(np.unique(cols["episode_index"]).tolist()) - set(episode_ids))
    if unknown:
        problems.append(f"data rows belong to episodes missing from the episodes table: {unknown}")
    bad_tasks = sorted(set(np.unique(cols["task_index"]).tolist()) - set(tasks))
    if bad_tasks:
        problems.append(f"data references task_index {bad_tasks} absent from {TASKS_PATH}")

    video_files: dict[str, _VideoFile] = {}
    frames_claimed: dict[str, int] = {}
    for ep in episodes:
        e = ep.get("episode_index")
        rows = np.flatnonzero(cols["episode_index"] == e)
        _check_episode_rows(ep, rows, cols, fps, problems)
        for text in ep.get("tasks") or []:
            if text not in tasks.values():
                problems.append(f"episode {e}: task {text!r} is not in {TASKS_PATH}")
        ep_tasks = {i for i, t in tasks.items() if t in (ep.get("tasks") or [])}
        if rows.size and not set(np.unique(cols["task_index"][rows]).tolist()) <= ep_tasks:
            problems.append(f"episode {e}: rows use a task_index not listed in its tasks")
        where = (ep.get("data/chunk_index"), ep.get("data/file_index"))
        number = file_numbers.get(where)
        if number is None:
            problems.append(f"episode {e}: data file chunk {where[0]} file {where[1]} is missing")
        elif rows.size and not np.all(file_of_row[rows] == number):
            problems.append(
                f"episode {e}: rows are not all in data chunk {where[0]} file {where[1]}"
            )

        for key in video_keys:
            try:
                rel = info["video_path"].format(
                    video_key=key,
                    chunk_index=ep[f"videos/{key}/chunk_index"],
                    file_index=ep[f"videos/{key}/file_index"],
                )
            except (AttributeError, KeyError, IndexError, ValueError) as exc:
                problems.append(f"episode {e}: no video location for {key}: {exc}")
                continue
            if rel not in video_files:
                path = root / rel
                if not path.is_file():
                    video_files[rel] = _VideoFile(None, "missing")
                    problems.append(f"episode {e}: video file {rel} is missing")
                else:
                    video_files[rel], found = _probe_video_file(path, features, key, decode)
                    problems.extend(found)
                    if video_files[rel].error is not None:
                        problems.append(f"{rel}: {video_files[rel].error}")
            elif video_files[rel].error == "missing":
                problems.append(f"episode {e}: video file {rel} is missing")
            frames_claimed[rel] = frames_claimed.get(rel, 0) + int(ep["length"])
            _check_episode_video(ep, key, video_files[rel], rel, fps, problems)

    for rel, claimed in frames_claimed.items():
        times = video_files[rel].times
        if times is not None and times.size != claimed:
            problems.append(f"{rel} has {times.size} frames, its episodes account for {claimed}")
    return problems
