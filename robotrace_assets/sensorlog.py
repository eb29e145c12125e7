"""The trajectory (sensor) log schema: our Parquet table of a robot's motion. No Dagster here.

One row per sample: ``frame_index``, ``host_time_ns`` (the host/video clock, epoch ns),
``device_time_ns`` (the robot controller's clock, epoch ns), the tool centre point
``ee_x/ee_y/ee_z`` (m, robot base frame), ``joint_0..`` (rad) and optionally the wrist force
``force_x/force_y/force_z`` (N). The schema metadata carries the version, the units, the
sample rate and what each clock is. The simulator (``capture.trajectories``) and the robot
log reader (``robotlogs``) write it; ingest, clips, telemetry and delivery read it.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = [
    "CLOCKS_KEY",
    "FORCE_COLUMNS",
    "FRAME_KEY",
    "HZ_KEY",
    "MIN_HZ",
    "POSITION_COLUMNS",
    "SCHEMA_VERSION",
    "SCHEMA_VERSION_KEY",
    "UNITS_KEY",
    "write_parquet",
]

SCHEMA_VERSION = "1"
# Below ~30 Hz a third derivative over a 0.1 s window is meaningless, and it is the slowest
# rate at which a log can still be aligned frame-by-frame with a 30 fps camera.
MIN_HZ = 30.0
POSITION_COLUMNS = ("ee_x", "ee_y", "ee_z")
FORCE_COLUMNS = ("force_x", "force_y", "force_z")

# Schema metadata keys.
SCHEMA_VERSION_KEY = b"robotrace.schema_version"
UNITS_KEY = b"robotrace.units"  # JSON: column -> unit
HZ_KEY = b"robotrace.hz"  # JSON number: nominal sample rate
CLOCKS_KEY = b"robotrace.clocks"  # JSON: clock column -> what stamped it
FRAME_KEY = b"robotrace.frame"  # the coordinate frame of ee_*


def write_parquet(table: pa.Table, path: Path) -> int:
    """Write ``table`` as zstd Parquet atomically and return the file size in bytes.

    Output is byte-identical for identical tables (fixed codec, level and row-group size;
    no timestamps are embedded by the writer).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    try:
        pq.write_table(
            table,
            tmp_path,
            compression="zstd",
            compression_level=3,
            row_group_size=1 << 20,
            write_statistics=True,
        )
        size = tmp_path.stat().st_size
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return size
