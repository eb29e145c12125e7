"""Derivative profiles, versioned. Change a setting, bump the version: the refresh sensor then
backfills every proven segment whose derivatives were made with another profile."""

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

    version: str = "d1"
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
    version="d1",
    proxy_height=480,
    proxy_crf=28,
    proxy_preset="veryfast",
    keyframe_interval_s=1.0,
    thumbnails=8,
    thumbnail_width=320,
    sheet_columns=4,
    sheet_tile_width=240,
)
