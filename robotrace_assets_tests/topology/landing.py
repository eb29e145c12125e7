"""Segments landing in the topology's bucket as a capture client writes them: tiny ones, and a
big one whose proof read lasts long enough to be cut."""

from __future__ import annotations

import struct
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from robotrace_assets.capture.media import VideoInfo
from robotrace_assets.capture.simulator import CaptureSimulator, SimulationConfig
from robotrace_assets.capture.via_api import ApiCaptureSimulator
from robotrace_assets.objectstore.client import S3Client

# One second of 64x48 video and a 30 Hz trajectory: the smallest segment the simulator makes.
TINY = {"seconds": 1.0, "fps": 10, "width": 64, "height": 48, "codec": "h264", "sensor_hz": 30.0}


def land(
    client: S3Client, bucket: str, segments: int, seed: int, sessions: int = 1, **config: object
) -> list[str]:
    """Write `sessions` x `segments` tiny segments (envelopes, objects, inbox entries); ids."""
    settings = {**TINY, **config}
    cfg = SimulationConfig(
        sessions=sessions,
        segments=segments,
        seed=seed,
        # Distinct ids per call: ids are minted from the seed and this time.
        base_time=datetime.now(UTC) - timedelta(minutes=5),
        **settings,  # type: ignore[arg-type]
    )
    done = CaptureSimulator(client, bucket, cfg).run()
    return [seg.segment_id for session in done for seg in session.segments]


def pad_mp4(path: Path, padding: int) -> None:
    """Append an MP4 `free` box of `padding` bytes: still a valid MP4 (players and ffmpeg skip
    free boxes), declared and proven like any other bytes, but big."""
    with open(path, "ab") as video:
        video.write(struct.pack(">I4s", padding + 8, b"free"))
        block = b"\0" * (8 * 1024 * 1024)
        left = padding
        while left > 0:
            video.write(block[: min(left, len(block))])
            left -= len(block)


class PaddedSimulator(CaptureSimulator):
    """The simulator with `padding` bytes added to every video (pad_mp4)."""

    padding = 0

    def _encode_video(self, path: Path, seed: int, defects: set[str]) -> VideoInfo:
        info = super()._encode_video(path, seed, defects)
        pad_mp4(path, self.padding)
        return replace(info, size_bytes=path.stat().st_size)


class PaddedApiSimulator(ApiCaptureSimulator):
    padding = 0

    def _encode_video(self, path: Path, seed: int, defects: set[str]) -> VideoInfo:
        info = super()._encode_video(path, seed, defects)
        pad_mp4(path, self.padding)
        return replace(info, size_bytes=path.stat().st_size)


def land_big(client: S3Client, bucket: str, seed: int, padding: int) -> str:
    cfg = SimulationConfig(
        sessions=1,
        segments=1,
        seed=seed,
        base_time=datetime.now(UTC) - timedelta(minutes=5),
        part_size=64 * 1024 * 1024,
        **TINY,  # type: ignore[arg-type]
    )
    simulator = PaddedSimulator(client, bucket, cfg)
    simulator.padding = padding
    return simulator.run()[0].segments[0].segment_id


def tiny_config(seed: int, segments: int = 1, **changes: object) -> SimulationConfig:
    settings = {**TINY, **changes}
    return SimulationConfig(
        sessions=1,
        segments=segments,
        seed=seed,
        base_time=datetime.now(UTC) - timedelta(minutes=5),
        **settings,  # type: ignore[arg-type]
    )
