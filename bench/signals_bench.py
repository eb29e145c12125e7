"""Benchmark: clip safety signals for one hour of capture, next to just reading its Parquet.

One hour (--quick: 10 min) of 100 Hz end-effector log with force columns from the capture
simulator, written with ``sensorlog.write_parquet``, plus the hour's 30 fps video packet
timestamps with a few dropped-frame bursts. Timed, median of 3 interleaved repeats after an
untimed warm-up (file in the page cache, imports and caches warm):
  (a) ``pyarrow.parquet.read_table`` of the log alone;
  (b) the same read, then ``compute_signals`` for every 10 s clip window (the table and the
      timestamps sliced per window by host time, as the clip asset does).
Reported: throughput in samples/s, the ratio (b)/(a), and the cost per clip window. An untimed
pass also scores every window under rules v4.2 as a sanity check of what the signals find.

    python -m bench.signals_bench [--quick]     prints the markdown section
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench.common import WORK_DIR, Spread, log, md_table
from robotrace_assets.capture.trajectories import TrajectorySpec, synthesize_trajectory
from robotrace_assets.clips.rules import rules_for, score
from robotrace_assets.clips.signals import SafetySignals, compute_signals
from robotrace_assets.sensorlog import write_parquet

FULL_SECONDS = 3600.0
QUICK_SECONDS = 600.0
HZ = 100.0
FPS = 30.0
WINDOW_S = 10.0
REPEATS = 3
RULES_VERSION = "v4.2"
# A plausible hour: an NTP-disciplined robot clock (5 ppm, 3 ms: 21 ms apart after an hour,
# under the 25 ms review limit) and a few knocks.
CLOCK_SKEW_PPM = 5.0
CLOCK_OFFSET_S = 0.003
SPIKES_PER_HOUR = 4
# Dropped-frame bursts (frames) spread over the hour, like the simulator's defect.
GAP_BURSTS = (6, 2, 15, 4, 30)

_RULE_NAMES = (
    "jerk peak",
    "contact severity",
    "dropped frames",
    "max frame gap",
    "clock offset",
    "clock skew",
    "privacy blur",
)

METHODS = ("read_only", "read_and_signals")
_LABELS = {
    "read_only": "(a) pyarrow read_table alone",
    "read_and_signals": f"(b) read + compute_signals per {WINDOW_S:g} s window",
}


def _packet_times(seconds: float, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Video packet times (s, host clock from the log's first sample) with dropped bursts."""
    times = np.arange(round(seconds * FPS)) / FPS
    starts = np.sort(rng.choice(np.arange(100, times.size - 100), len(GAP_BURSTS), replace=False))
    drop = np.concatenate(
        [np.arange(s, s + n) for s, n in zip(starts.tolist(), GAP_BURSTS, strict=True)]
    )
    return np.delete(times, drop), int(drop.size)


def _windows(table: pa.Table, packets: np.ndarray) -> list[tuple[int, int, int, int]]:
    """(row start, row stop, packet start, packet stop) of every clip window, by host time."""
    host = table.column("host_time_ns").to_numpy()
    rel_s = (host - host[0]) / 1e9
    edges = np.arange(0.0, float(rel_s[-1]) + 1.0 / HZ, WINDOW_S)
    edges = np.append(edges, np.inf)
    rows = np.searchsorted(rel_s, edges, side="left").tolist()
    frames = np.searchsorted(packets, edges, side="left").tolist()
    return [
        (rows[i], rows[i + 1], frames[i], frames[i + 1])
        for i in range(len(edges) - 1)
        if rows[i + 1] > rows[i]
    ]


def _signals_per_window(path: Path, packets: np.ndarray) -> list[SafetySignals]:
    table = pq.read_table(path)
    return [
        compute_signals(
            table.slice(r0, r1 - r0),
            hz=HZ,
            packet_times_s=packets[p0:p1],
            fps=FPS,
            blur_enforced=True,
        )
        for r0, r1, p0, p1 in _windows(table, packets)
    ]


def _read_only(path: Path) -> int:
    return pq.read_table(path).num_rows


def run(quick: bool, workdir: Path | None = None) -> dict[str, Any]:
    """Measure (a) and (b) on a fresh synthetic hour; returns plain JSON-able figures.

    Files go to a temporary directory inside ``workdir`` (default bench/.work/), removed
    afterwards whatever happens.
    """
    seconds = QUICK_SECONDS if quick else FULL_SECONDS
    rng = np.random.default_rng(2024)
    spikes = tuple(
        float(t)
        for t in np.sort(
            rng.uniform(5.0, seconds - 5.0, max(1, round(SPIKES_PER_HOUR * seconds / 3600)))
        )
    )
    base = Path(workdir) if workdir is not None else WORK_DIR
    base.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="signals-", dir=base))
    try:
        started = time.perf_counter()
        table = synthesize_trajectory(
            TrajectorySpec(
                seconds=seconds,
                hz=HZ,
                seed=7,
                with_force=True,
                jerk_spikes=spikes,
                clock_skew_ppm=CLOCK_SKEW_PPM,
                clock_offset_s=CLOCK_OFFSET_S,
            )
        )
        samples, columns = table.num_rows, table.num_columns
        path = root / "trajectory.parquet"
        size = write_parquet(table, path)
        del table
        packets, dropped = _packet_times(seconds, rng)
        log(
            f"signals: {seconds:.0f} s log, {samples:,} rows x {columns} columns, "
            f"{size / 1e6:.1f} MB Parquet, {packets.size:,} packets; "
            f"set up in {time.perf_counter() - started:.1f}s"
        )

        # Untimed warm-up and sanity pass: page cache, imports, operator cache; statuses.
        signals = _signals_per_window(path, packets)
        rules = rules_for(RULES_VERSION)
        scores = [score(s, rules) for s in signals]
        statuses = Counter(machine.status for machine in scores)
        # Which rules fired, by the rule's name at the start of each reason.
        fired = Counter(
            next((rule for rule in _RULE_NAMES if reason.startswith(rule)), reason)
            for machine in scores
            for reason in machine.reasons
        )
        found = {
            "windows": len(signals),
            "dropped_frames": sum(s.dropped_frames for s in signals),
            "windows_with_jerk_over_reject": sum(
                s.jerk_peak > rules.jerk_peak_reject for s in signals
            ),
            "max_clock_offset_ms": max(abs(s.clock_offset_ms) for s in signals),
            "statuses": dict(sorted(statuses.items())),
            "rules_fired": dict(sorted(fired.items())),
        }

        actions = {
            "read_only": lambda: _read_only(path),
            "read_and_signals": lambda: _signals_per_window(path, packets),
        }
        wall: dict[str, list[float]] = {name: [] for name in METHODS}
        cpu: dict[str, list[float]] = {name: [] for name in METHODS}
        for repeat in range(REPEATS):
            order = METHODS if repeat % 2 == 0 else METHODS[::-1]
            for name in order:
                cpu_before = time.process_time()
                wall_before = time.perf_counter()
                actions[name]()
                wall[name].append(time.perf_counter() - wall_before)
                cpu[name].append(time.process_time() - cpu_before)
                log(f"signals: {name} #{repeat + 1}: {wall[name][-1]:.3f}s")
    finally:
        shutil.rmtree(root, ignore_errors=True)

    median = {name: Spread.of(wall[name]).median for name in METHODS}
    return {
        "quick": quick,
        "repeats": REPEATS,
        "cores": os.cpu_count(),
        "log": {
            "seconds": seconds,
            "hz": HZ,
            "samples": samples,
            "columns": columns,
            "parquet_bytes": size,
            "jerk_spikes": len(spikes),
            "clock_skew_ppm": CLOCK_SKEW_PPM,
        },
        "video": {"fps": FPS, "packets": int(packets.size), "dropped_frames": dropped},
        "window_s": WINDOW_S,
        "found": found,
        "wall_s": wall,
        "cpu_s": cpu,
        "median_s": median,
        "samples_per_s": {name: samples / median[name] for name in METHODS},
        "per_window_us": (median["read_and_signals"] - median["read_only"])
        / max(1, found["windows"])
        * 1e6,
        "ratio_signals_vs_read": median["read_and_signals"] / median["read_only"],
    }


def markdown(result: dict[str, Any]) -> str:
    """The benchmark's report section: both timings, the ratio and what the signals found."""
    log_info, video, found = result["log"], result["video"], result["found"]
    rows = []
    for name in METHODS:
        wall = Spread.of(result["wall_s"][name])
        cpu = Spread.of(result["cpu_s"][name])
        rows.append(
            (
                _LABELS[name],
                wall.fmt(3),
                cpu.fmt(3),
                f"{result['samples_per_s'][name] / 1e6:.1f} M",
                f"{log_info['seconds'] / wall.median:,.0f}x",
            )
        )
    seconds = log_info["seconds"]
    span = f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds / 60:g} min"
    return "\n".join(
        [
            "## Clip safety signals: an hour of capture vs reading its Parquet",
            "",
            f"{span} of {log_info['hz']:g} Hz trajectory ({log_info['samples']:,} rows x "
            f"{log_info['columns']} columns with force, {log_info['parquet_bytes'] / 1e6:.1f} MB "
            f"zstd Parquet) and {video['packets']:,} video packet timestamps at "
            f"{video['fps']:g} fps ({video['dropped_frames']} frames dropped in bursts), cut "
            f"into {found['windows']} clip windows of {result['window_s']:g} s. Median "
            f"(min-max) of {result['repeats']} interleaved runs after a warm-up, "
            f"{result['cores']} cores.",
            "",
            md_table(["method", "wall s", "CPU s", "samples/s", "x realtime"], rows),
            "",
            f"(b)/(a) = **{result['ratio_signals_vs_read']:.2f}x**; signals cost "
            f"{result['per_window_us']:.0f} us per {result['window_s']:g} s window on top of "
            "the read.",
            "",
            f"Untimed check under rules {RULES_VERSION}: {found['dropped_frames']} dropped "
            f"frames found, {found['windows_with_jerk_over_reject']} windows with jerk above "
            f"the reject limit ({log_info['jerk_spikes']} spikes injected), clock offset up to "
            f"{found['max_clock_offset_ms']:.1f} ms ({log_info['clock_skew_ppm']:g} ppm "
            f"skew); statuses {found['statuses']}, rules fired {found['rules_fired']}.",
        ]
    )


def targets(result: dict[str, Any]) -> list[Any]:
    """No target is set for this benchmark: it reports figures only."""
    del result
    return []


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 min of log instead of 1 h")
    parser.add_argument("--workdir", type=Path, default=WORK_DIR)
    args = parser.parse_args()
    print(markdown(run(args.quick, args.workdir)))


if __name__ == "__main__":
    main()
