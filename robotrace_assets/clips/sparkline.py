"""A segment's jerk as one small SVG sparkline that the Dagster UI can show inline.

The UI renders a Markdown metadata value in place only when it is shorter than 1,000
characters (longer ones open behind a "Show Markdown" link), so the picture is an SVG data URI
drawn to fit that budget: each clip's jerk (bucket maxima, so a spike is never averaged away)
coloured by its machine status, the rules' reject limit dashed, frame gaps shaded, clip
boundaries as thin lines. No Dagster import.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from robotrace_assets.clips.plots import ClipTrace

WIDTH, HEIGHT = 300, 40  # user units; shown at twice that size
COLOURS = {"approved": "green", "needs_review": "orange", "rejected": "red"}
# Characters a Markdown link destination cannot carry as they are (data URI, RFC 2397).
_ESCAPES = {"%": "%25", "<": "%3C", ">": "%3E", "#": "%23", " ": "%20", '"': "%22"}
_ESCAPES |= {"(": "%28", ")": "%29", "\n": ""}


def _bucket_max(t: np.ndarray, y: np.ndarray, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    if len(t) <= buckets:
        return t, y
    edges = np.linspace(0, len(t), buckets + 1).astype(int)
    xs = np.array([t[a:b].mean() for a, b in itertools.pairwise(edges)])
    ys = np.array([y[a:b].max() for a, b in itertools.pairwise(edges)])
    return xs, ys


def sparkline_svg(
    traces: Sequence[ClipTrace], jerk_limit: float | None, points_per_clip: int
) -> str:
    """The SVG text, coordinates rounded to whole user units."""
    ends = [float(tr.t_s[-1]) for tr in traces if len(tr.t_s)]
    span = max(ends, default=1.0) or 1.0
    peak = max([float(tr.jerk.max()) for tr in traces if len(tr.jerk)] + [jerk_limit or 0, 1e-9])
    top = peak * 1.1

    def x(value: float) -> int:
        return round(value / span * WIDTH)

    def y(value: float) -> int:
        return round(HEIGHT - value / top * (HEIGHT - 2))

    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH * 2}' height='{HEIGHT * 2}' "
        f"viewBox='0 0 {WIDTH} {HEIGHT}'><rect width='{WIDTH}' height='{HEIGHT}' fill='white'/>"
    ]
    for trace in traces:
        for start, length in trace.gaps:
            parts.append(
                f"<rect x='{x(start)}' width='{max(1, x(length))}' height='{HEIGHT}' "
                "fill='red' opacity='.2'/>"
            )
        if len(trace.t_s):
            parts.append(f"<path d='M{x(trace.t_s[0])} 0V{HEIGHT}' stroke='silver'/>")
    if jerk_limit:
        parts.append(f"<path d='M0 {y(jerk_limit)}H{WIDTH}' stroke='red' stroke-dasharray='4'/>")
    for trace in traces:
        if not len(trace.t_s):
            continue
        ts, js = _bucket_max(trace.t_s, trace.jerk, points_per_clip)
        points = ",".join(f"{x(a)},{y(b)}" for a, b in zip(ts, js, strict=True))
        colour = COLOURS.get(trace.status, "black")
        parts.append(f"<polyline fill='none' stroke='{colour}' points='{points}'/>")
    return "".join(parts) + "</svg>"


def data_uri(svg: str) -> str:
    return "data:image/svg+xml," + "".join(_ESCAPES.get(ch, ch) for ch in svg)


def sparkline_markdown(
    traces: Sequence[ClipTrace], jerk_limit: float | None, budget: int = 1000
) -> str | None:
    """The Markdown image, with as much detail as fits under `budget` characters; None when
    even the coarsest drawing does not fit (a segment with very many clips)."""
    traces = list(traces)
    if not traces:
        return None
    points = max(4, 240 // len(traces))
    while points >= 2:
        text = f"![jerk per clip]({data_uri(sparkline_svg(traces, jerk_limit, points))})"
        if len(text) < budget:
            return text
        points = points * 2 // 3 if points > 3 else points - 1
    return None
