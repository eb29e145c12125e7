"""Reading a LeRobot dataset's files for validation, and checking their columns against info.json.

Every function appends what it finds wrong to ``problems`` rather than raising, so one pass
reports every problem a loader would trip on.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from robotrace_assets.delivery.lerobot.layout import CHUNK_FILE_RE, DEPTH_KEY, TASKS_PATH

__all__ = [
    "REQUIRED_DATA_COLUMNS",
    "ParquetFiles",
    "check_data_schema",
    "check_episodes_schema",
    "read_json",
    "read_parquet_dir",
    "task_table",
]

REQUIRED_DATA_COLUMNS = ("index", "episode_index", "frame_index", "timestamp", "task_index")
_REQUIRED_EPISODE_COLUMNS = (
    "episode_index",
    "tasks",
    "length",
    "data/chunk_index",
    "data/file_index",
    "dataset_from_index",
    "dataset_to_index",
)

# (chunk index, file index) and the file's table, in path order.
ParquetFiles = list[tuple[tuple[int, int], pa.Table]]


def read_json(path: Path, problems: list[str]) -> Any:
    """The parsed file, or None (with a problem) when missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.append(f"missing {path.name}")
    except (OSError, ValueError) as exc:
        problems.append(f"unreadable {path.name}: {exc}")
    return None


def read_parquet_dir(
    root: Path, rel_dir: str, problems: list[str], skip: Collection[str] = ()
) -> ParquetFiles | None:
    """Every ``chunk-*/file-*.parquet`` under ``rel_dir`` in path order, with its indices,
    read without the columns in ``skip`` (the depth maps: checked file by file)."""
    paths = sorted((root / rel_dir).glob("chunk-*/file-*.parquet"))
    if not paths:
        problems.append(f"missing {rel_dir}/chunk-*/file-*.parquet")
        return None
    out = []
    for path in paths:
        match = CHUNK_FILE_RE.search(path.as_posix())
        assert match is not None
        try:
            names = pq.read_schema(path).names
            table = pq.read_table(path, columns=[n for n in names if n not in skip])
        except (OSError, pa.ArrowException) as exc:
            problems.append(f"unreadable {path.relative_to(root).as_posix()}: {exc}")
            return None
        out.append(((int(match.group(1)), int(match.group(2))), table))
    return out


def _check_column_type(
    name: str, typ: pa.DataType, ft: Mapping[str, Any], problems: list[str]
) -> None:
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


def check_data_schema(data: pa.Table, features: Mapping[str, Any], problems: list[str]) -> bool:
    """Columns and types against info.json; False when a column the checks need is missing."""
    ok = True
    for name in REQUIRED_DATA_COLUMNS:
        if name not in features:
            problems.append(f"info.json features lack {name!r}")
        if name not in data.column_names:
            problems.append(f"data lacks required column {name!r}")
            ok = False
    for name, ft in features.items():
        if ft.get("dtype") in ("video", "image") or name == DEPTH_KEY:
            continue  # videos are files; depth maps are checked file by file (validate_depth)
        if name not in data.column_names:
            problems.append(f"data lacks feature column {name!r}")
            ok = False
            continue
        _check_column_type(name, data.schema.field(name).type, ft, problems)
    return ok


def check_episodes_schema(table: pa.Table, video_keys: Sequence[str], problems: list[str]) -> bool:
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


def task_table(root: Path, problems: list[str]) -> dict[int, str] | None:
    """task_index -> task text from meta/tasks.parquet, or None (with a problem)."""
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
