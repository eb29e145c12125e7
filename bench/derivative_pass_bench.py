"""Benchmark: the derivative pass with transcript and labels vs without, on one narrated segment.

One simulated capture segment, made with the simulator's own media functions: 24 s of
1280x720 HEVC at 30 fps and 4 Mbit/s (a phone's 720p recording), with the pick-and-place
narration espeak-ng speaks for it (``capture.narration.fit_narration``, AAC) and its 100 Hz
trajectory (``capture.trajectories``) as a Parquet sensor log. Timed, interleaved A, B, A, B
over N repetitions after an untimed warm-up of each (ffmpeg and the file in the page cache,
the ASR model loaded):
  (a) the plain pass: ``make_derivatives(audio_pcm=False)`` (proxy, stills, sheet, probe);
  (b) the full pass as ``derivatives.assets.derive_segment`` runs it, minus the store:
      ``make_derivatives(audio_pcm=True)``, then the label track (the trajectory read from
      its Parquet file, ``build_label_track``, Parquet and WebVTT written), then the
      transcript (``make_transcript`` with the configured engine, both files written).
Reported: medians of wall and CPU time (this process plus its ffmpeg children), the ratio
(b)/(a), and the share of (b) each step takes. No target: the issue states none.

    python -m bench.derivative_pass_bench [--quick]     prints the markdown section
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from bench.common import WORK_DIR, Spread, log, machine_cpu_s, md_table
from robotrace_assets.capture.media import VideoInfo, VideoSpec, encode_synthetic_video
from robotrace_assets.capture.narration import Narration, fit_narration
from robotrace_assets.capture.simulator import TASKS
from robotrace_assets.capture.trajectories import TrajectorySpec, synthesize_trajectory
from robotrace_assets.derivatives.labels import (
    LabelInputs,
    LabelThresholds,
    LabelTrack,
    build_label_track,
)
from robotrace_assets.derivatives.media import DerivativeSet, make_derivatives
from robotrace_assets.derivatives.profiles import CURRENT_PROFILE
from robotrace_assets.derivatives.transcript import TranscriptResult, word_error_rate
from robotrace_assets.derivatives.transcripts import make_transcript
from robotrace_assets.robotlogs import read_segment_log
from robotrace_assets.sensorlog import write_parquet

# A phone's 720p recording; the simulator's defaults (320x240, 4 s) scaled up to a segment
# whose video work is not dwarfed by fixed costs. Both modes use it: the ratio depends on size.
SEGMENT_SPEC = VideoSpec(
    seconds=24.0, fps=30, width=1280, height=720, codec="hevc", seed=14, bitrate_kbps=4_000
)
SENSOR_HZ = 100.0
TASK, STEPS = TASKS[0]
TENANT, DEVICE = "tenant-bench", "iphone_15_pro"
FULL_REPEATS, QUICK_REPEATS = 5, 2
PHASES = ("derivatives_audio", "labels", "transcript")
_PHASE_LABELS = {
    "derivatives_audio": "make_derivatives(audio_pcm=True): one ffmpeg pass + audio branch",
    "labels": "label track: trajectory Parquet read, build_label_track, Parquet + WebVTT",
    "transcript": "transcript: make_transcript (recognition, JSON + WebVTT)",
}

T = TypeVar("T")


@dataclass(frozen=True)
class NarratedSegment:
    info: VideoInfo
    narration: Narration
    trajectory: Path
    task_steps: list[dict[str, Any]]


@dataclass(frozen=True)
class Cost:
    """One timed call: wall seconds, CPU seconds of this process and of its waited-for children
    (ffmpeg), and what other processes on the machine took meanwhile (the noise)."""

    wall_s: float
    cpu_s: float
    other_cpu_s: float

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.wall_s + other.wall_s,
            self.cpu_s + other.cpu_s,
            self.other_cpu_s + other.other_cpu_s,
        )


def _our_cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _costed(action: Callable[[], T]) -> tuple[Cost, T]:
    machine, ours = machine_cpu_s(), _our_cpu_s()
    started = time.perf_counter()
    value = action()
    wall = time.perf_counter() - started
    cpu = _our_cpu_s() - ours
    return Cost(wall, cpu, max(0.0, machine_cpu_s() - machine - cpu)), value


def make_segment(root: Path) -> NarratedSegment:
    """The narrated segment as the simulator makes one (its narration, steps and trajectory)."""
    seconds = SEGMENT_SPEC.seconds
    narration = fit_narration(TASK, STEPS, seconds, root / "narration.wav")
    if narration is None:
        raise RuntimeError(f"no narration of {TASK} fits {seconds:g} s")
    spec = replace(SEGMENT_SPEC, audio_wav=narration.wav)
    info = encode_synthetic_video(root / "segment.mp4", spec)
    trajectory = root / "sensors.parquet"
    write_parquet(
        synthesize_trajectory(TrajectorySpec(seconds=seconds, hz=SENSOR_HZ, seed=spec.seed)),
        trajectory,
    )
    # The simulator's envelope: the brief's steps spread evenly over the segment.
    step_s = seconds / len(STEPS)
    steps = [
        {"label": label, "start_s": round(i * step_s, 6), "end_s": round((i + 1) * step_s, 6)}
        for i, label in enumerate(STEPS)
    ]
    return NarratedSegment(info, narration, trajectory, steps)


def plain_pass(segment: NarratedSegment, out: Path) -> DerivativeSet:
    hint = segment.info.duration_s
    return make_derivatives(str(segment.info.path), out, CURRENT_PROFILE, duration_hint_s=hint)


def _label_track(segment: NarratedSegment, made: DerivativeSet, out: Path) -> LabelTrack:
    """As derivatives.assets._make_labels, from a local file instead of the proven object."""
    trajectory = read_segment_log(
        segment.trajectory.read_bytes(), "parquet", tenant_id=TENANT, device_model=DEVICE
    )
    inputs = LabelInputs(
        frames=made.probe.frames,
        fps=made.probe.fps,
        timestamp_gaps=made.probe.timestamp_gaps,
        task_steps=segment.task_steps,
        task_brief=TASK,
        blur_enforced=True,
        clip_tags=[],  # derivatives come before review
        trajectory=trajectory,
    )
    limits = LabelThresholds(
        made.profile.label_moving_speed_m_s, made.profile.label_contact_force_n
    )
    track = build_label_track(inputs, limits)
    track.write_parquet(out / "labels.parquet")
    track.write_webvtt(out / "labels.vtt")
    return track


def full_pass(
    segment: NarratedSegment, out: Path
) -> tuple[dict[str, Cost], LabelTrack, TranscriptResult]:
    """(b) step by step, each step costed; the steps run back to back as derive_segment's do."""
    source = str(segment.info.path)
    side = out / "side"
    side.mkdir(parents=True)
    derive, made = _costed(
        lambda: make_derivatives(
            source,
            out,
            CURRENT_PROFILE,
            duration_hint_s=segment.info.duration_s,
            audio_pcm=True,
        )
    )
    labels, track = _costed(lambda: _label_track(segment, made, side))
    transcribe, result = _costed(lambda: make_transcript(made, lambda: (source, {}), side))
    costs = {"derivatives_audio": derive, "labels": labels, "transcript": transcribe}
    return costs, track, result


def _record(series: dict[str, list[float]], name: str, cost: Cost) -> None:
    for key, value in (("wall", cost.wall_s), ("cpu", cost.cpu_s), ("other", cost.other_cpu_s)):
        series.setdefault(f"{name}_{key}_s", []).append(value)


def _interleaved(segment: NarratedSegment, root: Path, repeats: int) -> dict[str, Any]:
    """A, B, A, B, ...: a noisy neighbour slows both passes rather than one."""
    series: dict[str, list[float]] = {}
    track: LabelTrack | None = None
    result: TranscriptResult | None = None
    for repeat in range(repeats):
        out = root / f"plain-{repeat}"
        plain, _ = _costed(lambda out=out: plain_pass(segment, out))
        shutil.rmtree(out)
        _record(series, "plain", plain)
        out = root / f"full-{repeat}"
        phases, track, result = full_pass(segment, out)
        shutil.rmtree(out)
        full = phases["derivatives_audio"] + phases["labels"] + phases["transcript"]
        _record(series, "full", full)
        for name, cost in phases.items():
            _record(series, name, cost)
        log(
            f"derivative pass #{repeat + 1}: plain {plain.wall_s:.2f}s "
            f"({plain.cpu_s:.2f} CPU), full {full.wall_s:.2f}s ({full.cpu_s:.2f} CPU)"
        )
    assert track is not None and result is not None  # repeats >= 1
    return {"series": series, "track": track, "transcript": result}


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _figures(series: dict[str, list[float]]) -> dict[str, Any]:
    """Ratios and shares from the series: ratios of medians, and per-repetition pair ratios to
    show how much the machine's noise moved them."""
    figures: dict[str, Any] = {}
    for clock in ("wall", "cpu"):
        plain, full = series[f"plain_{clock}_s"], series[f"full_{clock}_s"]
        figures[f"ratio_{clock}"] = _median(full) / _median(plain)
        figures[f"pair_ratios_{clock}"] = [b / a for a, b in zip(plain, full, strict=True)]
        figures[f"share_{clock}"] = {
            name: _median([p / t for p, t in zip(series[f"{name}_{clock}_s"], full, strict=True)])
            for name in PHASES
        }
    return figures


def run(quick: bool, workdir: Path | None = None) -> dict[str, Any]:
    """Make the segment, warm up, measure (a) and (b) interleaved; plain JSON-able figures.
    Everything lives in a temporary directory under ``workdir`` and is removed afterwards."""
    repeats = QUICK_REPEATS if quick else FULL_REPEATS
    base = workdir or WORK_DIR
    base.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="derivative-pass-", dir=base))
    load_before = os.getloadavg()
    try:
        started = time.perf_counter()
        segment = make_segment(root)
        log(
            f"derivative pass: {segment.info.width}x{segment.info.height} {segment.info.codec} "
            f"{segment.info.duration_s:.0f}s segment ({segment.info.size_bytes / 1e6:.1f} MB) "
            f"made in {time.perf_counter() - started:.1f}s"
        )
        # Untimed warm-up of both: page cache, ffmpeg binary, the ASR model.
        plain_pass(segment, root / "warm-plain")
        full_pass(segment, root / "warm-full")
        measured = _interleaved(segment, root, repeats)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    track, transcript = measured["track"], measured["transcript"]
    return {
        "quick": quick,
        "repeats": repeats,
        "cores": os.cpu_count(),
        "load": [load_before[0], os.getloadavg()[0]],
        "segment": {
            "width": segment.info.width,
            "height": segment.info.height,
            "fps": segment.info.fps,
            "codec": segment.info.codec,
            "audio_codec": segment.info.audio_codec,
            "seconds": segment.info.duration_s,
            "frames": segment.info.frames,
            "bitrate_kbps": SEGMENT_SPEC.bitrate_kbps,
            "size_bytes": segment.info.size_bytes,
            "sensor_hz": SENSOR_HZ,
        },
        "task": TASK,
        "narration": {"text": segment.narration.text, "speech_s": segment.narration.duration_s},
        "profile": {"version": CURRENT_PROFILE.version, "threads": CURRENT_PROFILE.threads},
        "series": measured["series"],
        **_figures(measured["series"]),
        "labels": {"frames": track.table.num_rows, "phases": track.phase_counts},
        "transcript": {
            "engine": f"{transcript.engine} {transcript.engine_version}",
            "model": transcript.model,
            "audio_s": transcript.audio_duration_s,
            "words": len(transcript.words),
            "wer": word_error_rate(segment.narration.text, transcript.text),
        },
    }


def _row(label: str, result: dict[str, Any], name: str, share: bool) -> tuple[str, ...]:
    series = result["series"]
    wall = Spread.of(series[f"{name}_wall_s"])
    cpu = Spread.of(series[f"{name}_cpu_s"])
    other = Spread.of(series[f"{name}_other_s"])
    shares = f"{result['share_wall'][name]:.0%} / {result['share_cpu'][name]:.0%}" if share else ""
    return (label, wall.fmt(2), cpu.fmt(2), f"{other.median:.2f}", shares)


def markdown(result: dict[str, Any]) -> str:
    """A subsection for the transcript section: the table, then ratio and shares in words."""
    seg, narration, transcript = result["segment"], result["narration"], result["transcript"]
    rows = [_row("(a) plain: make_derivatives(audio_pcm=False)", result, "plain", False)]
    rows.append(_row("(b) full: the three steps below", result, "full", False))
    rows += [_row(f"(b) {_PHASE_LABELS[name]}", result, name, True) for name in PHASES]
    pairs_wall = Spread.of(result["pair_ratios_wall"])
    pairs_cpu = Spread.of(result["pair_ratios_cpu"])
    series = result["series"]
    audio_s = transcript["audio_s"]
    branch_cpu = _median(series["derivatives_audio_cpu_s"]) - _median(series["plain_cpu_s"])
    headers = ["pass / step", "wall s", "CPU s", "other tenants CPU s", "share of (b) wall / CPU"]
    return "\n".join(
        [
            "### The derivative pass with transcript and labels vs without",
            "",
            f"One simulated segment: {seg['width']}x{seg['height']} {seg['codec']} "
            f"{seg['fps']} fps, {seg['seconds']:.0f} s, {seg['bitrate_kbps']} kbit/s "
            f"({seg['size_bytes'] / 1e6:.1f} MB, {seg['frames']} frames), local file, with "
            f"{seg['audio_codec']} audio: the {result['task']} narration the simulator speaks "
            f"({narration['speech_s']:.1f} s of speech, the rest silence) and a "
            f"{seg['sensor_hz']:g} Hz trajectory. Profile `{result['profile']['version']}` "
            f"({result['profile']['threads']} ffmpeg threads). Median (min-max) of "
            f"{result['repeats']} runs, (a) and (b) interleaved after an untimed warm-up, "
            f"{result['cores']} cores, load average {result['load'][0]:.1f} before and "
            f"{result['load'][1]:.1f} after.",
            "",
            md_table(headers, rows),
            "",
            f"**(b)/(a): {result['ratio_wall']:.2f}x wall time, {result['ratio_cpu']:.2f}x CPU "
            f"time** (ratio of medians; per interleaved pair {pairs_wall.fmt(2)} wall, "
            f"{pairs_cpu.fmt(2)} CPU). "
            f"The transcript takes {result['share_wall']['transcript']:.0%} of (b)'s wall time "
            f"and {result['share_cpu']['transcript']:.0%} of its CPU time, a real-time factor "
            f"of {_median(series['transcript_wall_s']) / audio_s:.2f} in wall and "
            f"{_median(series['transcript_cpu_s']) / audio_s:.2f} in CPU time over the "
            f"segment's {audio_s:.0f} s of audio, with {transcript['engine']} "
            f"({transcript['model']}): {transcript['words']} words heard, WER "
            f"{transcript['wer']:.2f} against the narration. The audio branch in the single "
            f"ffmpeg pass costs {branch_cpu:+.2f} CPU s over (a) (medians; within the noise "
            f"when near zero). The label track covers {result['labels']['frames']} frames "
            f"({', '.join(f'{k} {v}' for k, v in result['labels']['phases'].items())}).",
            "",
            "CPU s is this process (recognition, labels) plus its waited-for ffmpeg children; "
            "'other tenants CPU' is machine-wide busy time during the call minus ours, i.e. "
            "the noise. No target: the issue asks for the figure.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_REPEATS} repetitions")
    parser.add_argument("--workdir", type=Path, default=WORK_DIR)
    args = parser.parse_args()
    print(markdown(run(args.quick, args.workdir)))


if __name__ == "__main__":
    main()
