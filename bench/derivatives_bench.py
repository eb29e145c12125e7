"""Benchmark: review derivatives from one ffmpeg decode versus one decode per derivative.

For one synthetic capture segment (1920x1080 HEVC 30 fps, 20 s; --quick: 640x360, 5 s):
  (a) make_derivatives: proxy + thumbnails + contact sheet + packet probe, ONE ffmpeg process;
  (b) make_separately: the same outputs from three ffmpeg runs, each decoding the source;
  (c) make_proxy_only: the proxy alone, the floor that (a) is compared against.
Repeats are interleaved (a, b, c, a, b, c, ...) so a noisy neighbour slows all three rather
than one, and an untimed warm-up run loads ffmpeg and the source into the page cache first.
Targets are ratios measured in the same run: (b)/(a) >= 1.6 and (a)/(c) <= 1.15.

    python -m bench.derivatives_bench [--quick]     prints the markdown section
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import WORK_DIR, Spread, Target, log, md_table, targets_table
from bench.derivatives_baselines import make_proxy_only, make_separately
from robotrace_assets.capture.media import VideoSpec, encode_synthetic_video
from robotrace_assets.derivatives.media import make_derivatives
from robotrace_assets.derivatives.profiles import DerivativeProfile

# A 1080p30 HEVC camera stream at a typical recording bitrate; quick mode keeps it small.
FULL_SPEC = VideoSpec(seconds=20.0, fps=30, width=1920, height=1080, codec="hevc", seed=11)
QUICK_SPEC = VideoSpec(seconds=5.0, fps=30, width=640, height=360, codec="hevc", seed=11)
FULL_BITRATE_KBPS = 8_000
QUICK_BITRATE_KBPS = 1_500
FULL_REPEATS = 3
QUICK_REPEATS = 2

TARGET_SEPARATE_VS_ONE_PASS = 1.6  # (b) time / (a) time, at least
TARGET_ONE_PASS_VS_PROXY = 1.15  # (a) time / (c) time, at most

METHODS = ("one_pass", "separate", "proxy_only")
_LABELS = {
    "one_pass": "make_derivatives (one process, one decode)",
    "separate": "make_separately (three processes, three decodes)",
    "proxy_only": "make_proxy_only (proxy alone)",
}


def _children_cpu_s() -> float:
    """User + system CPU of every waited-for child so far (the ffmpeg processes)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(action: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, child CPU seconds) of one call."""
    cpu_before = _children_cpu_s()
    started = time.perf_counter()
    action()
    return time.perf_counter() - started, _children_cpu_s() - cpu_before


def _sizes(out: Path) -> dict[str, int]:
    thumbs = sorted(out.glob("thumb_*.jpg"))
    return {
        "proxy_bytes": (out / "proxy.mp4").stat().st_size,
        "thumbnails": len(thumbs),
        "thumbnail_bytes": sum(t.stat().st_size for t in thumbs),
        "sheet_bytes": (out / "contact_sheet.jpg").stat().st_size,
    }


def run(quick: bool, workdir: Path | None = None) -> dict[str, Any]:
    """Measure (a), (b) and (c) on a fresh synthetic segment; returns plain JSON-able figures.

    Everything is written under a temporary directory inside ``workdir`` (default
    bench/.work/) and removed afterwards, whatever happens.
    """
    spec = dataclasses.replace(
        QUICK_SPEC if quick else FULL_SPEC,
        bitrate_kbps=QUICK_BITRATE_KBPS if quick else FULL_BITRATE_KBPS,
    )
    repeats = QUICK_REPEATS if quick else FULL_REPEATS
    profile = DerivativeProfile()
    base = Path(workdir) if workdir is not None else WORK_DIR
    base.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="derivatives-", dir=base))
    try:
        started = time.perf_counter()
        info = encode_synthetic_video(root / "segment.mp4", spec)
        log(
            f"derivatives: {spec.width}x{spec.height} {spec.codec} {spec.seconds:.0f}s segment "
            f"({info.size_bytes / 1e6:.1f} MB) encoded in {time.perf_counter() - started:.1f}s"
        )
        source = str(info.path)
        hint = info.duration_s

        def one_pass(out: Path) -> object:
            return make_derivatives(source, out, profile, duration_hint_s=hint)

        def separate(out: Path) -> object:
            return make_separately(source, out, profile, duration_hint_s=hint)

        def proxy_only(out: Path) -> object:
            return make_proxy_only(source, out, profile)

        actions = {"one_pass": one_pass, "separate": separate, "proxy_only": proxy_only}
        # Warm-up: ffmpeg binary and the source file into the page cache; not timed.
        proxy_only(root / "warmup")
        shutil.rmtree(root / "warmup")

        wall: dict[str, list[float]] = {name: [] for name in METHODS}
        cpu: dict[str, list[float]] = {name: [] for name in METHODS}
        outputs: dict[str, Any] = {}
        for repeat in range(repeats):
            # Rotate the order as well, so no method always runs right after another.
            order = METHODS[repeat % 3 :] + METHODS[: repeat % 3]
            for name in order:
                out = root / f"{name}-{repeat}"
                seconds, cpu_s = _timed(lambda out=out, name=name: actions[name](out))
                wall[name].append(seconds)
                cpu[name].append(cpu_s)
                log(f"derivatives: {name} #{repeat + 1}: {seconds:.2f}s wall, {cpu_s:.2f}s CPU")
                if name == "one_pass" and not outputs:
                    outputs = _sizes(out)
                shutil.rmtree(out)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    median = {name: Spread.of(wall[name]).median for name in METHODS}
    separate_ratio = median["separate"] / median["one_pass"]
    overhead_ratio = median["one_pass"] / median["proxy_only"]
    return {
        "quick": quick,
        "repeats": repeats,
        "cores": os.cpu_count(),
        "segment": {
            "width": spec.width,
            "height": spec.height,
            "fps": spec.fps,
            "seconds": spec.seconds,
            "codec": spec.codec,
            "bitrate_kbps": spec.bitrate_kbps,
            "frames": info.frames,
            "size_bytes": info.size_bytes,
        },
        "profile": {**dataclasses.asdict(profile), "fingerprint": profile.fingerprint()},
        "wall_s": wall,
        "cpu_s": cpu,
        "median_s": median,
        "outputs": outputs,
        "ratios": {
            "separate_vs_one_pass": separate_ratio,
            "one_pass_vs_proxy_only": overhead_ratio,
        },
    }


def _scope(result: dict[str, Any]) -> str:
    seg = result["segment"]
    return f"{seg['width']}x{seg['height']} {seg['codec']} {seg['fps']} fps, {seg['seconds']:.0f} s"


def targets(result: dict[str, Any]) -> list[Target]:
    """The two targets (separate runs >= 1.6x one pass; one pass <= 1.15x proxy only), judged on
    this run's medians."""
    separate = result["ratios"]["separate_vs_one_pass"]
    overhead = result["ratios"]["one_pass_vs_proxy_only"]
    scope = _scope(result)
    return [
        Target(
            benchmark="derivatives",
            scope=scope,
            measure="three separate runs / one pass (wall time)",
            target=f">= {TARGET_SEPARATE_VS_ONE_PASS:.2f}x",
            measured=f"{separate:.2f}x",
            met=separate >= TARGET_SEPARATE_VS_ONE_PASS,
            shortfall=f"{TARGET_SEPARATE_VS_ONE_PASS - separate:.2f}x short",
        ),
        Target(
            benchmark="derivatives",
            scope=scope,
            measure="one pass / proxy only (wall time)",
            target=f"<= {TARGET_ONE_PASS_VS_PROXY:.2f}x",
            measured=f"{overhead:.2f}x",
            met=overhead <= TARGET_ONE_PASS_VS_PROXY,
            shortfall=f"{overhead - TARGET_ONE_PASS_VS_PROXY:.2f}x over",
        ),
    ]


def markdown(result: dict[str, Any]) -> str:
    """The benchmark's report section: timings per method, then the targets, met or missed."""
    seg = result["segment"]
    rows = []
    for name in METHODS:
        wall = Spread.of(result["wall_s"][name])
        cpu = Spread.of(result["cpu_s"][name])
        realtime = seg["seconds"] / wall.median
        rows.append((_LABELS[name], wall.fmt(), cpu.fmt(), f"{realtime:.1f}x"))
    outputs = result["outputs"]
    prof = result["profile"]
    lines = [
        "## Review derivatives: one decode vs one decode per derivative",
        "",
        f"Segment: {_scope(result)}, {seg['bitrate_kbps']} kbit/s "
        f"({seg['size_bytes'] / 1e6:.1f} MB, {seg['frames']} frames), local file. "
        f"Profile `{prof['version']}` ({prof['fingerprint']}): "
        f"{prof['proxy_height']}p H.264 proxy (x264 {prof['proxy_preset']}, "
        f"crf {prof['proxy_crf']}, {prof['threads']} threads), "
        f"{outputs.get('thumbnails', '?')} thumbnails, one contact sheet. "
        f"Median (min-max) of {result['repeats']} interleaved runs on {result['cores']} cores.",
        "",
        md_table(
            ["method", "wall s", "ffmpeg CPU s", "x realtime"],
            rows,
        ),
        "",
        f"Outputs of one pass: proxy {outputs.get('proxy_bytes', 0) / 1e6:.2f} MB, "
        f"thumbnails {outputs.get('thumbnail_bytes', 0) / 1e3:.0f} kB in all, "
        f"contact sheet {outputs.get('sheet_bytes', 0) / 1e3:.0f} kB.",
        "",
        targets_table(targets(result)),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="640x360, 5 s, 2 repeats")
    parser.add_argument("--workdir", type=Path, default=WORK_DIR)
    args = parser.parse_args()
    print(markdown(run(args.quick, args.workdir)))


if __name__ == "__main__":
    main()
