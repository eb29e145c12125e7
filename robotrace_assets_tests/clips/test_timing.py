"""Clip timing: dropped video frames from timestamps and the robot-vs-video clock fit."""

from __future__ import annotations

import numpy as np
import pytest

from robotrace_assets.clips.timing import fit_clock_ms_ppm, frame_gaps
from robotrace_assets.media.probe import count_dropped_frames

FPS = 30.0
# The simulator's dropped_frames defect on a 4 s, 30 fps clip: 6 consecutive frames from 40.
REGULAR = np.arange(120) / FPS
GAPPY = np.delete(REGULAR, tuple(range(40, 46)))


def test_clock_fit_keeps_nanosecond_precision_at_epoch_scale() -> None:
    # At ~1.8e18 ns float64 steps are 256 ns: converting before subtracting would lose this.
    host = 1_780_000_000_000_000_000 + np.arange(0, 1_000_000_000, 10_000_000, dtype=np.int64)
    device = host + 1_234 + (host - host[0]) // 1_000_000  # +1.234 us, +1 ppm
    offset_ms, skew_ppm = fit_clock_ms_ppm(host, device)
    assert offset_ms == pytest.approx(0.001234, abs=1e-6)
    assert skew_ppm == pytest.approx(1.0, abs=1e-3)


def test_clock_fit_edge_cases() -> None:
    assert fit_clock_ms_ppm([10**18], [10**18 + 5_000_000]) == (5.0, 0.0)
    with pytest.raises(ValueError, match="at least one"):
        fit_clock_ms_ppm([], [])
    with pytest.raises(ValueError, match="samples"):
        fit_clock_ms_ppm([1, 2], [1])


def test_frame_gaps_on_regular_and_gappy_timestamps() -> None:
    assert frame_gaps(REGULAR, FPS) == (0, pytest.approx(1 / FPS), [])
    dropped, longest, gaps = frame_gaps(GAPPY, FPS)
    assert dropped == 6
    assert longest == pytest.approx(7 / FPS)
    assert gaps == [(pytest.approx(39 / FPS), pytest.approx(7 / FPS))]
    # Unsorted input is sorted first, as count_dropped_frames does.
    shuffled = np.random.default_rng(0).permutation(GAPPY)
    assert frame_gaps(shuffled, FPS)[0] == 6
    assert frame_gaps([], FPS) == (0, 0.0, [])
    with pytest.raises(ValueError, match="fps"):
        frame_gaps(REGULAR, 0.0)


def test_frame_gaps_counts_like_count_dropped_frames() -> None:
    rng = np.random.default_rng(11)
    for _ in range(20):
        keep = np.sort(rng.choice(300, size=rng.integers(2, 300), replace=False))
        times = keep / FPS + rng.normal(0.0, 0.002, size=keep.size)  # container jitter
        assert frame_gaps(times, FPS)[0] == count_dropped_frames(times.tolist(), FPS)
