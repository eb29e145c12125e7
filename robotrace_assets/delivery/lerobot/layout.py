"""Where a LeRobot v3.0 dataset keeps its parts, its feature keys and its time tolerance."""

from __future__ import annotations

import re

__all__ = [
    "ACTION_KEY",
    "CHUNK_FILE_RE",
    "CODEBASE_VERSION",
    "DATA_DIR",
    "DATA_FILES_SIZE_IN_MB",
    "DATA_PATH",
    "DEPTH_DTYPE",
    "DEPTH_KEY",
    "DEPTH_NAMES",
    "DEPTH_PIXEL_STATS_MAX",
    "DEPTH_VALID_KEY",
    "EPISODES_DIR",
    "EPISODES_PATH",
    "FORCE_COLUMNS",
    "FORCE_KEY",
    "INFO_PATH",
    "JOINT_RE",
    "PIX_FMT",
    "POSITION_COLUMNS",
    "STATE_KEY",
    "STATS_PATH",
    "TASKS_PATH",
    "TIMESTAMP_TOLERANCE_S",
    "VIDEO_FILES_SIZE_IN_MB",
    "VIDEO_PATH",
    "depth_stats_shape",
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
CHUNK_FILE_RE = re.compile(r"chunk-(\d+)/file-(\d+)\.parquet$")

# LeRobotDataset's default tolerance_s: the loader rejects data timestamps and decoded video
# frames that are further than this from the k / fps grid.
TIMESTAMP_TOLERANCE_S = 1e-4
# Informational size caps LeRobot writes into info.json; we split files by episode count, and
# the recorder only reads these when appending to the dataset.
DATA_FILES_SIZE_IN_MB = 100
VIDEO_FILES_SIZE_IN_MB = 500
# The pixel format of every exported video (and of its info.json feature).
PIX_FMT = "yuv420p"

STATE_KEY = "observation.state"
ACTION_KEY = "action"
FORCE_KEY = "observation.force"
POSITION_COLUMNS = ("ee_x", "ee_y", "ee_z")
FORCE_COLUMNS = ("force_x", "force_y", "force_z")
JOINT_RE = re.compile(r"^joint_(\d+)$")

# Depth (opt-in): one map of millimetres per frame (0 = no return), and whether the sensor gave
# that frame a map at all (False: it dropped the frame and the map is all zeros).
DEPTH_KEY = "observation.depth"
DEPTH_VALID_KEY = "observation.depth_valid"
DEPTH_DTYPE = "uint16"
DEPTH_NAMES = ("height", "width")
# Per-pixel stats cost 9 numbers a pixel in stats.json and in every episode's row: fine up to
# a 160x120 map (~0.5 MB a row), not for a 256x192 phone LiDAR map (~1.2 MB a row, ~5 MB of
# JSON). Larger maps get per-column stats: the shape LeRobot's own writer gives a 2-D feature.
DEPTH_PIXEL_STATS_MAX = 160 * 120


def depth_stats_shape(height: int, width: int) -> tuple[int, ...]:
    """The shape of every depth stat but ``count``: per pixel, or per column for large maps."""
    return (height, width) if height * width <= DEPTH_PIXEL_STATS_MAX else (width,)
