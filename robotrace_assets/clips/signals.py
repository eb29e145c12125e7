"""Safety signals of one clip window: motion (jerk, LDLJ), video timing, clocks, contact, privacy.

Pure, typed functions over a trajectory table (the capture simulator's layout, see
``robotrace_assets.sensorlog``) and the video's packet timestamps or probed frame gaps.
The measurements live in ``clips.kinematics`` (jerk, LDLJ) and ``clips.timing`` (dropped
frames, clock fit; its docstring states the clock sign conventions); this module reads the
window's columns and gathers them into one ``SafetySignals``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from robotrace_assets.clips.kinematics import kinematics, ldlj_value
from robotrace_assets.clips.timing import (
    NS_PER_S,
    check_rate,
    dropped_from_gaps,
    fit_clock_ms_ppm,
    frame_gaps,
)

__all__ = [
    "DEFAULT_CONTACT_LIMIT_N",
    "SafetySignals",
    "compute_signals",
]

FloatArray = npt.NDArray[np.float64]

# ISO/TS 15066 transient contact limit for the hand, the reference for contact severity.
DEFAULT_CONTACT_LIMIT_N = 140.0
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


@dataclass(frozen=True)
class _Window:
    """The trajectory columns of one clip window as numpy arrays."""

    columns: dict[str, npt.NDArray[Any]]  # every required and present force column
    host_ns: npt.NDArray[np.int64]
    device_ns: npt.NDArray[np.int64]
    xyz: FloatArray  # (samples, 3) end-effector position
    duration_s: float  # span on the host clock plus one period

    @property
    def samples(self) -> int:
        return int(self.xyz.shape[0])


def _read_window(table: pa.Table, hz: float) -> _Window:
    n = table.num_rows
    columns = _columns(table, (*_REQUIRED_COLUMNS, *_FORCE_COLUMNS))
    missing = [name for name in _REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise KeyError(f"trajectory table lacks column(s) {', '.join(missing)}")
    host_ns = columns["host_time_ns"].astype(np.int64, copy=False)
    xyz = np.empty((n, 3))
    for axis, name in enumerate(_POSITION_COLUMNS):
        xyz[:, axis] = columns[name]
    # Span on the host clock plus one period: 400 samples at 100 Hz cover 4.0 s.
    duration_s = float(host_ns[-1] - host_ns[0]) / NS_PER_S + 1.0 / hz if n else 0.0
    return _Window(
        columns=columns,
        host_ns=host_ns,
        device_ns=columns["device_time_ns"].astype(np.int64, copy=False),
        xyz=xyz,
        duration_s=duration_s,
    )


def _motion(window: _Window, hz: float, notes: list[str]) -> tuple[float, float, float]:
    """(jerk peak, jerk rms, LDLJ) against the robot clock, which stamped the samples."""
    n = window.samples
    if not n:
        notes.append("empty window: no trajectory samples")
        return 0.0, 0.0, 0.0  # LDLJ of an empty window is reported as 0
    device_s = (window.device_ns - window.device_ns[0]).astype(np.float64) / NS_PER_S
    jerk, speed, motion_notes = kinematics(device_s, window.xyz, hz)
    notes += motion_notes
    value, ldlj_note = ldlj_value(jerk, speed, window.duration_s, hz)
    if ldlj_note:
        notes.append(ldlj_note)
    return float(jerk.max()), float(math.sqrt(np.dot(jerk, jerk) / n)), value


def _video(
    packet_times_s: npt.ArrayLike | None,
    frame_gaps_s: Sequence[tuple[float, float]] | None,
    fps: float | None,
    duration_s: float,
    notes: list[str],
) -> tuple[int, float, float]:
    """(dropped frames, dropped / expected frames, longest frame interval s)."""
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
        dropped, longest = dropped_from_gaps(frame_gaps_s, fps)
        # Without gaps the longest interval is the nominal frame period.
        max_gap = max(longest, 1.0 / fps)
        expected = max(round(duration_s * fps), dropped)
    else:
        notes.append("no video timing given: frame signals are 0")
        return 0, 0.0, 0.0
    return dropped, (dropped / expected if expected else 0.0), max_gap


def _contact(
    window: _Window, contact_limit_n: float, notes: list[str]
) -> tuple[float | None, float | None]:
    """(peak wrist force magnitude N, peak / limit); (None, None) without force columns.

    Raw force, carried payload included: conservative."""
    present = [name for name in _FORCE_COLUMNS if name in window.columns]
    if not present:
        notes.append("no force columns: contact not measured")
        return None, None
    if not window.samples:
        return None, None
    if len(present) < len(_FORCE_COLUMNS):
        notes.append(f"only {', '.join(present)} present: contact from those axes")
    squared = np.zeros(window.samples)
    for name in present:
        component = window.columns[name].astype(np.float64, copy=False)
        squared += component * component
    peak = float(math.sqrt(squared.max()))
    return peak, peak / contact_limit_n


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
    check_rate(hz, "hz")
    if fps is not None:
        check_rate(fps, "fps")
    check_rate(contact_limit_n, "contact_limit_n")
    notes: list[str] = []
    window = _read_window(table, hz)
    jerk_peak, jerk_rms, ldlj = _motion(window, hz, notes)
    dropped, ratio, max_gap = _video(packet_times_s, frame_gaps_s, fps, window.duration_s, notes)
    offset_ms, skew_ppm = (
        fit_clock_ms_ppm(window.host_ns, window.device_ns) if window.samples else (0.0, 0.0)
    )
    contact_peak, severity = _contact(window, contact_limit_n, notes)
    return SafetySignals(
        jerk_peak=jerk_peak,
        jerk_rms=jerk_rms,
        ldlj=ldlj,
        dropped_frames=dropped,
        dropped_frame_ratio=ratio,
        max_frame_gap_s=max_gap,
        clock_offset_ms=offset_ms,
        clock_skew_ppm=skew_ppm,
        contact_peak_n=contact_peak,
        contact_severity=severity,
        # Only an explicit True counts: a missing flag is not evidence that faces were blurred.
        privacy_enforced=blur_enforced is True,
        samples=window.samples,
        duration_s=window.duration_s,
        notes=tuple(notes),
    )
