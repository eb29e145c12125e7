"""Derivative profiles, versioned. Change a setting, bump the version: the refresh schedule then
backfills every proven segment whose derivatives were made with another profile."""

from robotrace_assets.derivatives.media import DerivativeProfile

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
