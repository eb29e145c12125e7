"""Checks of the depth features of a LeRobot dataset: one exact millimetre map per frame.

``observation.depth`` is checked file by file, a batch of rows at a time, so the validator never
holds every map of a dataset at once: its features in info.json, its column type (the nested
lists ``datasets.Array2D`` reads, fixed-size or not), one map of the declared shape on every data
row, ``observation.depth_valid`` False only on all-zero maps, and its stats' shape and count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from robotrace_assets.delivery.lerobot.layout import (
    DATA_DIR,
    DEPTH_DTYPE,
    DEPTH_KEY,
    DEPTH_NAMES,
    DEPTH_VALID_KEY,
    depth_stats_shape,
)

__all__ = ["check_depth"]

_BATCH_ROWS = 256
_SHOWN_ROWS = 5  # rows named in one problem


def _feature_shape(features: Mapping[str, Any], problems: list[str]) -> tuple[int, int] | None:
    """(height, width) of a well-formed depth feature pair, else None with the problems."""
    depth, valid = features.get(DEPTH_KEY), features.get(DEPTH_VALID_KEY)
    if depth is None or valid is None:
        present, absent = (
            (DEPTH_KEY, DEPTH_VALID_KEY) if valid is None else (DEPTH_VALID_KEY, DEPTH_KEY)
        )
        problems.append(f"info.json declares {present} without {absent}")
        return None
    shape = depth.get("shape")
    ok = isinstance(shape, list) and len(shape) == 2
    ok = ok and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)
    if not ok or depth.get("dtype") != DEPTH_DTYPE or depth.get("names") != [*DEPTH_NAMES]:
        problems.append(
            f"info.json {DEPTH_KEY} must be dtype {DEPTH_DTYPE}, shape [height, width], names"
            f" {[*DEPTH_NAMES]}; it is {depth}"
        )
        return None
    if valid.get("dtype") != "bool" or list(valid.get("shape") or []) != [1]:
        problems.append(f"info.json {DEPTH_VALID_KEY} must be dtype bool, shape [1]")
    return shape[0], shape[1]


def _storage(typ: pa.DataType) -> pa.DataType:
    # A dataset written by datasets itself may keep its Array2D extension type.
    return typ.storage_type if isinstance(typ, pa.ExtensionType) else typ


def _is_list(typ: pa.DataType) -> bool:
    return pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ)


def _type_problem(typ: pa.DataType, shape: tuple[int, int]) -> str | None:
    outer = _storage(typ)
    inner = outer.value_type if _is_list(outer) else None
    if inner is None or not _is_list(inner) or inner.value_type != pa.uint16():
        return f"is {typ}, not lists of {shape[0]} lists of {shape[1]} uint16"
    for level, size in ((outer, shape[0]), (inner, shape[1])):
        if pa.types.is_fixed_size_list(level) and level.list_size != size:
            return f"is {typ}, its shape is not [{shape[0]}, {shape[1]}]"
    return None


def _lengths_differ(lists: pa.Array, size: int) -> bool:
    """Whether any list of a variable-length list array does not hold ``size`` values."""
    if pa.types.is_fixed_size_list(lists.type):
        return False  # the type fixes it (checked against the shape)
    lengths = lists.value_lengths().to_numpy(zero_copy_only=False)
    return bool(np.any(lengths != size))


def _maps(column: pa.Array, shape: tuple[int, int]) -> np.ndarray | str:
    """A batch of rows as (n, height, width), or what is wrong with it."""
    if isinstance(column, pa.ExtensionArray):
        column = column.storage
    if column.null_count:
        return f"{column.null_count} rows have no map"
    rows = column.flatten()
    if _lengths_differ(column, shape[0]) or _lengths_differ(rows, shape[1]):
        return f"a map is not {shape[1]}x{shape[0]}"
    values = rows.flatten()
    if values.null_count:
        return "a map has null pixels"
    return values.to_numpy(zero_copy_only=False).reshape(len(column), *shape)


def _check_file(
    path: Path, rel: str, shape: tuple[int, int], valid: np.ndarray, problems: list[str]
) -> int:
    """Check one data file's maps against the valid flags from row ``valid[0]`` on; its rows."""
    parquet = pq.ParquetFile(path)
    if DEPTH_KEY not in parquet.schema_arrow.names:
        problems.append(f"{rel} has no {DEPTH_KEY} column: frames without a depth map")
        return parquet.metadata.num_rows
    found = _type_problem(parquet.schema_arrow.field(DEPTH_KEY).type, shape)
    if found is not None:
        problems.append(f"{rel}: {DEPTH_KEY} {found}")
        return parquet.metadata.num_rows
    offset, stale = 0, []
    for batch in parquet.iter_batches(batch_size=_BATCH_ROWS, columns=[DEPTH_KEY]):
        maps = _maps(batch.column(0), shape)
        if isinstance(maps, str):
            problems.append(f"{rel}: {DEPTH_KEY}: {maps}")
            return parquet.metadata.num_rows
        flags = valid[offset : offset + len(maps)]
        if flags.size == len(maps):
            dropped = np.flatnonzero(~flags)
            filled = maps[dropped].any(axis=(1, 2))
            stale += (offset + dropped[filled]).tolist()
        offset += len(maps)
    if stale:
        problems.append(
            f"{rel}: rows {stale[:_SHOWN_ROWS]} have {DEPTH_VALID_KEY} False but a non-zero map"
            + (f" (and {len(stale) - _SHOWN_ROWS} more)" if len(stale) > _SHOWN_ROWS else "")
        )
    return offset


def _check_stats(stats: Any, shape: tuple[int, int], frames: int, problems: list[str]) -> None:
    found = stats.get(DEPTH_KEY) if isinstance(stats, dict) else None
    if not isinstance(found, dict):
        return  # reported with the other features' stats
    expected = depth_stats_shape(*shape)
    for name, value in found.items():
        try:
            have = np.asarray(value, dtype=np.float64).shape
        except (TypeError, ValueError):
            have = None
        want = (1,) if name == "count" else expected
        if have != want:
            problems.append(f"stats.json {DEPTH_KEY} {name} has shape {have}, expected {want}")
    if found.get("count") != [frames]:
        problems.append(f"stats.json {DEPTH_KEY} count is {found.get('count')}, frames {frames}")


def check_depth(
    root: Path, features: Mapping[str, Any], data: pa.Table, stats: Any, problems: list[str]
) -> None:
    """Append every depth problem of the dataset at ``root`` (``data``: its data rows read
    without the maps, in file order)."""
    paths: Sequence[Path] = sorted((root / DATA_DIR).glob("chunk-*/file-*.parquet"))
    if DEPTH_KEY not in features and DEPTH_VALID_KEY not in features:
        for path in paths:
            if DEPTH_KEY in pq.read_schema(path).names:
                rel = path.relative_to(root).as_posix()
                problems.append(f"{rel} has a {DEPTH_KEY} column info.json does not declare")
        return
    shape = _feature_shape(features, problems)
    if shape is None or DEPTH_VALID_KEY not in data.column_names:
        return  # a missing valid column is reported by the schema check
    flags = data.column(DEPTH_VALID_KEY)
    if flags.null_count:
        problems.append(f"{DEPTH_VALID_KEY} has {flags.null_count} null rows")
    valid = flags.to_numpy(zero_copy_only=False).astype(bool)
    offset = 0
    for path in paths:
        rel = path.relative_to(root).as_posix()
        offset += _check_file(path, rel, shape, valid[offset:], problems)
    _check_stats(stats, shape, data.num_rows, problems)
