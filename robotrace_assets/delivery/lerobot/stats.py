"""LeRobot feature statistics: numeric per dimension, image per channel, per episode and overall.

Every feature carries ``min, max, mean, std, count`` and the quantiles ``q01, q10, q50, q90,
q99`` that LeRobot's own writer stores (quantile normalization needs q01/q99). Image quantiles
are exact over the sampled pixels: 8-bit pixels fit a 256-bin histogram per channel, so the
quantile is read off the histogram with numpy's default (linear) rule, and the dataset-wide
quantiles come from the summed histograms of every episode, exact over all sampled frames.
(LeRobot's aggregate_stats can only bound them from per-episode quantiles; ours lie inside
those bounds.)

Depth maps (``observation.depth``, millimetres) are reduced over the frame axis keeping the
map's shape, per pixel (``layout.depth_stats_shape``: per column for maps too large for that),
over every exported map, dropped frames' zero maps included, as they stand in the data. Each
episode's quantiles are exact (``numpy.quantile``); the dataset's min, max, mean, std and count
are exact too, and its quantiles are LeRobot's aggregate_stats envelope of the episodes' (the
lowest q01..q50, the highest q90/q99), since exact per-pixel quantiles over a whole dataset
would need every map of it in memory at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robotrace_assets.delivery.lerobot.model import LeRobotExportError, ResolvedEpisode
from robotrace_assets.delivery.lerobot.video import decode_sampled_frames

__all__ = [
    "QUANTILES",
    "PixelStats",
    "aggregate_depth_stats",
    "aggregate_image_stats",
    "depth_stats",
    "image_stats",
    "jsonable",
    "numeric_stats",
    "video_episode_stats",
]

# Image stats as LeRobot computes them: up to 100 sampled frames per episode, downsampled to
# ~150 px when the long side is >= 300 px, per-channel values in [0, 1].
_STATS_MIN_SAMPLES = 100
_STATS_MAX_SAMPLES = 10_000
_STATS_POWER = 0.75
_STATS_TARGET_PX = 150
_STATS_DOWNSAMPLE_FROM_PX = 300
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
_LEVELS = 256  # 8-bit pixels

Stats = dict[str, np.ndarray]


@dataclass(frozen=True)
class PixelStats:
    """One episode's image stats and the per-channel histogram (3, 256) they came from."""

    stats: Stats
    histogram: np.ndarray


def _estimate_num_samples(length: int) -> int:
    low = min(_STATS_MIN_SAMPLES, length)
    return max(low, min(int(length**_STATS_POWER), _STATS_MAX_SAMPLES))


def _stats_frame_size(width: int, height: int) -> tuple[int, int]:
    long_side = max(width, height)
    if long_side < _STATS_DOWNSAMPLE_FROM_PX:
        return width, height
    factor = max(1, int(long_side / _STATS_TARGET_PX))
    return max(1, width // factor), max(1, height // factor)


def _sampled_frames(episodes: Sequence[ResolvedEpisode]) -> dict[int, int]:
    """File frame number -> position in ``episodes``, for the frames each episode samples."""
    wanted: dict[int, int] = {}
    for pos, ep in enumerate(episodes):
        picks = np.round(np.linspace(0, ep.length - 1, _estimate_num_samples(ep.length)))
        for k in np.unique(picks.astype(np.int64)):
            wanted[ep.video_from_frame + int(k)] = pos
    return wanted


def _order_statistic(cumulative: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Per channel, the k-th smallest level (0-based): the first whose cumulative count > k."""
    return np.array(
        [np.searchsorted(c, n, side="right") for c, n in zip(cumulative, k, strict=True)]
    )


def _histogram_quantiles(histogram: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel quantiles of the pixels counted in ``histogram`` (3, 256), in [0, 1], equal
    to ``np.quantile`` (linear) over those pixels: between order statistics lo and lo + 1."""
    cumulative = np.cumsum(histogram, axis=1)
    total = cumulative[:, -1]
    out: dict[str, np.ndarray] = {}
    for name, q in QUANTILES.items():
        position = q * (total - 1)
        lo = np.floor(position).astype(np.int64)
        hi = np.minimum(lo + 1, total - 1)
        value_lo, value_hi = _order_statistic(cumulative, lo), _order_statistic(cumulative, hi)
        value = value_lo + (position - lo) * (value_hi - value_lo)
        out[name] = (value / 255.0).reshape(3, 1, 1)
    return out


def image_stats(frames: Sequence[np.ndarray]) -> PixelStats:
    """LeRobot image stats of RGB frames (h, w, 3) uint8: per channel, shape (3, 1, 1)."""
    stacked = np.stack(frames)
    pixels = stacked.astype(np.float64) / 255.0
    histogram = np.stack(
        [np.bincount(stacked[..., c].ravel(), minlength=_LEVELS) for c in range(3)]
    )
    stats = {
        "min": pixels.min(axis=(0, 1, 2)).reshape(3, 1, 1),
        "max": pixels.max(axis=(0, 1, 2)).reshape(3, 1, 1),
        "mean": pixels.mean(axis=(0, 1, 2)).reshape(3, 1, 1),
        "std": pixels.std(axis=(0, 1, 2)).reshape(3, 1, 1),
        "count": np.array([len(frames)]),
    }
    return PixelStats({**stats, **_histogram_quantiles(histogram)}, histogram)


def video_episode_stats(
    path: Path, episodes: Sequence[ResolvedEpisode], width: int, height: int
) -> list[PixelStats]:
    """Per-episode pixel stats of one video file (LeRobot image stats: shape (3, 1, 1), values
    in [0, 1]), from one streaming decode that keeps only the sampled frames."""
    sw, sh = _stats_frame_size(width, height)
    samples = decode_sampled_frames(path, _sampled_frames(episodes), len(episodes), sw, sh)
    stats = []
    for ep, frames in zip(episodes, samples, strict=True):
        if not frames:
            raise LeRobotExportError(
                f"decoding {path.name}: no frames for episode {ep.episode_index}"
            )
        stats.append(image_stats(frames))
    return stats


def numeric_stats(values: np.ndarray) -> Stats:
    """LeRobot numeric stats over the frame axis: per-dimension arrays, ``count`` as ``[n]``."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    stats = {
        "min": arr.min(axis=0),
        "max": arr.max(axis=0),
        "mean": arr.mean(axis=0),
        "std": arr.std(axis=0),
        "count": np.array([arr.shape[0]]),
    }
    for name, q in QUANTILES.items():
        stats[name] = np.quantile(arr, q, axis=0)
    return stats


def aggregate_image_stats(pixel_parts: Sequence[PixelStats]) -> Stats:
    """Combine per-episode image stats: count-weighted mean, pooled variance, min/max, and
    quantiles of the summed histograms."""
    parts = [p.stats for p in pixel_parts]
    counts = np.array([p["count"][0] for p in parts], dtype=np.float64)
    total = counts.sum()
    means = np.stack([p["mean"] for p in parts])
    weights = counts.reshape(-1, 1, 1, 1)
    mean = (means * weights).sum(axis=0) / total
    var = ((np.stack([p["std"] for p in parts]) ** 2 + (means - mean) ** 2) * weights).sum(
        axis=0
    ) / total
    return {
        "min": np.min(np.stack([p["min"] for p in parts]), axis=0),
        "max": np.max(np.stack([p["max"] for p in parts]), axis=0),
        "mean": mean,
        "std": np.sqrt(var),
        "count": np.array([int(total)]),
        **_histogram_quantiles(np.sum([p.histogram for p in pixel_parts], axis=0)),
    }


def jsonable(stats: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, dict[str, Any]]:
    """Stats as nested lists, for stats.json."""
    return {key: {k: np.asarray(v).tolist() for k, v in s.items()} for key, s in stats.items()}


def depth_stats(maps: np.ndarray, shape: tuple[int, ...]) -> Stats:
    """One episode's depth stats: (n, height, width) maps reduced over the frames to ``shape``
    (height, width) per pixel, or over frames and rows to (width,) per column."""
    count = maps.shape[0]
    values = maps if len(shape) == 2 else maps.reshape(-1, maps.shape[-1])
    stats = {
        "min": values.min(axis=0).astype(np.float64),
        "max": values.max(axis=0).astype(np.float64),
        "mean": values.mean(axis=0, dtype=np.float64),
        "std": values.std(axis=0, dtype=np.float64),
        "count": np.array([count]),
    }
    quantiles = np.quantile(values, list(QUANTILES.values()), axis=0)
    return stats | dict(zip(QUANTILES, quantiles, strict=True))


def aggregate_depth_stats(parts: Sequence[Stats]) -> Stats:
    """Dataset-wide depth stats from the episodes': exact min, max, count-weighted mean and
    pooled std; quantiles as LeRobot's aggregate_stats bounds them (min of the episodes' for
    q01..q50, max for q90 and q99)."""
    counts = np.array([p["count"][0] for p in parts], dtype=np.float64)
    total = counts.sum()
    weights = counts.reshape(-1, *([1] * parts[0]["mean"].ndim))
    means = np.stack([p["mean"] for p in parts])
    mean = (means * weights).sum(axis=0) / total
    var = ((np.stack([p["std"] for p in parts]) ** 2 + (means - mean) ** 2) * weights).sum(
        axis=0
    ) / total
    out = {
        "min": np.min(np.stack([p["min"] for p in parts]), axis=0),
        "max": np.max(np.stack([p["max"] for p in parts]), axis=0),
        "mean": mean,
        "std": np.sqrt(var),
        "count": np.array([int(total)]),
    }
    for name, q in QUANTILES.items():
        stacked = np.stack([p[name] for p in parts])
        out[name] = stacked.min(axis=0) if q <= 0.5 else stacked.max(axis=0)
    return out
