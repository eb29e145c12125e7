"""Cutting a segment into clips (pure): at task-step boundaries when the envelope has them,
else fixed windows. A clip is the reviewed training unit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from robotrace_assets.ids import derived_id

DEFAULT_WINDOW_S = 10.0
MIN_CLIP_S = 0.5  # shorter leftovers join the previous clip


@dataclass(frozen=True)
class ClipWindow:
    clip_id: str
    index: int
    start_s: float
    end_s: float
    label: str | None
    boundary: str  # "task_step" | "fixed_window"

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def cut_clips(
    segment_id: str,
    duration_s: float,
    task_steps: Sequence[dict[str, Any]] | None = None,
    window_s: float = DEFAULT_WINDOW_S,
    use_task_steps: bool = True,
) -> list[ClipWindow]:
    if duration_s <= 0:
        return []
    spans: list[tuple[float, float, str | None, str]] = []
    steps = [s for s in (task_steps or []) if s["end_s"] > s["start_s"]]
    if use_task_steps and steps:
        for step in sorted(steps, key=lambda s: s["start_s"]):
            start, end = max(0.0, step["start_s"]), min(duration_s, step["end_s"])
            if end > start:
                spans.append((start, end, step["label"], "task_step"))
    else:
        start = 0.0
        while start < duration_s:
            end = min(duration_s, start + window_s)
            if spans and end - start < MIN_CLIP_S:
                previous = spans.pop()
                spans.append((previous[0], end, None, "fixed_window"))
                break
            spans.append((start, end, None, "fixed_window"))
            start = end
    return [
        ClipWindow(derived_id("clip", segment_id, str(i)), i, start, end, label, boundary)
        for i, (start, end, label, boundary) in enumerate(spans)
    ]
