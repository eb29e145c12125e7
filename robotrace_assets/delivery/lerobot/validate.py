"""Check a LeRobot v3.0 dataset the way LeRobot's loader reads it, listing every problem."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from robotrace_assets.delivery.lerobot.layout import (
    CODEBASE_VERSION,
    DATA_DIR,
    DEPTH_KEY,
    EPISODES_DIR,
    INFO_PATH,
    STATS_PATH,
    TASKS_PATH,
    TIMESTAMP_TOLERANCE_S,
)
from robotrace_assets.delivery.lerobot.model import FloatArray, IntArray
from robotrace_assets.delivery.lerobot.validate_depth import check_depth
from robotrace_assets.delivery.lerobot.validate_schema import (
    REQUIRED_DATA_COLUMNS,
    ParquetFiles,
    check_data_schema,
    check_episodes_schema,
    read_json,
    read_parquet_dir,
    task_table,
)
from robotrace_assets.delivery.lerobot.video import (
    VideoProbeError,
    decode_errors,
    probe_dataset_video,
)

__all__ = ["validate_lerobot"]

Columns = Mapping[str, np.ndarray]


@dataclass
class _Dataset:
    """What validation read: info.json facts and the tables, concatenated across files."""

    root: Path
    info: dict[str, Any]
    fps: int
    features: dict[str, dict[str, Any]]
    stats: Any
    tasks: dict[int, str]
    episodes: list[dict[str, Any]]
    data: pa.Table
    data_files: ParquetFiles
    video_keys: list[str]

    @cached_property
    def file_numbers(self) -> dict[tuple[int, int], int]:
        """(chunk, file) of each data file -> its position in path order."""
        return {indices: n for n, (indices, _) in enumerate(self.data_files)}

    @cached_property
    def file_of_row(self) -> IntArray:
        """Position of the data file that holds each data row."""
        return np.concatenate(
            [np.full(t.num_rows, n, dtype=np.int64) for n, (_, t) in enumerate(self.data_files)]
        )


@dataclass
class _VideoFile:
    times: FloatArray | None
    error: str | None


def _read_info(root: Path, problems: list[str]) -> tuple[dict[str, Any], int, dict] | None:
    """info.json, its fps and its features; None when the rest cannot be checked."""
    info = read_json(root / INFO_PATH, problems)
    if not isinstance(info, dict):
        if info is not None:
            problems.append(f"{INFO_PATH} is not a JSON object")
        return None
    if info.get("codebase_version") != CODEBASE_VERSION:
        problems.append(f"codebase_version is {info.get('codebase_version')!r}, not 'v3.0'")
    fps = info.get("fps")
    features = info.get("features")
    if isinstance(fps, bool) or not isinstance(fps, int) or fps <= 0:
        problems.append(f"fps must be a positive integer, got {fps!r}")
        return None
    if not isinstance(features, dict) or not all(isinstance(f, dict) for f in features.values()):
        problems.append("info.json has no features (a mapping of feature dicts)")
        return None
    for name in ("data_path", "video_path"):
        if not isinstance(info.get(name), str):
            problems.append(f"info.json has no {name} template")
    return info, fps, features


def _read_dataset(root: Path, problems: list[str]) -> _Dataset | None:
    """Every file but the videos, read and schema-checked; None when checks cannot go on."""
    read = _read_info(root, problems)
    if read is None:
        return None
    info, fps, features = read
    stats = read_json(root / STATS_PATH, problems)
    tasks = task_table(root, problems)
    episode_files = read_parquet_dir(root, EPISODES_DIR, problems)
    # Depth maps stay on disk: validate_depth reads them a batch at a time.
    data_files = read_parquet_dir(root, DATA_DIR, problems, skip=(DEPTH_KEY,))
    if episode_files is None or data_files is None or tasks is None:
        return None
    try:
        episodes_table = pa.concat_tables([t for _, t in episode_files], promote_options="default")
        data = pa.concat_tables([t for _, t in data_files], promote_options="default")
    except pa.ArrowException as exc:
        problems.append(f"parquet files do not share one schema: {exc}")
        return None
    if not check_data_schema(data, features, problems):
        return None
    video_keys = [k for k, ft in features.items() if ft.get("dtype") == "video"]
    if not check_episodes_schema(episodes_table, video_keys, problems):
        return None
    episodes = episodes_table.to_pylist()
    return _Dataset(root, info, fps, features, stats, tasks, episodes, data, data_files, video_keys)


def _check_totals(ds: _Dataset, problems: list[str]) -> None:
    for name, actual in (
        ("total_episodes", len(ds.episodes)),
        ("total_frames", ds.data.num_rows),
        ("total_tasks", len(ds.tasks)),
    ):
        if ds.info.get(name) != actual:
            problems.append(f"info.json {name} is {ds.info.get(name)}, the files hold {actual}")
    if isinstance(ds.stats, dict):
        missing = [k for k in ds.features if k not in ds.stats]
        if missing:
            problems.append(f"stats.json lacks {missing}")
        for key in ds.features:
            if isinstance(ds.stats.get(key), dict):
                _check_feature_stats(key, ds.stats[key], problems)


_BASE_STATS = ("min", "max", "mean", "std", "count")
_QUANTILE_KEYS = ("q01", "q10", "q50", "q90", "q99")


def _check_feature_stats(key: str, stats: Mapping[str, Any], problems: list[str]) -> None:
    """LeRobot's stat keys, quantiles included (quantile normalization reads q01/q99), with
    q01 <= q10 <= q50 <= q90 <= q99 inside min..max, element-wise."""
    absent = [name for name in (*_BASE_STATS, *_QUANTILE_KEYS) if name not in stats]
    if absent:
        problems.append(f"stats.json {key} lacks {absent}")
        return
    try:
        ordered = [np.asarray(stats[n], dtype=np.float64) for n in ("min", *_QUANTILE_KEYS, "max")]
        steps = [np.all(low <= high + 1e-9) for low, high in itertools.pairwise(ordered)]
    except (TypeError, ValueError) as exc:
        problems.append(f"stats.json {key}: stats are not numeric arrays of one shape: {exc}")
        return
    if not all(steps):
        problems.append(f"stats.json {key}: quantiles are not ordered within min..max")


def _check_indices(ds: _Dataset, cols: Columns, problems: list[str]) -> None:
    """Global index, episode numbering and task references across all data rows."""
    rows = ds.data.num_rows
    if not np.array_equal(cols["index"], np.arange(rows)):
        bad = int(np.flatnonzero(cols["index"] != np.arange(rows))[0])
        problems.append(
            f"global index is not contiguous 0..{rows - 1}: row {bad} has {int(cols['index'][bad])}"
        )
    episode_ids = [ep.get("episode_index") for ep in ds.episodes]
    if episode_ids != list(range(len(ds.episodes))):
        problems.append("episodes table episode_index is not 0..N-1 in order")
    unknown = sorted(set(np.unique(cols["episode_index"]).tolist()) - set(episode_ids))
    if unknown:
        problems.append(f"data rows belong to episodes missing from the episodes table: {unknown}")
    bad_tasks = sorted(set(np.unique(cols["task_index"]).tolist()) - set(ds.tasks))
    if bad_tasks:
        problems.append(f"data references task_index {bad_tasks} absent from {TASKS_PATH}")


def _check_episode_rows(
    ep: Mapping[str, Any], rows: IntArray, cols: Columns, fps: int, problems: list[str]
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


def _check_episode_tasks_and_file(
    ep: Mapping[str, Any], rows: IntArray, cols: Columns, ds: _Dataset, problems: list[str]
) -> None:
    """The episode's tasks exist, its rows use them, and its rows sit in the file it names."""
    e = ep.get("episode_index")
    for text in ep.get("tasks") or []:
        if text not in ds.tasks.values():
            problems.append(f"episode {e}: task {text!r} is not in {TASKS_PATH}")
    ep_tasks = {i for i, t in ds.tasks.items() if t in (ep.get("tasks") or [])}
    if rows.size and not set(np.unique(cols["task_index"][rows]).tolist()) <= ep_tasks:
        problems.append(f"episode {e}: rows use a task_index not listed in its tasks")
    where: tuple[Any, Any] = (ep.get("data/chunk_index"), ep.get("data/file_index"))
    number = ds.file_numbers.get(where)
    if number is None:
        problems.append(f"episode {e}: data file chunk {where[0]} file {where[1]} is missing")
    elif rows.size and not np.all(ds.file_of_row[rows] == number):
        problems.append(f"episode {e}: rows are not all in data chunk {where[0]} file {where[1]}")


def _probe_video_file(
    path: Path, features: Mapping[str, Any], key: str, decode: bool
) -> tuple[_VideoFile, list[str]]:
    problems: list[str] = []
    try:
        probe = probe_dataset_video(path)
    except VideoProbeError as exc:
        return _VideoFile(None, str(exc)), problems
    info = features.get(key, {}).get("info", {})
    codec = info.get("video.codec", "h264")
    if probe.codec != codec:
        problems.append(f"{path.name} of {key}: codec {probe.codec}, info.json says {codec}")
    shape = features.get(key, {}).get("shape")
    if shape and list(shape[:2]) != [probe.height, probe.width]:
        problems.append(
            f"{path.name} of {key}: {probe.width}x{probe.height}, info.json shape is {shape}"
        )
    if decode and (error := decode_errors(path)) is not None:
        problems.append(f"{path.name} of {key}: {error}")
    return _VideoFile(probe.times, None), problems


def _check_episode_video(
    ep: Mapping[str, Any], key: str, video: _VideoFile, rel: str, fps: int, problems: list[str]
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


@dataclass
class _VideoChecks:
    """Video files seen so far (each probed once) and the frames their episodes claim."""

    ds: _Dataset
    decode: bool
    files: dict[str, _VideoFile] = field(default_factory=dict)
    claimed: dict[str, int] = field(default_factory=dict)

    def _open(self, e: Any, key: str, rel: str, problems: list[str]) -> None:
        if rel not in self.files:
            path = self.ds.root / rel
            if not path.is_file():
                self.files[rel] = _VideoFile(None, "missing")
                problems.append(f"episode {e}: video file {rel} is missing")
            else:
                self.files[rel], found = _probe_video_file(path, self.ds.features, key, self.decode)
                problems.extend(found)
                if self.files[rel].error is not None:
                    problems.append(f"{rel}: {self.files[rel].error}")
        elif self.files[rel].error == "missing":
            problems.append(f"episode {e}: video file {rel} is missing")

    def check_episode(self, ep: Mapping[str, Any], problems: list[str]) -> None:
        e = ep.get("episode_index")
        for key in self.ds.video_keys:
            try:
                rel = self.ds.info["video_path"].format(
                    video_key=key,
                    chunk_index=ep[f"videos/{key}/chunk_index"],
                    file_index=ep[f"videos/{key}/file_index"],
                )
            except (AttributeError, KeyError, IndexError, ValueError) as exc:
                problems.append(f"episode {e}: no video location for {key}: {exc}")
                continue
            self._open(e, key, rel, problems)
            self.claimed[rel] = self.claimed.get(rel, 0) + int(ep["length"])
            _check_episode_video(ep, key, self.files[rel], rel, self.ds.fps, problems)

    def check_frame_totals(self, problems: list[str]) -> None:
        for rel, claimed in self.claimed.items():
            times = self.files[rel].times
            if times is not None and times.size != claimed:
                problems.append(
                    f"{rel} has {times.size} frames, its episodes account for {claimed}"
                )


def validate_lerobot(root: Path, *, decode: bool = True) -> list[str]:
    """Read a LeRobot v3.0 dataset back the way LeRobot's loader would; list every problem.

    An empty list means valid. ``decode=False`` skips the full decode of each MP4 (packet
    timestamps and codec are still checked).
    """
    problems: list[str] = []
    ds = _read_dataset(Path(root), problems)
    if ds is None:
        return problems
    _check_totals(ds, problems)
    check_depth(ds.root, ds.features, ds.data, ds.stats, problems)
    cols = {name: ds.data.column(name).to_numpy() for name in REQUIRED_DATA_COLUMNS}
    _check_indices(ds, cols, problems)
    videos = _VideoChecks(ds, decode)
    for ep in ds.episodes:
        rows = np.flatnonzero(cols["episode_index"] == ep.get("episode_index"))
        _check_episode_rows(ep, rows, cols, ds.fps, problems)
        _check_episode_tasks_and_file(ep, rows, cols, ds, problems)
        videos.check_episode(ep, problems)
    videos.check_frame_totals(problems)
    return problems
