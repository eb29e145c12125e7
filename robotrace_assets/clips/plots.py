"""Per-clip signal plots for the Dagster UI (matplotlib, no display)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

MAX_PANELS = 12  # keep the image readable and the event log small
PANEL_HEIGHT_IN = 1.6


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
    rows = max(1, len(traces))
    height = PANEL_HEIGHT_IN * rows
    # A bare Figure (no pyplot state) with fixed margins: tight_layout measured every label and
    # cost about two thirds of the plot's time, paid by every segment of a burst.
    figure = Figure(figsize=(8, height))
    axes = figure.subplots(rows, 1, squeeze=False)
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
    figure.subplots_adjust(
        left=0.09, right=0.98, top=1 - 0.3 / height, bottom=0.45 / height, hspace=0.75
    )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()
