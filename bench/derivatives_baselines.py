"""The derivatives benchmark's baselines, built from the production pieces of the single pass.

- ``make_separately``: one ffmpeg run (and one full decode) per derivative, as before the merge;
- ``make_proxy_only``: the proxy alone (one decode, no stills, no probe), the cost floor.

They live here, not in the package: production only ever makes derivatives in one pass.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from robotrace_assets.derivatives.graph import (
    PACKETS_NAME,
    PROXY_NAME,
    SHEET_NAME,
    packets_output,
    proxy_output,
    select_stills,
    sheet_output,
    thumbs_output,
)
from robotrace_assets.derivatives.media import (
    DerivativeSet,
    check_hint,
    finish_stills,
    measure_packets,
    new_workdir,
    open_source,
    preflight,
    publish_outputs,
    require_output,
    run_graph,
)
from robotrace_assets.derivatives.profiles import DerivativeProfile

__all__ = ["make_proxy_only", "make_separately"]


def make_proxy_only(source: str, out_dir: Path, profile: DerivativeProfile) -> Path:
    """The proxy alone (one decode, no stills, no probe): the benchmark's cost floor."""
    out_dir = Path(out_dir)
    work = new_workdir(out_dir)
    try:
        src = open_source(source, profile, decode=True)
        run_graph([proxy_output(src["v:0"], work / PROXY_NAME, profile)], source, "making proxy")
        require_output(work / PROXY_NAME, "proxy")
        proxy = out_dir / PROXY_NAME
        os.replace(work / PROXY_NAME, proxy)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return proxy


def make_separately(
    source: str,
    out_dir: Path,
    profile: DerivativeProfile,
    duration_hint_s: float | None = None,
) -> DerivativeSet:
    """Baseline: one ffmpeg run (and one full decode) per derivative, as before the merge.

    The packet log rides along with the proxy run as a stream copy, so the probe matches
    ``make_derivatives`` without adding a fourth read.
    """
    check_hint(duration_hint_s)
    out_dir = Path(out_dir)
    started = time.perf_counter()
    work = new_workdir(out_dir)
    try:
        duration_s = duration_hint_s or preflight(source, work, profile).duration_s
        src = open_source(source, profile, decode=True)
        outputs = [
            proxy_output(src["v:0"], work / PROXY_NAME, profile),
            packets_output(src, work / PACKETS_NAME),
        ]
        probe = measure_packets(work / PACKETS_NAME, run_graph(outputs, source, "making proxy"))
        require_output(work / PROXY_NAME, "proxy")
        thumbs_src = select_stills(
            open_source(source, profile, decode=True)["v:0"], duration_s, profile
        )
        run_graph([thumbs_output(thumbs_src, work, profile)], source, "making thumbnails")
        sheet_src = select_stills(
            open_source(source, profile, decode=True)["v:0"], duration_s, profile
        )
        run_graph([sheet_output(sheet_src, work / SHEET_NAME, profile)], source, "making sheet")
        finish_stills(source, work, duration_s, probe, profile)
        proxy, thumbs, sheet = publish_outputs(work, out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return DerivativeSet(proxy, thumbs, sheet, probe, profile, time.perf_counter() - started)
