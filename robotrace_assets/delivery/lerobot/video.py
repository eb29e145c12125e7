"""Every ffmpeg call of the LeRobot export and validator: probe, encode, sampled and full decode.

All of them go through the shared runner of ``robotrace_assets.media`` (one binary, one
timeout); here its ``MediaError`` becomes the export's own error or the validator's problem text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robotrace_assets.delivery.lerobot.layout import PIX_FMT, TIMESTAMP_TOLERANCE_S
from robotrace_assets.delivery.lerobot.model import (
    FloatArray,
    LeRobotExportError,
    ResolvedEpisode,
)
from robotrace_assets.media.ffmpeg import MediaError, ffmpeg_pipe, run_ffmpeg, stderr_tail
from robotrace_assets.media.inputs import input_args
from robotrace_assets.media.probe import probe_packet_times, probe_video_stream

__all__ = [
    "SourceVideo",
    "VideoProbe",
    "VideoProbeError",
    "decode_errors",
    "decode_sampled_frames",
    "encode_episodes",
    "probe_dataset_video",
    "probe_source",
]

# LeRobot encodes with a GOP of 2 so a random-access query decodes at most one extra frame;
# no B-frames keeps pts == dts, so packet timestamps are exactly the frame grid.
_GOP = 2
_CRF = 23
_X264_PRESET = "veryfast"


class VideoProbeError(RuntimeError):
    """A dataset video could not be probed (missing stream, unreadable container)."""


@dataclass(frozen=True)
class SourceVideo:
    """Facts about a source MP4 measured once per path."""

    duration_s: float
    width: int
    height: int


@dataclass(frozen=True)
class VideoProbe:
    """A dataset video as the loader sees it: packet times and its stream."""

    times: FloatArray
    codec: str
    width: int
    height: int


def probe_source(path: Path) -> SourceVideo:
    """Duration and frame size of a source video; raises LeRobotExportError."""
    try:
        times = probe_packet_times(path)
        stream = probe_video_stream(path)
    except MediaError as exc:
        raise LeRobotExportError(f"cannot read source video {path}: {exc}") from exc
    if not times:
        raise LeRobotExportError(f"source video {path} has no video frames")
    # The last frame is displayed for one nominal interval; estimate it from the median gap.
    frame_s = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    return SourceVideo(times[-1] + frame_s, stream.width, stream.height)


def _input_args(episodes: Sequence[ResolvedEpisode], fps: int) -> list[str]:
    args: list[str] = []
    for ep in episodes:
        # Read a little past the window so fps rounding never starves the last frame.
        read_s = ep.length / fps + 1.0
        args += ["-ss", f"{ep.source.start_s:.6f}", "-t", f"{read_s:.6f}"]
        args += input_args(str(ep.source.video_path))
    return args


def _filter_graph(episodes: Sequence[ResolvedEpisode], fps: int, width: int, height: int) -> str:
    chains: list[str] = [
        f"[{i}:v:0]fps={fps},tpad=stop_mode=clone:stop={ep.length},"
        f"trim=end_frame={ep.length},setpts=N/({fps}*TB),"
        f"scale={width}:{height},setsar=1[v{i}]"
        for i, ep in enumerate(episodes)
    ]
    joined = "".join(f"[v{i}]" for i in range(len(episodes)))
    # Re-stamp after concat too: frame n of the file is at n / fps, whatever durations concat
    # inferred for segment ends.
    chains.append(
        f"{joined}concat=n={len(episodes)}:v=1:a=0,setpts=N/({fps}*TB),format={PIX_FMT}[out]"
    )
    return ";".join(chains)


def _h264_output_args(out_path: Path) -> list[str]:
    return [
        *("-map", "[out]", "-an", "-sn", "-dn"),
        *("-c:v", "libx264", "-preset", _X264_PRESET, "-crf", str(_CRF)),
        *("-g", str(_GOP), "-bf", "0", "-pix_fmt", PIX_FMT),
        # Timestamps are already exact; passthrough guarantees ffmpeg neither dups nor drops.
        *("-fps_mode", "passthrough"),
        *("-movflags", "+faststart", "-map_metadata", "-1", "-f", "mp4", str(out_path)),
    ]


def encode_episodes(
    episodes: Sequence[ResolvedEpisode], out_path: Path, fps: int, width: int, height: int
) -> None:
    """Cut every episode's window, resample to constant ``fps`` and encode them back to back.

    One ffmpeg run per output file: each input is seeked to its window (accurate seek, so the
    first kept frame is the first at or after start_s), forced onto the fps grid (dropped
    source frames are filled by repeating the previous one), padded by cloning the last frame
    if the source runs short, cut to exactly ``length`` frames and re-stamped ``n / fps``.
    """
    try:
        args = [
            *_input_args(episodes, fps),
            *("-filter_complex", _filter_graph(episodes, fps, width, height)),
            *_h264_output_args(out_path),
        ]
        run_ffmpeg(args, what=f"encoding {out_path.name}")
    except MediaError as exc:
        raise LeRobotExportError(str(exc)) from exc

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


def decode_sampled_frames(
    path: Path, wanted: Mapping[int, int], groups: int, width: int, height: int
) -> list[list[np.ndarray]]:
    """RGB frames of ``path`` scaled to ``width`` x ``height``, kept only where ``wanted`` maps
    a file frame number to a group (0..groups-1); one streaming decode of the whole file.

    A decode error raises LeRobotExportError (the file would not load either).
    """
    frame_bytes = width * height * 3
    samples: list[list[np.ndarray]] = [[] for _ in range(groups)]
    try:
        args = [
            *input_args(str(path)),
            *("-map", "0:v:0", "-vf", f"scale={width}:{height}:flags=neighbor"),
            *("-f", "rawvideo", "-pix_fmt", "rgb24", "-"),
        ]
        with ffmpeg_pipe(args, what=f"decoding {path.name}") as stdout:
            frame = 0
            while chunk := stdout.read(frame_bytes):
                if len(chunk) != frame_bytes:
                    break
                group = wanted.get(frame)
                if group is not None:
                    pixels = np.frombuffer(chunk, dtype=np.uint8).reshape(height, width, 3)
                    samples[group].append(pixels)
                frame += 1
    except MediaError as exc:
        raise LeRobotExportError(str(exc)) from exc
    return samples


def probe_dataset_video(path: Path) -> VideoProbe:
    """Packet times, codec and frame size of a dataset video; raises VideoProbeError."""
    try:
        times = np.asarray(probe_packet_times(path), dtype=np.float64)
        stream = probe_video_stream(path)
    except MediaError as exc:
        raise VideoProbeError(str(exc)) from exc
    return VideoProbe(times, stream.codec, stream.width, stream.height)


def decode_errors(path: Path) -> str | None:
    """Decode every frame of ``path``; what went wrong, or None when it decodes cleanly."""
    try:
        args = [*input_args(str(path)), "-map", "0:v:0", "-f", "null", "-"]
        run = run_ffmpeg(args, what=f"decoding {path.name}", check=False)
    except MediaError as exc:
        return f"could not decode: {exc}"
    if run.returncode != 0 or run.stderr.strip():
        return f"decode errors: {stderr_tail(run.stderr)}"
    return None
