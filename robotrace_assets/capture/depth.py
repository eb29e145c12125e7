"""Synthetic LiDAR depth for simulated captures: a tilted floor and a disc (the end effector)
sweeping across it, in the declared depth format, at the camera's rate and a quarter of its
size, as a phone's LiDAR gives it."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from robotrace_assets.depth import CONTENT_TYPE, FORMAT, ROLE, write_depth_mkv

__all__ = ["declared_depth", "depth_size", "write_synthetic_depth"]

_FLOOR_MM = (1200, 2400)  # near edge to far edge
_DISC_MM = 700
_MIN_SIZE = (16, 12)


def depth_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) of the depth map for a video of that size: a quarter, at least 16x12."""
    return max(_MIN_SIZE[0], width // 4 // 2 * 2), max(_MIN_SIZE[1], height // 4 // 2 * 2)


def _frames(count: int, width: int, height: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = np.linspace(_FLOOR_MM[1], _FLOOR_MM[0], height)[:, None]
    floor = np.broadcast_to(rows, (height, width)).astype(np.float64)
    yy, xx = np.mgrid[0:height, 0:width]
    radius = max(2.0, min(width, height) / 5)
    frames = np.empty((count, height, width), dtype=np.uint16)
    for k in range(count):
        cx = width * (0.2 + 0.6 * k / max(1, count - 1))
        cy = height * (0.5 + 0.2 * np.sin(k / 7))
        inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2
        frame = np.where(inside, _DISC_MM, floor) + rng.normal(0, 4, (height, width))
        frame[:1, :] = 0  # the top edge out of range: no return
        frames[k] = np.clip(frame, 0, 65535).astype(np.uint16)
    return frames


class CaptureShape(Protocol):
    """What the depth stream takes from the capture's settings (SimulationConfig has it)."""

    @property
    def seconds(self) -> float: ...
    @property
    def fps(self) -> int: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...


def write_synthetic_depth(path: Path, capture: CaptureShape, *, seed: int, drop: bool) -> Path:
    """The segment's depth stream, frame k at k/fps (the video's clock); with ``drop`` a
    stretch mid-segment is missing, as a sensor's dropped frames."""
    count = int(capture.seconds * capture.fps)
    w, h = depth_size(capture.width, capture.height)
    dropped = tuple(range(count // 2, count // 2 + max(2, count // 15))) if drop else ()
    frames = _frames(count, w, h, seed)
    return write_depth_mkv(frames, float(capture.fps), path, dropped=dropped)


def declared_depth(object_key: str, path: Path) -> dict[str, Any]:
    """The depth stream as a declared object of the segment envelope."""
    return {
        "role": ROLE,
        "object_key": object_key,
        "size_bytes": path.stat().st_size,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "content_type": CONTENT_TYPE,
        "format": FORMAT,
    }
