"""Safety signals of one clip window: motion (jerk, LDLJ), video timing, clocks, contact, privacy.

Pure, typed functions over a trajectory table (the capture simulator's layout, see
``robotrace_assets.capture.sensors``) and the video's packet timestamps or probed frame gaps.
Everything is vectorised with numpy: an hour of 100 Hz log in 10 s windows costs about as much
again as reading its Parquet (~150 us per window; see ``bench/signals_bench.py``).

Clocks, explicitly:

* ``host_time_ns`` is the host/video clock (the camera's packet timestamps live on it);
* ``device_time_ns`` is the robot controller's clock, which stamped the kinematic samples.

Sign conventions:

* clock: ``device = a * host + b`` is fitted with both clocks measured from the window's first
  host sample; ``clock_offset_ms = b`` (positive: the robot clock reads *ahead* of the video
  clock) and ``clock_skew_ppm = (a - 1) * 1e6`` (positive: the robot clock runs *fast*). This
  matches how the simulator injects drift (``TrajectorySpec.clock_skew_ppm/clock_offset_s``).
  NOTES writes the fit the other way round (``host = a' * device + b'``); to first order that
  gives ``b' = -b`` and the same skew with the opposite sign. Rules only use magnitudes.
* LDLJ is ``-ln(dimensionless jerk)``: always a real number, higher (closer to 0, or even
  positive for windows with almost no jerk) is smoother; more jerk makes it more negative.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from scipy.ndimage import correlate1d

__all__ = [
    "DEFAULT_CONTACT_LIMIT_N",
    "JERK_POLYORDER",
    "JERK_WINDOW_S",
    "SafetySignals",
    "compute_signals",
    "fit_clock_ms_ppm",
    "frame_gaps",
    "jerk_series",
    "jerk_window_samples",
    "ldlj",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Savitzky-Golay jerk: a cubic fitted over ~0.1 s. Same settings as capture.sensors.jerk_peak,
# so figures agree. At 100 Hz (11 samples) the 1e-5 m position noise becomes ~0.8 m/s^3 of
# jerk noise; a 0.15-0.2 s window would halve the injected 30 ms spike (calibrated: clean
# peak 15-17 m/s^3, spike 223-227 m/s^3 at 0.1 s; 71-77 m/s^3 at 0.15 s).
JERK_WINDOW_S = 0.1
JERK_POLYORDER = 3
# ISO/TS 15066 transient contact limit for the hand, the reference for contact severity.
DEFAULT_CONTACT_LIMIT_N = 140.0
# Below this peak speed a window is "not moving": LDLJ divides by v_peak^2 and would then
# only measure sensor noise (velocity noise at 100 Hz is ~0.1 mm/s).
_MIN_PEAK_SPEED_M_S = 2e-3
# A sample interval above 1.5 nominal periods is a hole in the log (or in the video).
_GAP_FACTOR = 1.5
_NS_PER_S = 1_000_000_000
_POSITION_COLUMNS = ("ee_x", "ee_y", "ee_z")
_FORCE_COLUMNS = ("force_x", "force_y", "force_z")
_REQUIRED_COLUMNS = ("host_time_ns", "device_time_ns", *_POSITION_COLUMNS)


@dataclass(frozen=True)
class SafetySignals:
    """Measured facts about one clip window; ``rules.score`` turns them into a decision.

    Every float is finite (no NaN): what cannot be measured is reported as 0 with a line in
    ``notes``, except contact, which is ``None`` when the log has no force columns.
    """

    jerk_peak: float  # m/s^3, peak |jerk| of the smoothed end-effector path
    jerk_rms: float  # m/s^3, root mean square of |jerk| over the window
    ldlj: float  # log dimensionless jerk over the window; higher (towards 0) is smoother
    dropped_frames: int  # video frames missing inside the window (timestamp gaps)
    dropped_frame_ratio: float  # dropped / expected frames in the window
    max_frame_gap_s: float  # longest interval between consecutive video frames
    clock_offset_ms: float  # robot minus video clock at the window start (positive: ahead)
    clock_skew_ppm: float  # robot clock rate error vs the video clock (positive: fast)
    contact_peak_n: float | None  # peak |F| at the wrist; None without force columns
    contact_severity: float | None  # contact_peak_n / contact limit; > 1 is above it
    privacy_enforced: bool  # capture blur flag; missing counts as not enforced
    samples: int  # trajectory samples in the window
    duration_s: float  # span of the window on the host clock (samples x period)
    notes: tuple[str, ...] = ()  # what could not be measured and why

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON/Parquet-friendly values; ``notes`` is one "; "-joined string so that the
        column has the same type for every clip (empty string when nothing to say)."""
        values = asdict(self)
        values["notes"] = "; ".join(self.notes)
        return values


def jerk_window_samples(hz: float) -> int:
    """Savitzky-Golay window (odd sample count) used for jerk at ``hz``."""
    _check_rate(hz, "hz")
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
    breaks = (np.flatnonzero((dt > _GAP_FACTOR / hz) | (dt <= 0.0)) + 1).tolist()
    edges = [0, *breaks, int(t_s.size)]
    return list(itertools.pairwise(edges))


def _kinematics(
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
    _check_rate(hz, "hz")
    points = _as_xyz(xyz)
    times = np.asarray(t_s, dtype=np.float64).ravel()
    if times.size != points.shape[0]:
        raise ValueError(f"t_s has {times.size} samples but xyz has {points.shape[0]}")
    return _kinematics(times, points, hz)[0]


def _ldlj_value(
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
    """Log dimensionless jerk of the end-effector path over the whole window (NOTES formula).

    ``T`` is the window length (samples / hz), ``v_peak`` the peak speed and the integral is
    over the squared jerk magnitude, all from the same smoothing as ``jerk_series``. Higher
    (closer to 0) is smoother. It grows more negative with window length (about -4 ln T for a
    repeating task), so compare windows of similar length or normalise as ``rules`` does.
    Returns 0.0 when undefined (empty window, no motion, or no jerk could be estimated).
    """
    _check_rate(hz, "hz")
    points = _as_xyz(xyz)
    times = np.asarray(t_s, dtype=np.float64).ravel()
    if times.size != points.shape[0]:
        raise ValueError(f"t_s has {times.size} samples but xyz has {points.shape[0]}")
    jerk, speed, _ = _kinematics(times, points, hz)
    return _ldlj_value(jerk, speed, points.shape[0] / hz, hz)[0]


def frame_gaps(
    packet_times_s: Sequence[float] | npt.ArrayLike, fps: float
) -> tuple[int, float, list[tuple[float, float]]]:
    """(dropped frames, longest frame interval s, [(gap start s, gap length s), ...]).

    Dropped frames are ``sum(max(0, round(dt * fps) - 1))`` over consecutive timestamps, as
    ``capture.media.count_dropped_frames`` counts them. Gaps are intervals longer than 1.5
    frame periods; the start is the timestamp of the last frame before the hole and the
    length the interval to the next one, so ``round(length * fps) - 1`` frames are missing.
    Frames lost before the first or after the last timestamp cannot be seen here.
    """
    _check_rate(fps, "fps")
    times = np.asarray(packet_times_s, dtype=np.float64).ravel()
    if times.size < 2:
        return 0, 0.0, []
    dt = np.diff(times)
    if dt.min() < 0.0:  # probes return sorted times; sort only when needed (O(n) check)
        times = np.sort(times)
        dt = np.diff(times)
    missing = np.rint(dt * fps) - 1.0
    dropped = int(missing[missing > 0.0].sum())
    holes = np.flatnonzero(dt > _GAP_FACTOR / fps)
    gaps = list(zip(times[holes].tolist(), dt[holes].tolist(), strict=True))
    return dropped, float(dt.max()), gaps


def _dropped_from_gaps(gaps: Sequence[tuple[float, float]], fps: float) -> tuple[int, float]:
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
    x = (host - host[0]).astype(np.float64) / _NS_PER_S  # seconds on the video clock
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


def _check_rate(value: float, name: str) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a positive finite rate, got {value}")


def _columns(table: pa.Table, names: Sequence[str]) -> dict[str, npt.NDArray[Any]]:
    """numpy views of the named columns that exist (schema names are looked up once: on a
    short window, per-name lookups cost as much as the maths)."""
    position = {name: i for i, name in enumerate(table.schema.names)}
    arrays: dict[str, npt.NDArray[Any]] = {}
    for name in names:
        if name not in position:
            continue
        column = table.column(position[name])
        # Zero-copy for a single-chunk slice; combine only when the window spans chunks.
        chunk = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
        arrays[name] = chunk.to_numpy(zero_copy_only=False)
    return arrays


def compute_signals(
    table: pa.Table,
    *,
    hz: float,
    packet_times_s: npt.ArrayLike | None = None,
    fps: float | None = None,
    frame_gaps_s: Sequence[tuple[float, float]] | None = None,
    blur_enforced: bool | None,
    contact_limit_n: float = DEFAULT_CONTACT_LIMIT_N,
) -> SafetySignals:
    """Safety signals of one clip window; the caller slices the table and timestamps to it.

    Video side: give ``packet_times_s`` (the window's packet timestamps) or ``frame_gaps_s``
    (the probe's stored ``(start, length)`` gaps inside the window), with ``fps``. Expected
    frames are received + dropped with timestamps, ``round(duration_s * fps)`` with gaps. With
    neither, the video fields are 0 and a note says so.

    Motion: jerk from ``ee_*`` against the robot clock (``device_time_ns``, which stamped the
    samples). Clock: ``fit_clock_ms_ppm`` over the window. Contact: peak wrist force magnitude
    over ``force_*`` (raw, carried payload included: conservative), ``None`` without them.
    """
    _check_rate(hz, "hz")
    if fps is not None:
        _check_rate(fps, "fps")
    _check_rate(contact_limit_n, "contact_limit_n")
    notes: list[str] = []
    n = table.num_rows
    columns = _columns(table, (*_REQUIRED_COLUMNS, *_FORCE_COLUMNS))
    missing = [name for name in _REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise KeyError(f"trajectory table lacks column(s) {', '.join(missing)}")
    host_ns = columns["host_time_ns"].astype(np.int64, copy=False)
    device_ns = columns["device_time_ns"].astype(np.int64, copy=False)
    xyz = np.empty((n, 3))
    for axis, name in enumerate(_POSITION_COLUMNS):
        xyz[:, axis] = columns[name]

    # Span on the host clock plus one period: 400 samples at 100 Hz cover 4.0 s.
    duration_s = float(host_ns[-1] - host_ns[0]) / _NS_PER_S + 1.0 / hz if n else 0.0

    if n:
        device_s = (device_ns - device_ns[0]).astype(np.float64) / _NS_PER_S
        jerk, speed, motion_notes = _kinematics(device_s, xyz, hz)
        notes += motion_notes
    else:
        jerk = speed = np.zeros(0)
        notes.append("empty window: no trajectory samples")
    jerk_peak = float(jerk.max()) if n else 0.0
    jerk_rms = float(math.sqrt(np.dot(jerk, jerk) / n)) if n else 0.0
    ldlj_value, ldlj_note = _ldlj_value(jerk, speed, duration_s, hz)
    if ldlj_note and n:
        notes.append(ldlj_note)

    dropped, max_gap, expected = 0, 0.0, 0
    if packet_times_s is not None:
        if fps is None:
            raise ValueError("fps is required with packet_times_s")
        times = np.asarray(packet_times_s, dtype=np.float64).ravel()
        dropped, max_gap, _ = frame_gaps(times, fps)
        expected = times.size + dropped
        if times.size < 2:
            notes.append(f"{times.size} video packet(s) in window: dropped frames unknown")
    elif frame_gaps_s is not None:
        if fps is None:
            raise ValueError("fps is required with frame_gaps_s")
        dropped, longest = _dropped_from_gaps(frame_gaps_s, fps)
        # Without gaps the longest interval is the nominal frame period.
        max_gap = max(longest, 1.0 / fps)
        expected = max(round(duration_s * fps), dropped)
    else:
        notes.append("no video timing given: frame signals are 0")
    ratio = dropped / expected if expected else 0.0

    if n:
        offset_ms, skew_ppm = fit_clock_ms_ppm(host_ns, device_ns)
    else:
        offset_ms, skew_ppm = 0.0, 0.0

    present = [name for name in _FORCE_COLUMNS if name in columns]
    contact_peak: float | None = None
    severity: float | None = None
    if present and n:
        if len(present) < len(_FORCE_COLUMNS):
            notes.append(f"only {', '.join(present)} present: contact from those axes")
        squared = np.zeros(n)
        for name in present:
            component = columns[name].astype(np.float64, copy=False)
            squared += component * component
        contact_peak = float(math.sqrt(squared.max()))
        severity = contact_peak / contact_limit_n
    elif not present:
        notes.append("no force columns: contact not measured")

    return SafetySignals(
        jerk_peak=jerk_peak,
        jerk_rms=jerk_rms,
        ldlj=ldlj_value,
        dropped_frames=dropped,
        dropped_frame_ratio=ratio,
        max_frame_gap_s=max_gap,
        clock_offset_ms=offset_ms,
        clock_skew_ppm=skew_ppm,
        contact_peak_n=contact_peak,
        contact_severity=severity,
        # Only an explicit True counts: a missing flag is not evidence that faces were blurred.
        privacy_enforced=blur_enforced is True,
        samples=n,
        duration_s=duration_s,
        notes=tuple(notes),
    )
