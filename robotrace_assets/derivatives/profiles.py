"""Derivative profiles, versioned. Change a setting, bump the version: the refresh sensor then
backfills every proven segment whose derivatives were made with another profile.

d2 added the label track (its motion-phase thresholds are part of the profile), so moving from
d1 re-derives every proven segment once: proxy, stills and probe again too, because all of
them come from the one pass over the source. d3 added the depth derivative (the declared depth
stream aligned to the video frames); it has no settings of its own, but the set of derivatives a
profile stands for changed, so every proven segment is re-derived once more."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass

__all__ = ["CURRENT_PROFILE", "DerivativeProfile"]

_X264_PRESETS = frozenset(
    {
        "ultrafast",
        "superfast",
        "veryfast",
        "faster",
        "fast",
        "medium",
        "slow",
        "slower",
        "veryslow",
        "placebo",
    }
)


@dataclass(frozen=True)
class DerivativeProfile:
    """Everything that decides how derivatives look; its fingerprint is stored beside them."""

    version: str = "d3"
    proxy_height: int = 480
    proxy_crf: int = 28
    proxy_preset: str = "veryfast"
    # A keyframe at least this often keeps scrubbing in the review player responsive.
    keyframe_interval_s: float = 1.0
    thumbnails: int = 8
    thumbnail_width: int = 320
    sheet_columns: int = 4
    sheet_tile_width: int = 240
    threads: int = 2
    # Label track: end-effector speed at or above this is "moving" (the simulator's position
    # noise gives ~0.1 mm/s at rest; its moves peak at ~0.5 m/s) ...
    label_moving_speed_m_s: float = 0.01
    # ... and wrist force at or above this is "in_contact": above a carried payload (the
    # simulator's 0.1-0.8 kg weigh up to 7.8 N), below its grasp/release presses (8-35 N).
    label_contact_force_n: float = 10.0

    def __post_init__(self) -> None:
        # yuv420p (x264 and JPEG) needs even sizes; odd ones fail deep inside ffmpeg.
        for name in ("proxy_height", "thumbnail_width", "sheet_tile_width"):
            value = getattr(self, name)
            if value < 2 or value % 2:
                raise ValueError(f"{name} must be an even number >= 2, got {value}")
        for name in ("thumbnails", "sheet_columns", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.proxy_crf <= 51:
            raise ValueError(f"proxy_crf must be within 0..51, got {self.proxy_crf}")
        if self.proxy_preset not in _X264_PRESETS:
            raise ValueError(f"unknown x264 preset {self.proxy_preset!r}")
        if not (self.keyframe_interval_s > 0 and math.isfinite(self.keyframe_interval_s)):
            raise ValueError(
                f"keyframe_interval_s must be positive, got {self.keyframe_interval_s}"
            )
        for name in ("label_moving_speed_m_s", "label_contact_force_n"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be positive and finite, got {value}")
        if not self.version:
            raise ValueError("version must not be empty")

    @property
    def sheet_rows(self) -> int:
        return math.ceil(self.thumbnails / self.sheet_columns)

    def fingerprint(self) -> str:
        """Short stable hash of every field: equal fingerprints mean identically made."""
        # sort_keys and repr-stable JSON floats keep this independent of field order.
        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


CURRENT_PROFILE = DerivativeProfile(
    version="d3",
    proxy_height=480,
    proxy_crf=28,
    proxy_preset="veryfast",
    keyframe_interval_s=1.0,
    thumbnails=8,
    thumbnail_width=320,
    sheet_columns=4,
    sheet_tile_width=240,
    label_moving_speed_m_s=0.01,
    label_contact_force_n=10.0,
)
