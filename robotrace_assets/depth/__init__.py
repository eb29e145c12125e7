"""Depth streams of LiDAR / time-of-flight captures (no Dagster here).

The declared depth object, format ``robotrace-depth-mkv-v1`` (segment envelope
``objects[]`` entry with ``role: "depth"``, ``content_type: "video/x-matroska"``):

- a Matroska file whose first video stream is FFV1 (lossless) with pixel format ``gray16le``:
  every pixel is a distance in millimetres, 0 where the sensor had no return;
- each frame's presentation time is its capture time on the raw video's clock (0 = the first
  video frame), so a frame the sensor dropped is a gap in the timestamps, never a repeated frame;
- the stream's tags say what measured it: ``DEPTH_SENSOR`` (``lidar``, ``tof``,
  ``structured_light`` or ``stereo``: the clip's depth modality) and optionally
  ``DEPTH_UNITS`` (only ``mm``).

ffmpeg writes one: ``-f rawvideo -pix_fmt gray16le -s WxH -r FPS -i depth.raw -c:v ffv1
-metadata:s:v:0 DEPTH_SENSOR=lidar depth.mkv`` (``frames.write_depth_mkv`` does it from numpy).
"""

from robotrace_assets.depth.align import DepthAlignment, align_depth
from robotrace_assets.depth.frames import read_depth_frames, write_depth_mkv
from robotrace_assets.depth.stream import (
    CONTENT_TYPE,
    FORMAT,
    MODALITIES,
    ROLE,
    DepthError,
    DepthStream,
    parse_depth_stream,
    probe_depth,
)

__all__ = [
    "CONTENT_TYPE",
    "FORMAT",
    "MODALITIES",
    "ROLE",
    "DepthAlignment",
    "DepthError",
    "DepthStream",
    "align_depth",
    "parse_depth_stream",
    "probe_depth",
    "read_depth_frames",
    "write_depth_mkv",
]
