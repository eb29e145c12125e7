"""Deterministic synthetic robot trajectory logs (the simulator's robot), in our sensor-log schema.

The table has the columns and metadata of ``robotrace_assets.sensorlog``; write it with
``sensorlog.write_parquet``.

The motion is a repeating pick-and-place: minimum-snap (7th-order) moves between seeded
waypoints, so position, velocity, acceleration and jerk are all continuous and the clean peak
jerk is bounded. Injected defects (jerk spikes, device-clock skew/offset) then stand out
clearly against that baseline.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from robotrace_assets.sensorlog import (
    CLOCKS_KEY,
    FORCE_COLUMNS,
    FRAME_KEY,
    HZ_KEY,
    MIN_HZ,
    POSITION_COLUMNS,
    SCHEMA_VERSION,
    SCHEMA_VERSION_KEY,
    UNITS_KEY,
)

__all__ = ["TrajectorySpec", "synthesize_trajectory"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_NS_PER_S = 1_000_000_000
_GRAVITY = 9.81

# Moves are timed so their peak jerk stays near this bound (m/s^3), like a tuned cobot.
_MOVE_JERK_LIMIT = 15.0
_MIN_MOVE_S = 0.4
# Peak |d^3/ds^3| of the minimum-snap profile 35s^4 - 84s^5 + 70s^6 - 20s^7 on [0, 1].
_SNAP_PROFILE_PEAK_JERK = 53.0
_GRASP_HOLD_S = 0.25
_SETTLE_HOLD_S = 0.15

_POSITION_NOISE_M = 1e-5
_JOINT_NOISE_RAD = 1e-5
_FORCE_NOISE_N = 0.05

# Injected jerk spike: a raised-cosine bump of a few mm lasting ~30 ms (a knock or a
# servo glitch). Savitzky-Golay smoothing still leaves its jerk an order of magnitude above
# the clean motion.
_SPIKE_AMPLITUDE_M = 0.006
_SPIKE_WIDTH_S = 0.03


@dataclass(frozen=True)
class TrajectorySpec:
    """What trajectory log to synthesize; equal specs yield identical tables."""

    seconds: float = 4.0
    hz: float = 100.0
    seed: int = 0
    joints: int = 7
    with_force: bool = True
    # Times (s) at which a sharp bump is added to the end-effector position.
    jerk_spikes: tuple[float, ...] = ()
    # Device (robot controller) clock relative to the host clock: rate error and offset.
    clock_skew_ppm: float = 0.0
    clock_offset_s: float = 0.0
    # Host (video) clock time of the first sample, in epoch nanoseconds.
    start_time_ns: int = 1_780_000_000_000_000_000

    @property
    def samples(self) -> int:
        """Number of rows the log will contain."""
        return round(self.seconds * self.hz)


def _validate(spec: TrajectorySpec) -> None:
    if not (spec.seconds > 0 and math.isfinite(spec.seconds)):
        raise ValueError(f"seconds must be a positive finite number, got {spec.seconds}")
    if not (spec.hz >= MIN_HZ and math.isfinite(spec.hz)):
        raise ValueError(f"hz must be a finite rate >= {MIN_HZ}, got {spec.hz}")
    if spec.seed < 0:
        raise ValueError(f"seed must be non-negative, got {spec.seed}")
    if spec.joints < 1:
        raise ValueError(f"joints must be >= 1, got {spec.joints}")
    if spec.samples < 2:
        raise ValueError(f"{spec.seconds}s at {spec.hz} Hz yields fewer than 2 samples")
    bad = [t for t in spec.jerk_spikes if not 0.0 <= t < spec.seconds]
    if bad:
        raise ValueError(f"jerk_spikes {bad} outside [0, {spec.seconds})")
    if not (math.isfinite(spec.clock_skew_ppm) and math.isfinite(spec.clock_offset_s)):
        raise ValueError("clock skew and offset must be finite")


def _snap_profile(s: FloatArray) -> FloatArray:
    """Minimum-snap rest-to-rest profile: 0 -> 1 with zero velocity, accel and jerk at ends."""
    s = np.clip(s, 0.0, 1.0)
    return s**4 * (35.0 + s * (-84.0 + s * (70.0 - 20.0 * s)))


def _move_duration(distance_m: float) -> float:
    # Peak jerk of a snap-profile move is 53 * D / T^3; pick T to meet the jerk limit.
    return max(_MIN_MOVE_S, (_SNAP_PROFILE_PEAK_JERK * distance_m / _MOVE_JERK_LIMIT) ** (1 / 3))


@dataclass(frozen=True)
class _Segment:
    """One move (or hold, when start == end) of the end effector."""

    t0: float
    duration: float
    start: tuple[float, ...]
    end: tuple[float, ...]
    # "grasp"/"release" holds carry a contact force; other segments do not.
    contact: str = ""


def _plan_segments(rng: np.random.Generator, seconds: float) -> list[_Segment]:
    """Pick-and-place cycles with seeded waypoints, repeated until ``seconds`` is covered."""
    home = np.array([0.35, 0.0, 0.30]) + rng.uniform(-0.02, 0.02, size=3)
    segments: list[_Segment] = []
    t = 0.0
    here = home

    def go(target: FloatArray, duration: float | None = None, contact: str = "") -> None:
        nonlocal t, here
        distance = float(np.linalg.norm(target - here))
        length = duration if duration is not None else _move_duration(distance)
        start, end = tuple(float(v) for v in here), tuple(float(v) for v in target)
        segments.append(_Segment(t, length, start, end, contact))
        t += length
        here = target

    go(here, _SETTLE_HOLD_S)
    while t < seconds:
        table_z = float(rng.uniform(0.02, 0.05))
        approach = float(rng.uniform(0.05, 0.09))
        pick = np.array([rng.uniform(0.40, 0.55), rng.uniform(-0.25, -0.10), table_z])
        place = np.array([rng.uniform(0.40, 0.55), rng.uniform(0.10, 0.25), table_z])
        lift = np.array([0.0, 0.0, approach])
        go(pick + lift)
        go(pick)
        go(pick, _GRASP_HOLD_S, contact="grasp")
        go(place + lift)
        go(place)
        go(place, _GRASP_HOLD_S, contact="release")
        go(place + lift)
        go(home)
        go(home, _SETTLE_HOLD_S)
    return segments


def _evaluate(segments: Sequence[_Segment], t: FloatArray) -> FloatArray:
    """End-effector positions (n, 3) along the planned segments."""
    starts = np.array([seg.t0 for seg in segments])
    idx = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(segments) - 1)
    t0 = starts[idx]
    duration = np.array([seg.duration for seg in segments])[idx]
    p0 = np.array([seg.start for seg in segments])[idx]
    p1 = np.array([seg.end for seg in segments])[idx]
    s = _snap_profile((t - t0) / duration)
    return p0 + (p1 - p0) * s[:, None]


def _hann_window(t: FloatArray, center: float, width: float) -> FloatArray:
    """Raised-cosine bump peaking at 1 at ``center``, zero outside ``width``."""
    u = (t - center) / width
    return np.where(np.abs(u) < 0.5, 0.5 * (1.0 + np.cos(2.0 * np.pi * u)), 0.0)


def _forces(rng: np.random.Generator, segments: Sequence[_Segment], t: FloatArray) -> FloatArray:
    """Wrist force (n, 3): sensor noise, contact pulses at grasp/release, carried weight."""
    n = t.size
    force = rng.normal(0.0, _FORCE_NOISE_N, size=(n, 3)) + rng.uniform(-0.2, 0.2, size=3)
    carrying = np.zeros(n)
    for seg in segments:
        if not seg.contact:
            continue
        # The gripper presses down on the object/table: 5-40 N, mostly along -z.
        peak = float(rng.uniform(8.0, 35.0))
        direction = np.array([*rng.uniform(-0.15, 0.15, size=2), -1.0])
        pulse = _hann_window(t, seg.t0 + seg.duration / 2, seg.duration)
        force += pulse[:, None] * peak * direction
        # Object weight is felt from the middle of the grasp to the middle of the release.
        ramp = _snap_profile((t - seg.t0) / seg.duration)
        carrying += ramp if seg.contact == "grasp" else -ramp
    mass_kg = float(rng.uniform(0.1, 0.8))
    force[:, 2] -= np.clip(carrying, 0.0, 1.0) * mass_kg * _GRAVITY
    return force


def _spike_bumps(
    rng: np.random.Generator, spikes: Sequence[float], t: FloatArray, hz: float
) -> FloatArray:
    """Position offsets (n, 3) for the injected jerk spikes."""
    bumps = np.zeros((t.size, 3))
    # Never narrower than 3 samples, otherwise a bump could fall between samples.
    width = max(_SPIKE_WIDTH_S, 3.0 / hz)
    for when in spikes:
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        bumps += _hann_window(t, when, width)[:, None] * _SPIKE_AMPLITUDE_M * direction
    return bumps


def _units_metadata(spec: TrajectorySpec, columns: Sequence[str]) -> dict[bytes, bytes]:
    units: dict[str, str] = {"frame_index": "1", "host_time_ns": "ns", "device_time_ns": "ns"}
    for name in columns:
        if name.startswith("ee_"):
            units[name] = "m"
        elif name.startswith("joint_"):
            units[name] = "rad"
        elif name.startswith("force_"):
            units[name] = "N"
    return {
        SCHEMA_VERSION_KEY: SCHEMA_VERSION.encode(),
        UNITS_KEY: json.dumps(units, sort_keys=True).encode(),
        HZ_KEY: json.dumps(spec.hz).encode(),
        CLOCKS_KEY: json.dumps(
            {
                "host_time_ns": "host/video clock, epoch ns",
                "device_time_ns": "robot controller clock, epoch ns",
            },
            sort_keys=True,
        ).encode(),
        FRAME_KEY: b"robot base frame; ee_* is the tool centre point",
    }


def synthesize_trajectory(spec: TrajectorySpec) -> pa.Table:
    """Build the trajectory log described by ``spec`` as an Arrow table.

    Each random component draws from its own child seed, so toggling a defect or the force
    columns never changes the rest of the log: a spiked log differs from the clean one only
    around the spike.
    """
    _validate(spec)
    motion_rng, noise_rng, joint_rng, force_rng, spike_rng = (
        np.random.default_rng(child) for child in np.random.SeedSequence(spec.seed).spawn(5)
    )
    n = spec.samples
    index = np.arange(n, dtype=np.int64)
    # Exact integer ns offsets (i * 1e9 is exact in float64, and one rounding after the divide).
    host_rel_ns = np.rint(index * float(_NS_PER_S) / spec.hz).astype(np.int64)
    t = host_rel_ns / _NS_PER_S

    device_rel_ns = host_rel_ns * (1.0 + spec.clock_skew_ppm * 1e-6) + spec.clock_offset_s * 1e9
    device_time_ns = spec.start_time_ns + np.rint(device_rel_ns).astype(np.int64)
    host_time_ns = spec.start_time_ns + host_rel_ns

    segments = _plan_segments(motion_rng, spec.seconds)
    ee = _evaluate(segments, t) + _spike_bumps(spike_rng, spec.jerk_spikes, t, spec.hz)

    # Joints follow the (physical, spike-included) motion through a fixed seeded linear map
    # around a home posture, plus a slow wrist oscillation; plausible and perfectly smooth.
    q_home = joint_rng.uniform(-1.5, 1.5, size=spec.joints)
    jacobian_inv = joint_rng.uniform(-1.5, 1.5, size=(spec.joints, 3))
    wobble_hz = joint_rng.uniform(0.05, 0.2, size=spec.joints)
    wobble_phase = joint_rng.uniform(0.0, 2.0 * np.pi, size=spec.joints)
    joints = (
        q_home
        + (ee - ee[0]) @ jacobian_inv.T
        + 0.02 * np.sin(2.0 * np.pi * np.outer(t, wobble_hz) + wobble_phase)
    )

    ee_measured = ee + noise_rng.normal(0.0, _POSITION_NOISE_M, size=ee.shape)
    joints_measured = joints + noise_rng.normal(0.0, _JOINT_NOISE_RAD, size=joints.shape)

    columns: dict[str, npt.NDArray[np.int64] | FloatArray] = {
        "frame_index": index,
        "host_time_ns": host_time_ns,
        "device_time_ns": device_time_ns,
    }
    for axis, name in enumerate(POSITION_COLUMNS):
        columns[name] = ee_measured[:, axis]
    for j in range(spec.joints):
        columns[f"joint_{j}"] = joints_measured[:, j]
    if spec.with_force:
        force = _forces(force_rng, segments, t)
        for axis, name in enumerate(FORCE_COLUMNS):
            columns[name] = force[:, axis]

    metadata = _units_metadata(spec, list(columns))
    units = json.loads(metadata[UNITS_KEY])
    fields = [
        pa.field(
            name,
            pa.int64() if values.dtype == np.int64 else pa.float64(),
            nullable=False,
            metadata={b"unit": units[name].encode()},
        )
        for name, values in columns.items()
    ]
    schema = pa.schema(fields, metadata=metadata)
    return pa.table([pa.array(v) for v in columns.values()], schema=schema)
