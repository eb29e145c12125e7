"""The ffmpeg-python graph pieces of the derivatives' single pass (no Dagster here).

    [0:v:0] split=2 [proxy][stills]
      [proxy]  scale=-2:min(H,even(ih)), format=yuv420p -> libx264 MP4 (+faststart)
      [stills] select=<N evenly spaced frames>, split=2 [thumbs][sheet]
        [thumbs] scale=W:-2                -> thumb_%02d.jpg
        [sheet]  scale=w:-2, tile=CxR      -> contact_sheet.jpg
    0:v:0 (stream copy, no decode)         -> packet log -> MediaProbe

The stills branch selects its frames before scaling, so only N frames are ever scaled or
JPEG-encoded; the packet log is a stream copy of the very packets being decoded, so the probe
costs no second read.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ffmpeg

from robotrace_assets.derivatives.profiles import DerivativeProfile
from robotrace_assets.media.inputs import input_options
from robotrace_assets.media.probe import PACKET_LOG_FORMAT

__all__ = [
    "PACKETS_NAME",
    "PROXY_NAME",
    "SHEET_NAME",
    "THUMB_GLOB",
    "THUMB_PATTERN",
    "packets_output",
    "proxy_output",
    "select_stills",
    "sheet_output",
    "source_input",
    "thumbs_output",
]

PROXY_NAME = "proxy.mp4"
THUMB_PATTERN = "thumb_%02d.jpg"
THUMB_GLOB = "thumb_*.jpg"
SHEET_NAME = "contact_sheet.jpg"
PACKETS_NAME = "packets.framecrc"
# mjpeg quality scale (2 best .. 31 worst); 3 is visually clean at a few tens of KB a still.
_JPEG_QUALITY = 3


def source_input(
    source: str,
    profile: DerivativeProfile,
    *,
    decode: bool,
    headers: Mapping[str, str] | None = None,
) -> Any:
    """ffmpeg input node for a local path or an http(s) URL, streamed (never copied first).

    Raises ``MediaError`` for a local path that is not a non-empty file.
    """
    target, options = input_options(source, headers)
    if decode:
        options["threads"] = profile.threads
    return ffmpeg.input(target, **options)


def proxy_output(video: Any, path: Path, profile: DerivativeProfile) -> Any:
    # At most proxy_height, never upscaled, even on both axes (-2 keeps the aspect ratio).
    scaled = video.filter("scale", -2, f"min({profile.proxy_height},trunc(ih/2)*2)").filter(
        "format", "yuv420p"
    )
    return ffmpeg.output(
        scaled,
        str(path),
        f="mp4",
        vcodec="libx264",
        preset=profile.proxy_preset,
        crf=profile.proxy_crf,
        threads=profile.threads,
        # Time-based keyframes (GOP = fps * interval) without knowing fps before the run,
        # and still correct across timestamp gaps.
        force_key_frames=f"expr:gte(t,n_forced*{profile.keyframe_interval_s!r})",
        # Keep the source's timestamps (gaps included) so proxy time == capture time.
        fps_mode="passthrough",
        movflags="+faststart",
        map_metadata=-1,
        map_chapters=-1,
        metadata=f"comment=robotrace derivative {profile.version} {profile.fingerprint()}",
    )


def select_stills(video: Any, duration_s: float, profile: DerivativeProfile) -> Any:
    """The ``thumbnails`` frames nearest the centres of equal slices of the segment.

    Still k is the first frame whose time (plus half the previous frame interval, so a frame
    that *covers* the target counts) reaches (k + 0.5) * duration / N. Targets are absolute,
    so rounding never accumulates and, given at least N frames, the last still is reached.
    """
    step = duration_s / profile.thumbnails
    target = f"(selected_n+0.5)*{step!r}"
    expr = f"if(isnan(prev_t),gte(t-start_t,{target}),gte(t-start_t+(t-prev_t)/2,{target}))"
    return video.filter("select", expr)


def thumbs_output(stills: Any, out_dir: Path, profile: DerivativeProfile) -> Any:
    return ffmpeg.output(
        stills.filter("scale", profile.thumbnail_width, -2),
        str(out_dir / THUMB_PATTERN),
        f="image2",
        vcodec="mjpeg",
        fps_mode="passthrough",  # one file per selected frame, never duplicated
        **{"q:v": _JPEG_QUALITY, "frames:v": profile.thumbnails},
    )


def sheet_output(stills: Any, path: Path, profile: DerivativeProfile) -> Any:
    tiled = stills.filter("scale", profile.sheet_tile_width, -2).filter(
        "tile", f"{profile.sheet_columns}x{profile.sheet_rows}"
    )
    return ffmpeg.output(
        tiled,
        str(path),
        f="image2",
        vcodec="mjpeg",
        update=1,  # a single image, not a numbered sequence
        **{"q:v": _JPEG_QUALITY, "frames:v": 1},
    )


def packets_output(source: Any, path: Path) -> Any:
    # Stream copy: the packet timestamps of the same read, with no second decode.
    return ffmpeg.output(source["v:0"], str(path), f=PACKET_LOG_FORMAT, c="copy")
