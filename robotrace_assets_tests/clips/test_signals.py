"""Clip safety signals on the capture simulator's own trajectories and timestamps."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from scipy.signal import savgol_filter

from robotrace_assets.capture.media import VideoSpec, encode_synthetic_video
from robotrace_assets.capture.trajectories import TrajectorySpec, synthesize_trajectory
from robotrace_assets.clips.kinematics import (
    jerk_window_samples,
    ldlj,
)
from robotrace_assets.clips.signals import SafetySignals, compute_signals
from robotrace_assets.clips.timing import frame_gaps
from robotrace_assets.media.probe import probe_packet_times

HZ = 100.0
FPS = 30.0
# The simulator's dropped_frames defect on a 4 s, 30 fps clip: max(3, 120 // 20) = 6
# consecutive frames from frame 120 // 3 = 40, removed without retiming.
DROPPED = tuple(range(40, 46))
REGULAR = np.arange(120) / FPS
GAPPY = np.delete(REGULAR, DROPPED)


def _xyz(table: pa.Table) -> np.ndarray:
    return np.column_stack([table[name].to_numpy() for name in ("ee_x", "ee_y", "ee_z")])


def _t(table: pa.Table) -> np.ndarray:
    host = table["host_time_ns"].to_numpy()
    return (host - host[0]) / 1e9


def _signals(table: pa.Table, **kwargs: object) -> SafetySignals:
    options: dict[str, object] = {"hz": HZ, "blur_enforced": True}
    options.update(kwargs)
    return compute_signals(table, **options)  # type: ignore[arg-type]


def _finite(signals: SafetySignals) -> bool:
    return all(
        math.isfinite(value)
        for value in signals.as_dict().values()
        if isinstance(value, float | int) and not isinstance(value, bool)
    )


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_jerk_spike_stands_out_and_lowers_ldlj(seed: int) -> None:
    video = {"packet_times_s": REGULAR, "fps": FPS}
    clean = _signals(synthesize_trajectory(TrajectorySpec(seed=seed)), **video)
    spiky = _signals(synthesize_trajectory(TrajectorySpec(seed=seed, jerk_spikes=(2.0,))), **video)
    assert 5.0 < clean.jerk_peak < 25.0
    assert spiky.jerk_peak >= 5.0 * clean.jerk_peak
    assert spiky.jerk_rms > clean.jerk_rms
    # LDLJ: higher (towards 0) is smoother, so the spike makes it more negative.
    assert clean.ldlj < 0.0
    assert spiky.ldlj < clean.ldlj - 1.0
    assert clean.notes == ()


def test_ldlj_function_matches_compute_signals() -> None:
    table = synthesize_trajectory(TrajectorySpec(seed=5))
    assert ldlj(_t(table), _xyz(table), HZ) == pytest.approx(_signals(table).ldlj)


def test_window_cut_mid_motion_invents_no_jerk() -> None:
    # Polynomial-fit edges (not padding): a clip boundary in the middle of a move is harmless.
    table = synthesize_trajectory(TrajectorySpec(seconds=10.0, seed=3))
    for start in range(0, 900, 37):
        assert _signals(table.slice(start, 100)).jerk_peak < 25.0


def test_holes_in_the_log_are_not_differentiated_across() -> None:
    table = synthesize_trajectory(TrajectorySpec(seconds=6.0, seed=1))
    keep = np.r_[0:250, 300:600]  # 0.5 s of log missing: the arm "jumps" across the hole
    holed = table.take(pa.array(keep))
    naive = savgol_filter(_xyz(holed), 11, 3, deriv=3, delta=0.01, axis=0)
    assert np.linalg.norm(naive, axis=1).max() > 100.0
    signals = _signals(holed)
    assert signals.jerk_peak < 25.0
    assert any("timing gap" in note for note in signals.notes)


@pytest.mark.parametrize(("skew_ppm", "offset_s"), [(250.0, 0.040), (-250.0, -0.040)])
def test_injected_clock_drift_is_recovered_with_its_sign(skew_ppm: float, offset_s: float) -> None:
    table = synthesize_trajectory(
        TrajectorySpec(seed=1, clock_skew_ppm=skew_ppm, clock_offset_s=offset_s)
    )
    signals = _signals(table)
    # Positive: the robot (device) clock runs fast / reads ahead of the video (host) clock.
    assert signals.clock_skew_ppm == pytest.approx(skew_ppm, abs=2.0)
    assert signals.clock_offset_ms == pytest.approx(offset_s * 1e3, abs=1.0)
    clean = _signals(synthesize_trajectory(TrajectorySpec(seed=1)))
    assert abs(clean.clock_offset_ms) < 1e-3
    assert abs(clean.clock_skew_ppm) < 0.1


def test_dropped_frames_from_timestamps_and_from_stored_gaps_agree() -> None:
    table = synthesize_trajectory(TrajectorySpec(seed=0))
    regular = _signals(table, packet_times_s=REGULAR, fps=FPS)
    assert (regular.dropped_frames, regular.dropped_frame_ratio) == (0, 0.0)
    assert regular.max_frame_gap_s == pytest.approx(1 / FPS)

    from_times = _signals(table, packet_times_s=GAPPY, fps=FPS)
    assert from_times.dropped_frames == 6
    assert from_times.dropped_frame_ratio == pytest.approx(6 / 120)
    assert from_times.max_frame_gap_s == pytest.approx(7 / FPS)

    _, _, gaps = frame_gaps(GAPPY, FPS)
    from_gaps = _signals(table, frame_gaps_s=gaps, fps=FPS)
    assert from_gaps.dropped_frames == from_times.dropped_frames
    assert from_gaps.dropped_frame_ratio == pytest.approx(from_times.dropped_frame_ratio)
    assert from_gaps.max_frame_gap_s == pytest.approx(from_times.max_frame_gap_s)
    no_gaps = _signals(table, frame_gaps_s=[], fps=FPS)
    assert (no_gaps.dropped_frames, no_gaps.max_frame_gap_s) == (0, pytest.approx(1 / FPS))


def test_dropped_frames_in_a_real_encoded_clip(tmp_path: Path) -> None:
    # The simulator's defect end to end: ffmpeg drops frames, the probe sees the gap.
    info = encode_synthetic_video(
        tmp_path / "gappy.mp4", VideoSpec(codec="h264", seed=3, dropped_frames=DROPPED)
    )
    times = probe_packet_times(info.path)
    signals = _signals(synthesize_trajectory(TrajectorySpec(seed=3)), packet_times_s=times, fps=FPS)
    assert signals.dropped_frames == 6
    assert signals.dropped_frame_ratio == pytest.approx(0.05)


def test_video_arguments_need_fps() -> None:
    table = synthesize_trajectory(TrajectorySpec(seed=0))
    with pytest.raises(ValueError, match="fps"):
        _signals(table, packet_times_s=REGULAR)
    with pytest.raises(ValueError, match="fps"):
        _signals(table, frame_gaps_s=[])
    assert any("no video timing" in note for note in _signals(table).notes)


def test_contact_severity_from_force_columns() -> None:
    table = synthesize_trajectory(TrajectorySpec(seed=6))
    force = np.column_stack([table[f"force_{a}"].to_numpy() for a in "xyz"])
    peak = float(np.linalg.norm(force, axis=1).max())
    signals = _signals(table)
    assert signals.contact_peak_n == pytest.approx(peak)
    assert signals.contact_severity == pytest.approx(peak / 140.0)
    assert 0.0 < signals.contact_severity < 1.0
    strict = _signals(table, contact_limit_n=peak / 2)
    assert strict.contact_severity == pytest.approx(2.0)


def test_contact_is_none_without_force_columns() -> None:
    table = synthesize_trajectory(TrajectorySpec(seed=6, with_force=False))
    signals = _signals(table)
    assert signals.contact_peak_n is None
    assert signals.contact_severity is None
    assert any("force" in note for note in signals.notes)


@pytest.mark.parametrize(("blur", "enforced"), [(True, True), (False, False), (None, False)])
def test_privacy_missing_flag_counts_as_not_enforced(blur: bool | None, enforced: bool) -> None:
    table = synthesize_trajectory(TrajectorySpec(seed=0))
    assert _signals(table, blur_enforced=blur).privacy_enforced is enforced


@pytest.mark.parametrize("rows", [0, 1, 2, 4, 7, 10, 11, 12, 30])
def test_short_windows_degrade_to_finite_values_with_notes(rows: int) -> None:
    table = synthesize_trajectory(TrajectorySpec(seed=0, jerk_spikes=(0.05,)))
    window = table.slice(0, rows)
    signals = _signals(
        window, packet_times_s=REGULAR[: rows * 3 // 10], fps=FPS, blur_enforced=None
    )
    assert signals.samples == rows
    assert _finite(signals)
    if rows < jerk_window_samples(HZ):
        assert signals.jerk_peak == 0.0
        assert signals.ldlj == 0.0
        assert signals.notes
    else:
        assert signals.jerk_peak > 0.0


def test_a_stationary_arm_has_no_ldlj_but_small_jerk() -> None:
    table = synthesize_trajectory(TrajectorySpec(seed=0))
    rng = np.random.default_rng(0)
    still = table
    for name in ("ee_x", "ee_y", "ee_z"):
        noise = 0.3 + rng.normal(0.0, 1e-5, size=table.num_rows)  # sensor noise only
        still = still.set_column(still.schema.get_field_index(name), name, pa.array(noise))
    signals = _signals(still)
    assert signals.ldlj == 0.0
    assert any("no motion" in note for note in signals.notes)
    assert signals.jerk_peak < 5.0


def test_as_dict_is_json_ready_and_requires_the_core_columns() -> None:
    table = synthesize_trajectory(TrajectorySpec(seed=0, with_force=False))
    values = _signals(table).as_dict()
    assert isinstance(values["notes"], str)
    assert set(values) >= {"jerk_peak", "ldlj", "clock_skew_ppm", "contact_severity"}
    json.dumps(values)
    with pytest.raises(KeyError, match="device_time_ns"):
        _signals(table.drop_columns(["device_time_ns"]))
