"""Versioned safety rules and the machine score they give a clip's ``SafetySignals``.

A session names the rules that judge it (``safety_rules_version``, "v4.2" from the capture
simulator); old versions stay here unchanged so a clip can always be re-scored, and explained,
under the policy that judged it.

Status: ``rejected`` if any reject limit is exceeded, else ``needs_review`` if any review limit
is exceeded (or privacy blur was not enforced), else ``approved``. All limits are strict
("above"): a value exactly at a limit passes it.

Scores in [0, 1], each the *weakest* of its components (one bad signal is not averaged away):

* component(x) for a "lower is better" signal with review limit R and reject limit J is
  piecewise linear through (R/2, 1), (R, 0.75), (J, 0.25), (2J, 0): full marks up to half the
  review limit, 0.75 at the review limit, 0.25 at the reject limit, 0 at twice it. So a clip
  whose components are all above 0.75 passes those rules, and the score falls off
  continuously, never jumping, as a signal gets worse;
* safety = min(jerk peak component, contact severity component); no force columns means no
  evidence of a contact hazard, so contact does not lower it;
* smoothness = LDLJ mapped linearly from ``ldlj_floor`` (0) to ``ldlj_full`` (1) after
  normalising to ``ldlj_reference_s`` (below); LDLJ >= 0 (almost no jerk relative to the
  motion, or undefined and reported as 0 by the signals) scores 1. Smoothness has no limits
  of its own: jerk spikes are judged by the jerk rule;
* quality = min(dropped-frame ratio, max frame gap, clock offset bound, clock skew components).

LDLJ normalisation: LDLJ = -ln(T^3 / v_peak^2 * integral |jerk|^2 dt) falls by ~4 ln(T) with
window length T for a repeating task (integral ~ T, T^3), e.g. -10.5 for a clean 4 s window
but -14 for a clean 10 s one. ``ldlj + 4 ln(T / reference)`` removes that: measured on the
simulator, clean windows of 1, 2, 4, 10 and 60 s all normalise to -10.1 .. -11.0.

Clock offset: the rule judges ``|offset| + |skew| * T``, an upper bound of the robot-vs-video
offset anywhere in the clip (the offset is fitted at the clip start and the skew moves it
along). It is monotonic in both, and a 40 ms / 250 ppm drift over a 4 s clip is 41 ms: over
the 40 ms reject limit by a margin instead of sitting exactly on it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

import numpy as np

from robotrace_assets.clips.signals import SafetySignals

__all__ = [
    "RULES",
    "MachineScore",
    "SafetyRules",
    "Status",
    "UnknownRulesVersion",
    "rules_for",
    "score",
]

Status = Literal["approved", "needs_review", "rejected"]
_RANK: dict[Status, int] = {"approved": 0, "needs_review": 1, "rejected": 2}

# The score at the anchor points of a component, see the module docstring.
_AT_REVIEW = 0.75
_AT_REJECT = 0.25


@dataclass(frozen=True)
class SafetyRules:
    """One version of the policy. Every ``*_review`` / ``*_reject`` pair is a strict "above"
    limit with review < reject; units are in the names."""

    version: str
    jerk_peak_review: float  # m/s^3
    jerk_peak_reject: float
    contact_severity_review: float  # peak force / contact limit (ISO/TS 15066 hand: 140 N)
    contact_severity_reject: float
    dropped_ratio_review: float  # dropped / expected frames
    dropped_ratio_reject: float
    max_gap_review_s: float  # longest interval between video frames
    max_gap_reject_s: float
    clock_offset_review_ms: float  # |offset| + |skew| * T, robot vs video clock
    clock_offset_reject_ms: float
    clock_skew_review_ppm: float  # |skew|
    clock_skew_reject_ppm: float
    ldlj_full: float  # normalised LDLJ at or above which smoothness is 1
    ldlj_floor: float  # normalised LDLJ at or below which smoothness is 0
    ldlj_reference_s: float = 4.0  # window length the LDLJ levels are stated for
    privacy_required: bool = True  # blur not enforced => needs_review

    def __post_init__(self) -> None:
        for name in _LIMIT_PAIRS:
            review = getattr(self, f"{name}_review{_UNITS[name]}")
            reject = getattr(self, f"{name}_reject{_UNITS[name]}")
            if not (0 < review < reject and math.isfinite(reject)):
                raise ValueError(
                    f"rules {self.version}: {name} needs 0 < review < reject, "
                    f"got {review} and {reject}"
                )
        if not (self.ldlj_floor < self.ldlj_full <= 0 and math.isfinite(self.ldlj_floor)):
            raise ValueError(f"rules {self.version}: need ldlj_floor < ldlj_full <= 0")
        if not (self.ldlj_reference_s > 0 and math.isfinite(self.ldlj_reference_s)):
            raise ValueError(f"rules {self.version}: ldlj_reference_s must be positive")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# Field name stems of the review/reject pairs and the unit suffix of their field names.
_UNITS = {
    "jerk_peak": "",
    "contact_severity": "",
    "dropped_ratio": "",
    "max_gap": "_s",
    "clock_offset": "_ms",
    "clock_skew": "_ppm",
}
_LIMIT_PAIRS = tuple(_UNITS)


class UnknownRulesVersion(KeyError):
    """A session names a rules version this code does not have."""

    def __init__(self, version: str) -> None:
        self.version = version
        known = ", ".join(sorted(RULES))
        super().__init__(f"unknown safety rules version {version!r} (known: {known})")

    def __str__(self) -> str:
        # KeyError's str() is the repr of its argument; keep the message readable.
        return str(self.args[0])


RULES: dict[str, SafetyRules] = {
    # Calibrated on capture.simulator output (4 s, 100 Hz log, 30 fps video):
    #   clean: jerk peak 15-17 m/s^3, contact <= ~45 N (severity <= 0.33), no gaps, no drift;
    #   jerk_spike: 223-227 m/s^3 (13x clean); dropped_frames: 6 consecutive of 120 frames,
    #   ratio 0.05, one 0.233 s gap; clock_drift: 40 ms + 250 ppm (41 ms over 4 s).
    "v4.2": SafetyRules(
        version="v4.2",
        # 40: 2.5x the clean peak (a tuned cobot stays near its planner's jerk limit);
        # 120: half the simulator's spike, a knock or servo glitch, not planned motion.
        jerk_peak_review=40.0,
        jerk_peak_reject=120.0,
        contact_severity_review=0.8,
        contact_severity_reject=1.0,
        # AuraOne's QA flags > 5% dropped; a fifth of the frames missing is unusable.
        dropped_ratio_review=0.05,
        dropped_ratio_reject=0.20,
        # A freeze over ~0.1 s is visible and can hide a grasp. 0.11/0.51 s sit off the frame
        # grid of 24/25/30/50/60/120 fps, so a quantised gap never lands exactly on a limit;
        # this catches a 6-frame burst (0.233 s) that is exactly 5% of a 4 s clip.
        max_gap_review_s=0.11,
        max_gap_reject_s=0.51,
        # AuraOne's QA flags an A/V offset above 25 ms; above 40 ms it is unusable.
        clock_offset_review_ms=25.0,
        clock_offset_reject_ms=40.0,
        # Crystal oscillators are within ~50 ppm; beyond 100 the robot clock is not being
        # disciplined (NTP/PTP); 1000 ppm is 3.6 s per hour, a broken clock.
        clock_skew_review_ppm=100.0,
        clock_skew_reject_ppm=1000.0,
        # Normalised to 4 s: clean -10.1 .. -11.0, one jerk spike about -13.
        ldlj_full=-11.0,
        ldlj_floor=-15.0,
    ),
    # The previous policy: looser on motion, video and clocks, no gap rule to speak of.
    "v4.1": SafetyRules(
        version="v4.1",
        jerk_peak_review=50.0,
        jerk_peak_reject=150.0,
        contact_severity_review=0.9,
        contact_severity_reject=1.2,
        dropped_ratio_review=0.10,
        dropped_ratio_reject=0.30,
        max_gap_review_s=0.51,
        max_gap_reject_s=1.01,
        clock_offset_review_ms=40.0,
        clock_offset_reject_ms=100.0,
        clock_skew_review_ppm=200.0,
        clock_skew_reject_ppm=2000.0,
        ldlj_full=-11.0,
        ldlj_floor=-16.0,
    ),
}


def rules_for(version: str) -> SafetyRules:
    """The rules a session's ``safety_rules_version`` names; ``UnknownRulesVersion`` if none."""
    try:
        return RULES[version]
    except KeyError:
        raise UnknownRulesVersion(version) from None


@dataclass(frozen=True)
class MachineScore:
    """The machine's verdict on a clip; a reviewer may override it (rationale kept elsewhere)."""

    safety: float
    smoothness: float
    quality: float
    status: Status
    reasons: tuple[str, ...]  # one line per rule that fired, in a fixed order
    rules_version: str

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["reasons"] = list(self.reasons)
        return values


def _component(value: float, review: float, reject: float) -> float:
    """Lower-is-better signal -> [0, 1]: piecewise linear through (review/2, 1),
    (review, 0.75), (reject, 0.25), (2 * reject, 0); non-increasing in ``value``."""
    anchors = (review / 2, review, reject, 2 * reject)
    return float(np.interp(value, anchors, (1.0, _AT_REVIEW, _AT_REJECT, 0.0)))


def _normalised_ldlj(signals: SafetySignals, rules: SafetyRules) -> float:
    if signals.duration_s <= 0:
        return signals.ldlj
    return signals.ldlj + 4.0 * math.log(signals.duration_s / rules.ldlj_reference_s)


def _smoothness(signals: SafetySignals, rules: SafetyRules) -> float:
    if signals.ldlj >= 0.0:
        return 1.0
    fraction = (_normalised_ldlj(signals, rules) - rules.ldlj_floor) / (
        rules.ldlj_full - rules.ldlj_floor
    )
    return min(1.0, max(0.0, fraction))


def _check_finite(signals: SafetySignals) -> None:
    # A NaN compares false with every limit and would approve silently: refuse it instead.
    for field in fields(signals):
        value = getattr(signals, field.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"signal {field.name} is not finite: {value}")


class _Verdict:
    """The reasons and worst status so far, as the rules fire in their fixed order."""

    def __init__(self) -> None:
        self.reasons: list[str] = []
        self.worst: Status = "approved"

    def raise_to(self, level: Status, reason: str) -> None:
        self.reasons.append(reason)
        if _RANK[level] > _RANK[self.worst]:
            self.worst = level

    def judge(self, value: float, review: float, reject: float, describe: str, limit: str) -> None:
        """One strict "above" rule: ``describe`` says what was measured, ``limit`` formats
        the limit it exceeded."""
        if value > reject:
            self.raise_to("rejected", f"{describe} > {limit.format(reject)} (reject)")
        elif value > review:
            self.raise_to("needs_review", f"{describe} > {limit.format(review)} (review)")


def _safety(signals: SafetySignals, rules: SafetyRules, verdict: _Verdict) -> float:
    """Jerk peak and contact severity rules; the weaker of their components."""
    jerk = signals.jerk_peak
    verdict.judge(
        jerk,
        rules.jerk_peak_review,
        rules.jerk_peak_reject,
        f"jerk peak {jerk:.0f} m/s^3",
        "{:g}",
    )
    safety = _component(jerk, rules.jerk_peak_review, rules.jerk_peak_reject)
    severity = signals.contact_severity
    if severity is None:
        # No force columns: no evidence of a contact hazard, so contact does not lower it.
        return safety
    peak_n = signals.contact_peak_n
    peak = f" (peak {peak_n:.0f} N)" if peak_n is not None else ""
    verdict.judge(
        severity,
        rules.contact_severity_review,
        rules.contact_severity_reject,
        f"contact severity {severity:.2f}{peak}",
        "{:g}",
    )
    contact = _component(severity, rules.contact_severity_review, rules.contact_severity_reject)
    return min(safety, contact)


def _video_quality(signals: SafetySignals, rules: SafetyRules, verdict: _Verdict) -> float:
    """Dropped-frame ratio and longest frame gap rules; the weaker of their components."""
    ratio = signals.dropped_frame_ratio
    verdict.judge(
        ratio,
        rules.dropped_ratio_review,
        rules.dropped_ratio_reject,
        f"dropped frames {signals.dropped_frames} ({ratio:.1%})",
        "{:.0%}",
    )
    gap = signals.max_frame_gap_s
    verdict.judge(
        gap,
        rules.max_gap_review_s,
        rules.max_gap_reject_s,
        f"max frame gap {gap:.3f} s (video freeze; {signals.dropped_frames} dropped frames "
        "in clip)",
        "{:g} s",
    )
    return min(
        _component(ratio, rules.dropped_ratio_review, rules.dropped_ratio_reject),
        _component(gap, rules.max_gap_review_s, rules.max_gap_reject_s),
    )


def _clock_quality(signals: SafetySignals, rules: SafetyRules, verdict: _Verdict) -> float:
    """Clock offset bound and skew rules; the weaker of their components."""
    offset = abs(signals.clock_offset_ms)
    skew = abs(signals.clock_skew_ppm)
    # ppm * s = microseconds; / 1000 for ms.
    offset_bound = offset + skew * max(signals.duration_s, 0.0) / 1e3
    verdict.judge(
        offset_bound,
        rules.clock_offset_review_ms,
        rules.clock_offset_reject_ms,
        f"clock offset up to {offset_bound:.1f} ms in clip "
        f"({signals.clock_offset_ms:+.1f} ms at start, {signals.clock_skew_ppm:+.0f} ppm "
        f"over {signals.duration_s:.1f} s)",
        "{:g} ms",
    )
    verdict.judge(
        skew,
        rules.clock_skew_review_ppm,
        rules.clock_skew_reject_ppm,
        f"clock skew {signals.clock_skew_ppm:+.0f} ppm",
        "{:g} ppm",
    )
    return min(
        _component(offset_bound, rules.clock_offset_review_ms, rules.clock_offset_reject_ms),
        _component(skew, rules.clock_skew_review_ppm, rules.clock_skew_reject_ppm),
    )


def score(signals: SafetySignals, rules: SafetyRules) -> MachineScore:
    """Score and judge one clip's signals under ``rules`` (see the module docstring).

    Deterministic and monotonic: making any signal worse (higher jerk, contact, dropped
    ratio, gap, |offset|, |skew|; lower LDLJ; privacy lost) never raises a score nor
    improves the status.
    """
    _check_finite(signals)
    verdict = _Verdict()
    safety = _safety(signals, rules, verdict)
    quality = min(_video_quality(signals, rules, verdict), _clock_quality(signals, rules, verdict))
    if rules.privacy_required and not signals.privacy_enforced:
        # Unblurred faces/screens may be in the frame: a person has to look before release.
        verdict.raise_to("needs_review", "privacy blur not enforced (review)")
    return MachineScore(
        safety=safety,
        smoothness=_smoothness(signals, rules),
        quality=quality,
        status=verdict.worst,
        reasons=tuple(verdict.reasons),
        rules_version=rules.version,
    )


def without_signals(machine: MachineScore, reason: str) -> MachineScore:
    """A clip whose trajectory could not be read is never machine-approved: at best it needs a
    person's review, with the reason; a rejection on the video side stands."""
    status: Status = "rejected" if machine.status == "rejected" else "needs_review"
    return dataclasses.replace(
        machine, status=status, reasons=(*machine.reasons, f"no safety signals: {reason}")
    )
