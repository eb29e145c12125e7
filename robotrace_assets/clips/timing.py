"""Timing signals of a clip window: dropped video frames and the robot-vs-video clock fit.

Clocks, explicitly:

* ``host_time_ns`` is the host/video clock (the camera's packet timestamps live on it);
* ``device_time_ns`` is the robot controller's clock, which stamped the kinematic samples.

The clock fit is ``device = a * host + b`` with both clocks measured from the window's first
host sample; ``clock_offset_ms = b`` (positive: the robot clock reads *ahead* of the video
clock) and ``clock_skew_ppm = (a - 1) * 1e6`` (positive: the robot clock runs *fast*). This
matches how the simulator injects drift (``TrajectorySpec.clock_skew_ppm/clock_offset_s``).
Fitting the other way round (``host = a' * device + b'``) gives, to first order, ``b' = -b``
and the same skew with the opposite sign; the rules only use magnitudes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = [
    "GAP_FACTOR",
    "NS_PER_S",
    "check_rate",
    "dropped_from_gaps",
    "fit_clock_ms_ppm",
    "frame_gaps",
]

# A sample interval above 1.5 nominal periods is a hole in the log (or in the video).
GAP_FACTOR = 1.5
NS_PER_S = 1_000_000_000


def check_rate(value: float, name: str) -> None:
    """Refuse a sample or frame rate that is not a positive finite number."""
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a positive finite rate, got {value}")


def frame_gaps(
    packet_times_s: Sequence[float] | npt.ArrayLike, fps: float
) -> tuple[int, float, list[tuple[float, float]]]:
    """(dropped frames, longest frame interval s, [(gap start s, gap length s), ...]).

    Dropped frames are ``sum(max(0, round(dt * fps) - 1))`` over consecutive timestamps, as
    ``media.probe.count_dropped_frames`` counts them. Gaps are intervals longer than 1.5
    frame periods; the start is the timestamp of the last frame before the hole and the
    length the interval to the next one, so ``round(length * fps) - 1`` frames are missing.
    Frames lost before the first or after the last timestamp cannot be seen here.
    """
    check_rate(fps, "fps")
    times = np.asarray(packet_times_s, dtype=np.float64).ravel()
    if times.size < 2:
        return 0, 0.0, []
    dt = np.diff(times)
    if dt.min() < 0.0:  # probes return sorted times; sort only when needed (O(n) check)
        times = np.sort(times)
        dt = np.diff(times)
    missing = np.rint(dt * fps) - 1.0
    dropped = int(missing[missing > 0.0].sum())
    holes = np.flatnonzero(dt > GAP_FACTOR / fps)
    gaps = list(zip(times[holes].tolist(), dt[holes].tolist(), strict=True))
    return dropped, float(dt.max()), gaps


def dropped_from_gaps(gaps: Sequence[tuple[float, float]], fps: float) -> tuple[int, float]:
    """(dropped frames, longest gap s) from stored (start, length) gaps."""
    if not gaps:
        return 0, 0.0
    lengths = np.asarray([length for _, length in gaps], dtype=np.float64)
    missing = np.rint(lengths * fps) - 1.0
    return int(missing[missing > 0.0].sum()), float(lengths.max())


def fit_clock_ms_ppm(host_ns: npt.ArrayLike, device_ns: npt.ArrayLike) -> tuple[float, float]:
    """Least-squares ``device = a * host + b``; returns ``(b in ms, (a - 1) * 1e6 ppm)``.

    Both clocks are taken relative to the first host sample, so ``b`` is the robot-minus-video
    offset at the start of the window. Precision: epoch nanoseconds (~1.8e18) keep only
    ~256 ns as float64, so the differences ``device - host`` and ``host - host[0]`` are formed
    in int64 first (exact) and the fit is of the residual ``device - host`` against host
    time, whose slope is ``a - 1`` directly (no cancellation in ``a - 1``). A single sample
    gives its offset and zero skew.
    """
    host = np.asarray(host_ns, dtype=np.int64).ravel()
    device = np.asarray(device_ns, dtype=np.int64).ravel()
    if host.shape != device.shape:
        raise ValueError(f"host_ns has {host.size} samples but device_ns has {device.size}")
    if host.size == 0:
        raise ValueError("need at least one sample to fit a clock")
    x = (host - host[0]).astype(np.float64) / NS_PER_S  # seconds on the video clock
    r = (device - host).astype(np.float64) / 1e6  # ms the robot clock is ahead
    x_mean = float(x.mean())
    r_mean = float(r.mean())
    dx = x - x_mean
    sxx = float(np.dot(dx, dx))
    if sxx == 0.0:
        return r_mean, 0.0
    slope_ms_per_s = float(np.dot(dx, r - r_mean)) / sxx
    # 1 ms per second is 1000 ppm.
    return r_mean - slope_ms_per_s * x_mean, slope_ms_per_s * 1e3
