"""Per-clip signal plots for the Dagster UI (matplotlib, no display)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # no display on workers
import matplotlib.pyplot as plt
import numpy as np

MAX_PANELS = 12  # keep the image readable and the event log small


@dataclass(frozen=True)
class ClipTrace:
    label: str
    t_s: np.ndarray
    jerk: np.ndarray
    gaps: Sequence[tuple[float, float]]  # (start, length) seconds, segment time
    status: str


STATUS_COLOURS = {"approved": "tab:green", "needs_review": "tab:orange", "rejected": "tab:red"}


def clip_signal_png(traces: Sequence[ClipTrace], jerk_limit: float | None = None) -> bytes:
    """One row per clip: jerk magnitude over time, frame gaps shaded, coloured by status."""
    traces = list(traces)[:MAX_PANELS]
    figure, axes = plt.subplots(
        max(1, len(traces)), 1, figsize=(8, 1.6 * max(1, len(traces))), squeeze=False
    )
    for axis, trace in zip(axes[:, 0], traces, strict=False):
        axis.plot(trace.t_s, trace.jerk, lw=0.8, color=STATUS_COLOURS.get(trace.status, "k"))
        for start, length in trace.gaps:
            axis.axvspan(start, start + length, color="tab:red", alpha=0.25, lw=0)
        if jerk_limit:
            axis.axhline(jerk_limit, color="tab:red", ls="--", lw=0.6)
        axis.set_ylabel("jerk m/s³", fontsize=7)
        axis.set_title(f"{trace.label}: {trace.status}", fontsize=8, loc="left")
        axis.tick_params(labelsize=7)
    axes[-1, 0].set_xlabel("segment time (s); shaded: frame gaps", fontsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    plt.close(figure)
    return buffer.getvalue()
