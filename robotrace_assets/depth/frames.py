"""Depth frames as numpy arrays: decoded from, and written to, the declared depth format."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from robotrace_assets.depth.stream import (
    CODEC,
    MODALITIES,
    PIXEL_FORMAT,
    SENSOR_TAG,
    UNITS,
    UNITS_TAG,
    DepthError,
)
from robotrace_assets.media.ffmpeg import MediaError, ffmpeg_pipe, run_ffmpeg
from robotrace_assets.media.inputs import input_args, source_label

__all__ = ["iter_depth_frames", "read_depth_frames", "write_depth_mkv"]

DepthFrames = npt.NDArray[np.uint16]


def _decode_args(source: str, headers: Mapping[str, str] | None) -> list[str]:
    # passthrough: one output frame per stored frame; the default would repeat frames over
    # the gaps a dropped depth frame leaves.
    return [
        *input_args(source, headers),
        *("-map", "0:v:0", "-fps_mode", "passthrough"),
        *("-f", "rawvideo", "-pix_fmt", PIXEL_FORMAT, "-"),
    ]


def iter_depth_frames(
    source: str,
    width: int,
    height: int,
    headers: Mapping[str, str] | None = None,
    batch: int = 64,
) -> Iterator[DepthFrames]:
    """The stored frames in order, ``batch`` at a time, as (n, height, width) millimetres."""
    frame_bytes = width * height * 2
    what = f"decoding depth stream {source_label(source)}"
    try:
        with ffmpeg_pipe(_decode_args(source, headers), what=what, source=source) as out:
            while chunk := out.read(frame_bytes * batch):
                if len(chunk) % frame_bytes:
                    raise DepthError(f"{what}: a frame was cut short")
                frames = np.frombuffer(chunk, dtype="<u2").reshape(-1, height, width)
                yield frames.astype(np.uint16, copy=False)
    except MediaError as error:
        raise DepthError(str(error)) from None


def read_depth_frames(
    source: str, width: int, height: int, headers: Mapping[str, str] | None = None
) -> DepthFrames:
    """Every stored frame at once; for short streams (tests, one clip's export)."""
    parts = list(iter_depth_frames(source, width, height, headers))
    return np.concatenate(parts) if parts else np.zeros((0, height, width), dtype=np.uint16)


def _ranges(indices: Sequence[int]) -> str:
    """``between(n,a,b)`` terms for sorted frame indices: one term per run of neighbours, so a
    long drop stays a short filter expression."""
    runs: list[list[int]] = []
    for i in indices:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return "+".join(f"between(n,{a},{b})" for a, b in runs)


def write_depth_mkv(
    frames: DepthFrames,
    fps: float,
    path: Path,
    *,
    modality: str = "lidar",
    dropped: Sequence[int] = (),
) -> Path:
    """Write (n, height, width) millimetres as the declared depth format, frame k at k/fps,
    leaving out the frames in ``dropped`` (their timestamps become gaps, as a sensor's drops)."""
    if modality not in MODALITIES:
        raise DepthError(f"unknown depth modality {modality!r}")
    if frames.ndim != 3 or not frames.shape[0]:
        raise DepthError(f"depth frames must be (n, height, width), got {frames.shape}")
    count, height, width = frames.shape
    kept = [i for i in sorted(set(dropped)) if 0 <= i < count]
    with tempfile.TemporaryDirectory(prefix="robotrace-depth-") as temp:
        raw = Path(temp) / "depth.raw"
        raw.write_bytes(np.ascontiguousarray(frames, dtype="<u2").tobytes())
        chosen = ["-vf", f"select='not({_ranges(kept)})'"] if kept else []
        run_ffmpeg(
            [
                *("-f", "rawvideo", "-pix_fmt", PIXEL_FORMAT, "-s", f"{width}x{height}"),
                *("-r", f"{fps}", "-i", f"file:{raw}"),
                *chosen,
                *("-fps_mode", "passthrough", "-c:v", CODEC, "-level", "3"),
                *("-metadata:s:v:0", f"{SENSOR_TAG}={modality}"),
                *("-metadata:s:v:0", f"{UNITS_TAG}={UNITS}"),
                "-y",
                str(path),
            ],
            what=f"writing depth stream {path.name}",
        )
    return path
