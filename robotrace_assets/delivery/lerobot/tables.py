"""The tables of a LeRobot export: info.json features, data rows, episodes and tasks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from robotrace_assets.delivery.lerobot.layout import (
    ACTION_KEY,
    DEPTH_DTYPE,
    DEPTH_KEY,
    DEPTH_NAMES,
    DEPTH_VALID_KEY,
    FORCE_COLUMNS,
    FORCE_KEY,
    PIX_FMT,
    STATE_KEY,
)
from robotrace_assets.delivery.lerobot.model import FloatArray, ProvenanceValue, ResolvedEpisode

__all__ = [
    "RESERVED_EPISODE_COLUMNS",
    "data_table",
    "episode_columns",
    "episodes_table",
    "features",
    "task_frame",
    "with_depth_maps",
]

# Episode columns we write ourselves; provenance keys may not shadow them.
RESERVED_EPISODE_COLUMNS = frozenset(
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


def _video_feature(fps: int, width: int, height: int) -> dict[str, Any]:
    return {
        "dtype": "video",
        "shape": [height, width, 3],
        "names": ["height", "width", "channels"],
        "info": {
            "video.height": height,
            "video.width": width,
            "video.codec": "h264",
            "video.pix_fmt": PIX_FMT,
            "video.is_depth_map": False,
            "video.fps": fps,
            "video.channels": 3,
            "has_audio": False,
        },
    }


def features(
    state_names: Sequence[str],
    with_force: bool,
    video_key: str,
    fps: int,
    width: int,
    height: int,
    depth_shape: tuple[int, int] | None = None,
) -> dict[str, dict[str, Any]]:
    """The ``features`` mapping of info.json, in column order (the video stored apart)."""
    dim = len(state_names)
    out: dict[str, dict[str, Any]] = {
        STATE_KEY: {"dtype": "float32", "shape": [dim], "names": list(state_names)},
        ACTION_KEY: {"dtype": "float32", "shape": [dim], "names": list(state_names)},
    }
    if with_force:
        out[FORCE_KEY] = {"dtype": "float32", "shape": [3], "names": list(FORCE_COLUMNS)}
    out[video_key] = _video_feature(fps, width, height)
    if depth_shape is not None:
        # A 2-D shape: LeRobot reads it as datasets.Array2D, the exact millimetres.
        out[DEPTH_KEY] = {"dtype": DEPTH_DTYPE, "shape": list(depth_shape), "names": [*DEPTH_NAMES]}
        out[DEPTH_VALID_KEY] = {"dtype": "bool", "shape": [1], "names": None}
    # Both clocks are kept for audit; neither is the LeRobot timestamp.
    out["device_time_ns"] = {"dtype": "int64", "shape": [1], "names": None}
    out["host_time_ns"] = {"dtype": "int64", "shape": [1], "names": None}
    for name, dtype in (
        ("timestamp", "float32"),
        ("frame_index", "int64"),
        ("episode_index", "int64"),
        ("index", "int64"),
        ("task_index", "int64"),
    ):
        out[name] = {"dtype": dtype, "shape": [1], "names": None}
    return out


def _fixed_list(values: FloatArray) -> pa.FixedSizeListArray:
    flat = pa.array(np.ascontiguousarray(values, dtype=np.float32).reshape(-1), type=pa.float32())
    return pa.FixedSizeListArray.from_arrays(flat, values.shape[1])


def episode_columns(ep: ResolvedEpisode, fps: int) -> dict[str, np.ndarray]:
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
    if ep.depth_index is not None:
        # The maps themselves are written beside these columns (depth_data_table): too big to
        # hold for the whole export.
        columns[DEPTH_VALID_KEY] = ep.depth_index >= 0
    columns |= {
        "device_time_ns": ep.device_time_ns,
        "host_time_ns": ep.host_time_ns,
        # Exactly k / fps, computed in float64 and rounded once to float32.
        "timestamp": (frame_index / fps).astype(np.float32),
        "frame_index": frame_index,
        "episode_index": np.full(ep.length, ep.episode_index, dtype=np.int64),
        "index": ep.dataset_from + frame_index,
        "task_index": (
            np.full(ep.length, ep.task_index, dtype=np.int64)
            if ep.task_indices is None
            else ep.task_indices
        ),
    }
    return columns


def data_table(columns_per_episode: Sequence[Mapping[str, np.ndarray]]) -> pa.Table:
    """One data file: the episodes' columns back to back, vectors as fixed-size lists."""
    arrays: dict[str, pa.Array] = {}
    for name in columns_per_episode[0]:
        values = np.concatenate([cols[name] for cols in columns_per_episode], axis=0)
        arrays[name] = _fixed_list(values) if values.ndim == 2 else pa.array(values)
    return pa.table(arrays)


def with_depth_maps(table: pa.Table, maps: pa.Array) -> pa.Table:
    """A data table with its depth maps added just before their valid flags, in the order of
    info.json's features."""
    return table.add_column(table.schema.get_field_index(DEPTH_VALID_KEY), DEPTH_KEY, maps)


def _provenance_array(values: list[ProvenanceValue]) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # Mixed types across episodes: keep them all, as text.
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def _episode_row(
    ep: ResolvedEpisode, tasks: Sequence[str], fps: int, chunks_size: int, video_key: str
) -> dict[str, Any]:
    chunk, file = divmod(ep.file_number, chunks_size)
    return {
        "episode_index": ep.episode_index,
        "tasks": [tasks[i] for i in ep.episode_tasks or (ep.task_index,)],
        "length": ep.length,
        "data/chunk_index": chunk,
        "data/file_index": file,
        "dataset_from_index": ep.dataset_from,
        "dataset_to_index": ep.dataset_from + ep.length,
        f"videos/{video_key}/chunk_index": chunk,
        f"videos/{video_key}/file_index": file,
        f"videos/{video_key}/from_timestamp": ep.video_from_frame / fps,
        f"videos/{video_key}/to_timestamp": (ep.video_from_frame + ep.length) / fps,
        "meta/episodes/chunk_index": 0,
        "meta/episodes/file_index": 0,
        "clip_id": ep.source.clip_id,
        "clip_start_s": float(ep.source.start_s),
        "clip_end_s": float(ep.source.end_s),
    }


def episodes_table(
    episodes: Sequence[ResolvedEpisode],
    tasks: Sequence[str],
    fps: int,
    chunks_size: int,
    video_key: str,
    stats: Sequence[Mapping[str, Mapping[str, np.ndarray]]],
) -> pa.Table:
    """One row per episode: location, per-episode stats, then provenance columns."""
    rows = [_episode_row(ep, tasks, fps, chunks_size, video_key) for ep in episodes]
    arrays: dict[str, pa.Array] = {name: pa.array([r[name] for r in rows]) for name in rows[0]}
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


def task_frame(tasks: Sequence[str]) -> pd.DataFrame:
    """The tasks table: LeRobot keeps it as a DataFrame indexed by the task text; naming the
    index makes it a plain "task" column for non-pandas readers too."""
    return pd.DataFrame(
        {"task_index": np.arange(len(tasks), dtype=np.int64)},
        index=pd.Index(tasks, name="task"),
    )
