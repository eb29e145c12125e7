"""Versioned safety rules: calibrated on the simulator's clean captures and injected defects."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from robotrace_assets.capture.trajectories import TrajectorySpec, synthesize_trajectory
from robotrace_assets.clips.rules import (
    RULES,
    MachineScore,
    UnknownRulesVersion,
    rules_for,
    score,
)
from robotrace_assets.clips.signals import SafetySignals, compute_signals

FPS = 30.0
REGULAR = np.arange(120) / FPS
GAPPY = np.delete(REGULAR, range(40, 46))  # the simulator's dropped_frames defect: 5%
V42 = rules_for("v4.2")
_RANK = {"approved": 0, "needs_review": 1, "rejected": 2}


def _capture(packets: np.ndarray = REGULAR, blur: bool | None = True, **spec: Any) -> SafetySignals:
    table = synthesize_trajectory(TrajectorySpec(**spec))
    return compute_signals(table, hz=100.0, packet_times_s=packets, fps=FPS, blur_enforced=blur)


def _baseline(**overrides: Any) -> SafetySignals:
    values: dict[str, Any] = {
        "jerk_peak": 16.0,
        "jerk_rms": 8.0,
        "ldlj": -10.5,
        "dropped_frames": 0,
        "dropped_frame_ratio": 0.0,
        "max_frame_gap_s": 1 / FPS,
        "clock_offset_ms": 0.0,
        "clock_skew_ppm": 0.0,
        "contact_peak_n": 30.0,
        "contact_severity": 30.0 / 140.0,
        "privacy_enforced": True,
        "samples": 400,
        "duration_s": 4.0,
    }
    values.update(overrides)
    return SafetySignals(**values)


@pytest.mark.parametrize("seed", range(6))
def test_clean_captures_are_approved_with_scores_near_one(seed: int) -> None:
    machine = score(_capture(seed=seed), V42)
    assert machine.status == "approved", machine.reasons
    assert machine.reasons == ()
    assert min(machine.safety, machine.smoothness, machine.quality) >= 0.95
    assert machine.rules_version == "v4.2"


@pytest.mark.parametrize("seed", range(3))
def test_jerk_spike_is_rejected_for_jerk(seed: int) -> None:
    machine = score(_capture(seed=seed, jerk_spikes=(2.0,)), V42)
    assert machine.status == "rejected"
    assert any("jerk" in reason and "(reject)" in reason for reason in machine.reasons)
    assert machine.safety < 0.25
    assert machine.smoothness < score(_capture(seed=seed), V42).smoothness


def test_clock_drift_defect_is_flagged_for_the_clock() -> None:
    machine = score(_capture(seed=1, clock_skew_ppm=250.0, clock_offset_s=0.040), V42)
    assert machine.status in ("needs_review", "rejected")
    assert machine.reasons and all("clock" in reason for reason in machine.reasons)
    assert machine.quality < 0.75


def test_dropped_frames_defect_needs_review() -> None:
    signals = _capture(seed=2, packets=GAPPY)
    assert signals.dropped_frame_ratio == pytest.approx(0.05)
    machine = score(signals, V42)
    assert machine.status == "needs_review"
    assert any("frame" in reason for reason in machine.reasons)
    assert machine.quality < 0.75


def test_missing_blur_flag_needs_review() -> None:
    machine = score(_capture(seed=0, blur=None), V42)
    assert machine.status == "needs_review"
    assert machine.reasons == ("privacy blur not enforced (review)",)
    relaxed = dataclasses.replace(V42, privacy_required=False)
    assert score(_capture(seed=0, blur=None), relaxed).status == "approved"


def test_contact_limits() -> None:
    assert score(_baseline(contact_severity=0.85), V42).status == "needs_review"
    rejected = score(_baseline(contact_severity=1.3, contact_peak_n=182.0), V42)
    assert rejected.status == "rejected"
    assert rejected.reasons == ("contact severity 1.30 (peak 182 N) > 1 (reject)",)
    # No force columns is no evidence of a contact hazard.
    no_force = score(_baseline(contact_severity=None, contact_peak_n=None), V42)
    assert (no_force.status, no_force.safety) == ("approved", 1.0)


def test_limits_are_strict_and_components_hit_their_anchors() -> None:
    at_review = score(_baseline(jerk_peak=V42.jerk_peak_review), V42)
    assert (at_review.status, at_review.safety) == ("approved", pytest.approx(0.75))
    at_reject = score(_baseline(jerk_peak=V42.jerk_peak_reject), V42)
    assert (at_reject.status, at_reject.safety) == ("needs_review", pytest.approx(0.25))
    assert score(_baseline(jerk_peak=2 * V42.jerk_peak_reject), V42).safety == 0.0


def test_ldlj_is_normalised_for_window_length() -> None:
    # A clean 10 s window has a much lower raw LDLJ than a 4 s one; both score as smooth.
    table = synthesize_trajectory(TrajectorySpec(seconds=10.0, seed=3))
    for rows in (100, 400, 1000):
        signals = compute_signals(table.slice(0, rows), hz=100.0, blur_enforced=True)
        assert score(signals, V42).smoothness >= 0.95, (rows, signals.ldlj)
    assert score(_baseline(ldlj=0.0), V42).smoothness == 1.0
    assert score(_baseline(ldlj=-15.0), V42).smoothness == 0.0


# Each mutation makes one signal worse by ``step`` (in its own worse direction).
_WORSEN: dict[str, Any] = {
    "jerk_peak": lambda s, step: {"jerk_peak": s.jerk_peak + 30.0 * step},
    "ldlj": lambda s, step: {"ldlj": s.ldlj - 1.5 * step},
    "contact": lambda s, step: {"contact_severity": (s.contact_severity or 0.0) + 0.2 * step},
    "dropped": lambda s, step: {"dropped_frame_ratio": s.dropped_frame_ratio + 0.03 * step},
    "gap": lambda s, step: {"max_frame_gap_s": s.max_frame_gap_s + 0.1 * step},
    "offset": lambda s, step: {
        "clock_offset_ms": s.clock_offset_ms + np.copysign(8.0 * step, s.clock_offset_ms)
    },
    "skew": lambda s, step: {
        "clock_skew_ppm": s.clock_skew_ppm + np.copysign(150.0 * step, s.clock_skew_ppm)
    },
    "privacy": lambda s, step: {"privacy_enforced": False},
}


def _no_better(worse: MachineScore, better: MachineScore) -> bool:
    return (
        worse.safety <= better.safety
        and worse.smoothness <= better.smoothness
        and worse.quality <= better.quality
        and _RANK[worse.status] >= _RANK[better.status]
    )


@pytest.mark.parametrize("version", sorted(RULES))
def test_worse_signals_never_score_better(version: str) -> None:
    rules = rules_for(version)
    rng = np.random.default_rng(42)
    for _ in range(300):
        signals = _baseline(
            jerk_peak=float(rng.uniform(0.0, 300.0)),
            ldlj=float(rng.uniform(-20.0, 0.0)),
            contact_severity=float(rng.uniform(0.0, 2.5)),
            dropped_frame_ratio=float(rng.uniform(0.0, 0.5)),
            max_frame_gap_s=float(rng.uniform(0.03, 1.5)),
            clock_offset_ms=float(rng.uniform(-120.0, 120.0)),
            clock_skew_ppm=float(rng.uniform(-2500.0, 2500.0)),
            privacy_enforced=bool(rng.random() < 0.8),
            duration_s=float(rng.uniform(0.5, 20.0)),
        )
        before = score(signals, rules)
        assert score(signals, rules) == before  # deterministic
        for name, worsen in _WORSEN.items():
            step = float(rng.uniform(0.01, 3.0))
            after = score(dataclasses.replace(signals, **worsen(signals, step)), rules)
            assert _no_better(after, before), (name, signals, before, after)


def test_unknown_version_raises_a_clear_key_error() -> None:
    with pytest.raises(UnknownRulesVersion, match=r"'v9\.9'.*known: v4\.1, v4\.2") as caught:
        rules_for("v9.9")
    assert isinstance(caught.value, KeyError)
    assert caught.value.version == "v9.9"


def test_v41_and_v42_judge_the_same_capture_differently() -> None:
    v41 = rules_for("v4.1")
    assert v41 != V42
    dropped = _capture(seed=2, packets=GAPPY)
    assert (score(dropped, v41).status, score(dropped, V42).status) == (
        "approved",
        "needs_review",
    )
    drift = _capture(seed=1, clock_skew_ppm=250.0, clock_offset_s=0.040)
    assert (score(drift, v41).status, score(drift, V42).status) == ("needs_review", "rejected")
    assert score(drift, v41).rules_version == "v4.1"


def test_rules_validate_their_limits_and_signals_must_be_finite() -> None:
    with pytest.raises(ValueError, match="jerk_peak"):
        dataclasses.replace(V42, jerk_peak_review=200.0)
    with pytest.raises(ValueError, match="ldlj"):
        dataclasses.replace(V42, ldlj_full=-20.0)
    with pytest.raises(ValueError, match="not finite"):
        score(_baseline(jerk_peak=float("nan")), V42)
