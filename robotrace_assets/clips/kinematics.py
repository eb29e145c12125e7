"""End-effector kinematics of a clip window: jerk, speed and LDLJ from the ``ee_*`` path.

Vectorised with numpy: an hour of 100 Hz log in 10 s windows costs about as much again as
reading its Parquet (~150 us per window; see ``bench/signals_bench.py``).

LDLJ is ``-ln(dimensionless jerk)``: always a real number, higher (closer to 0, or even
positive for windows with almost no jerk) is smoother; more jerk makes it more negative.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import numpy.typing as npt
from scipy.ndimage import correlate1d

from robotrace_assets.clips.timing import GAP_FACTOR, check_rate

__all__ = [
    "JERK_POLYORDER",
    "JERK_WINDOW_S",
    "jerk_series",
    "jerk_window_samples",
    "kinematics",
    "ldlj",
    "ldlj_value",
]

FloatArray = npt.NDArray[np.float64]

# Savitzky-Golay jerk: a cubic fitted over ~0.1 s. At 100 Hz (11 samples) the simulator's
# 1e-5 m position noise becomes ~0.8 m/s^3 of jerk noise; a 0.15-0.2 s window would halve
# the injected 30 ms spike (calibrated: clean peak 15-17 m/s^3, spike 223-227 m/s^3 at
# 0.1 s; 71-77 m/s^3 at 0.15 s).
JERK_WINDOW_S = 0.1
JERK_POLYORDER = 3
# Below this peak speed a window is "not moving": LDLJ divides by v_peak^2 and would then
# only measure sensor noise (velocity noise at 100 Hz is ~0.1 mm/s).
_MIN_PEAK_SPEED_M_S = 2e-3


def jerk_window_samples(hz: float) -> int:
    """Savitzky-Golay window (odd sample count) used for jerk at ``hz``."""
    check_rate(hz, "hz")
    return max(round(JERK_WINDOW_S * hz) | 1, (JERK_POLYORDER + 2) | 1)


@functools.lru_cache(maxsize=32)
def _savgol_operator(window: int, polyorder: int, deriv: int, delta: float) -> FloatArray:
    """(window, window) matrix: row i gives the ``deriv``-th derivative at sample i of the
    polynomial least-squares fitted to ``window`` consecutive samples.

    Row ``window // 2`` is the usual Savitzky-Golay kernel; the other rows reproduce
    ``savgol_filter(mode="interp")`` at the edges (fit the first/last window, evaluate there),
    which, unlike padding, invents no motion where a clip is cut mid-move. Cached: computing
    it is most of the cost of ``scipy.signal.savgol_filter`` on a short window.
    """
    pos = np.arange(window, dtype=np.float64) - window // 2  # centred for conditioning
    powers = np.arange(polyorder + 1)
    fit = np.linalg.pinv(pos[:, None] ** powers)  # (polyorder+1, window): coefficients
    # d^deriv/dx^deriv of x^k is k!/(k-deriv)! x^(k-deriv).
    derivative = np.zeros((window, polyorder + 1))
    for k in range(deriv, polyorder + 1):
        derivative[:, k] = math.factorial(k) / math.factorial(k - deriv) * pos ** (k - deriv)
    operator = derivative @ fit / delta**deriv
    operator.flags.writeable = False  # shared through the cache
    return operator


def _savgol(values: FloatArray, operator: FloatArray) -> FloatArray:
    """Apply a ``_savgol_operator`` along axis 0 of (n, k) values, n >= window."""
    window = operator.shape[0]
    half = window // 2
    out = correlate1d(values, operator[half], axis=0, mode="nearest")
    out[:half] = operator[:half] @ values[:window]
    out[-half:] = operator[half + 1 :] @ values[-window:]
    return out


def _contiguous_runs(t_s: FloatArray, hz: float) -> list[tuple[int, int]]:
    """[start, stop) index ranges without holes: differentiating across a missing stretch of
    log would turn the jump into a huge fake jerk."""
    if t_s.size < 2:
        return [(0, int(t_s.size))]
    dt = np.diff(t_s)
    breaks = (np.flatnonzero((dt > GAP_FACTOR / hz) | (dt <= 0.0)) + 1).tolist()
    edges = [0, *breaks, int(t_s.size)]
    return list(itertools.pairwise(edges))


def kinematics(
    t_s: FloatArray, xyz: FloatArray, hz: float
) -> tuple[FloatArray, FloatArray, list[str]]:
    """(|jerk| per sample, speed per sample, notes). Runs shorter than the smoothing window
    get zeros: shrinking the window multiplies noise (about w^-3.5; 7 samples would turn
    1e-5 m of noise into ~4 m/s^3 rms and ~15 m/s^3 peaks, i.e. fake violent motion)."""
    n = xyz.shape[0]
    window = jerk_window_samples(hz)
    jerk = np.zeros(n)
    speed = np.zeros(n)
    notes: list[str] = []
    runs = _contiguous_runs(t_s, hz)
    if len(runs) > 1:
        notes.append(f"trajectory has {len(runs) - 1} timing gap(s); derivatives per run")
    short = 0
    jerk_op = _savgol_operator(window, JERK_POLYORDER, 3, 1.0 / hz)
    speed_op = _savgol_operator(window, JERK_POLYORDER, 1, 1.0 / hz)
    for start, stop in runs:
        if stop - start < window:
            short += stop - start
            continue
        part = xyz[start:stop]
        j = _savgol(part, jerk_op)
        v = _savgol(part, speed_op)
        jerk[start:stop] = np.sqrt(np.einsum("ij,ij->i", j, j))
        speed[start:stop] = np.sqrt(np.einsum("ij,ij->i", v, v))
    if short:
        notes.append(
            f"jerk not estimated for {short} sample(s) in runs shorter than the "
            f"{window}-sample smoothing window (reported as 0)"
        )
    return jerk, speed, notes


def _as_xyz(xyz: npt.ArrayLike) -> FloatArray:
    array = np.asarray(xyz, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 3:
        raise ValueError(f"xyz must have shape (n, 3), got {array.shape}")
    return array


def jerk_series(t_s: npt.ArrayLike, xyz: npt.ArrayLike, hz: float) -> FloatArray:
    """Magnitude of the 3-D end-effector jerk (m/s^3) at every sample.

    Savitzky-Golay, ``deriv=3``, cubic over ``JERK_WINDOW_S`` (0.1 s: 11 samples at 100 Hz),
    with polynomial-fit edges like ``savgol_filter(mode="interp")``. Samples are assumed
    uniform at ``hz`` within a run; ``t_s`` (seconds, any origin) only locates holes in the
    log, across which nothing is differentiated. Runs shorter than the window are 0.
    """
    check_rate(hz, "hz")
    points = _as_xyz(xyz)
    times = np.asarray(t_s, dtype=np.float64).ravel()
    if times.size != points.shape[0]:
        raise ValueError(f"t_s has {times.size} samples but xyz has {points.shape[0]}")
    return kinematics(times, points, hz)[0]


def ldlj_value(
    jerk: FloatArray, speed: FloatArray, duration_s: float, hz: float
) -> tuple[float, str | None]:
    """LDLJ = -ln(T^3 / v_peak^2 * integral |jerk|^2 dt); (0.0, why) when undefined."""
    if jerk.size == 0 or duration_s <= 0.0:
        return 0.0, "LDLJ undefined for an empty window (reported as 0)"
    integral = float(np.dot(jerk, jerk)) / hz  # rectangle rule at the sample period
    if integral <= 0.0:
        return 0.0, "LDLJ undefined: no jerk estimated in the window (reported as 0)"
    v_peak = float(speed.max())
    if v_peak < _MIN_PEAK_SPEED_M_S:
        return 0.0, f"LDLJ undefined: peak speed {v_peak * 1e3:.2f} mm/s, no motion (as 0)"
    return -math.log(duration_s**3 / v_peak**2 * integral), None


def ldlj(t_s: npt.ArrayLike, xyz: npt.ArrayLike, hz: float) -> float:
    """Log dimensionless jerk of the end-effector path over the whole window.

    ``T`` is the window length (samples / hz), ``v_peak`` the peak speed and the integral is
    over the squared jerk magnitude, all from the same smoothing as ``jerk_series``. Higher
    (closer to 0) is smoother. It grows more negative with window length (about -4 ln T for a
    repeating task), so compare windows of similar length or normalise as ``rules`` does.
    Returns 0.0 when undefined (empty window, no motion, or no jerk could be estimated).
    """
    check_rate(hz, "hz")
    points = _as_xyz(xyz)
    times = np.asarray(t_s, dtype=np.float64).ravel()
    if times.size != points.shape[0]:
        raise ValueError(f"t_s has {times.size} samples but xyz has {points.shape[0]}")
    jerk, speed, _ = kinematics(times, points, hz)
    return ldlj_value(jerk, speed, points.shape[0] / hz, hz)[0]
