"""The label derivative of a segment (no Dagster here): one row per video frame with its task
step, motion phase, privacy flags and reviewer tags, as Parquet and as WebVTT cues.

Sources, all already at hand in the derivative pass (no second decode):

- frame count, nominal fps and timestamp gaps from the media probe of the same ffmpeg pass;
  frame ``k`` is at ``k / fps`` plus every gap before it, so a dropped stretch shifts later
  frames the way the packets did;
- task steps from the segment envelope (``task_steps``: label, start_s, end_s); without a step
  list the task brief itself (its name, else its id) is the one label of every frame;
- motion phases from the trajectory (``ee_*`` speed, ``force_*`` magnitude), sampled at the
  nearest log sample on the host/video clock: ``in_contact`` over the contact force, else
  ``moving`` over the speed threshold, else ``idle``; ``unknown`` with a recorded reason where
  the log is missing, malformed or has no sample near the frame;
- privacy flags from the media session's environment (``blur_enforced``): a frame whose blur
  was not explicitly enforced needs a person to look before release (as the clip rules say);
- reviewer tags: the reviewed state of the clip covering the frame, as known at derivation.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from robotrace_assets.clips.kinematics import kinematics
from robotrace_assets.media.webvtt import cue_text, timestamp
from robotrace_assets.sensorlog import FORCE_COLUMNS, POSITION_COLUMNS

__all__ = [
    "IDLE",
    "IN_CONTACT",
    "LABELS_METADATA_KEY",
    "LABEL_SCHEMA",
    "MOVING",
    "UNKNOWN",
    "ClipTags",
    "LabelError",
    "LabelInputs",
    "LabelRun",
    "LabelThresholds",
    "LabelTrack",
    "build_label_track",
    "clip_tags_from_reviews",
    "frame_times",
    "label_runs",
    "read_label_track",
    "webvtt_text",
]

FloatArray = npt.NDArray[np.float64]

IDLE, MOVING, IN_CONTACT, UNKNOWN = "idle", "moving", "in_contact", "unknown"
LABELS_METADATA_KEY = b"robotrace.labels"
_NS_PER_S = 1e9
_MIN_SAMPLES = 2

LABEL_SCHEMA = pa.schema(
    [
        pa.field("frame_index", pa.int64(), nullable=False),
        pa.field("timestamp_s", pa.float64(), nullable=False),
        pa.field("task_step", pa.string()),
        pa.field("motion_phase", pa.string(), nullable=False),
        # As declared by the capture (None: not declared); needs_review is the rules' reading.
        pa.field("privacy_blur_enforced", pa.bool_()),
        pa.field("privacy_needs_review", pa.bool_(), nullable=False),
        pa.field("reviewer_tags", pa.list_(pa.string()), nullable=False),
    ]
)


class LabelError(ValueError):
    """The label track cannot be made at all (no frames, no rate); the message is safe to log."""


@dataclass(frozen=True)
class LabelThresholds:
    """Where one motion phase ends and the next begins (from the derivative profile)."""

    moving_speed_m_s: float
    contact_force_n: float


@dataclass(frozen=True)
class ClipTags:
    """Reviewer tags of one clip window, seconds from the segment start, end exclusive."""

    start_s: float
    end_s: float
    tags: tuple[str, ...]


@dataclass(frozen=True)
class LabelInputs:
    frames: int
    fps: float
    timestamp_gaps: Sequence[tuple[float, float]]
    task_steps: Sequence[Mapping[str, Any]]
    task_brief: str
    blur_enforced: bool | None
    clip_tags: Sequence[ClipTags]
    trajectory: pa.Table | None
    trajectory_problem: str | None = None  # why the caller has no trajectory to give


@dataclass(frozen=True)
class LabelTrack:
    table: pa.Table
    task_source: str  # "task_steps" | "task_brief"
    motion_reason: str | None  # why some or all phases are unknown; None when all are known
    phase_counts: dict[str, int]

    def write_parquet(self, path: Path) -> None:
        pq.write_table(self.table, path)

    def write_webvtt(self, path: Path) -> None:
        path.write_text(webvtt_text(self.table), encoding="utf-8")


def frame_times(frames: int, fps: float, gaps: Iterable[tuple[float, float]]) -> FloatArray:
    """Seconds from the first frame of every frame: the nominal grid, stretched by each gap
    (``start`` is the last frame before it, ``length`` the interval to the next frame)."""
    if frames < 1:
        raise LabelError(f"the video has {frames} frames: nothing to label")
    if not (fps > 0 and math.isfinite(fps)):
        raise LabelError(f"the video has no usable frame rate ({fps})")
    period = 1.0 / fps
    times = np.arange(frames, dtype=np.float64) * period
    for start, length in sorted(gaps):
        after = int(np.searchsorted(times, start + period / 2, side="right"))
        times[after:] += max(0.0, float(length) - period)
    return times


def _task_steps(
    times: FloatArray, steps: Sequence[Mapping[str, Any]], brief: str
) -> tuple[list[str | None], str]:
    """The step covering each frame (None between steps), or the brief for every frame."""
    usable = [s for s in steps if float(s["end_s"]) > float(s["start_s"])]
    if not usable:
        return [brief] * times.size, "task_brief"
    labels: list[str | None] = [None] * times.size
    # Later steps win an overlap, like the clip cutter's sorted order.
    for step in sorted(usable, key=lambda s: float(s["start_s"])):
        inside = np.flatnonzero((times >= float(step["start_s"])) & (times < float(step["end_s"])))
        for index in inside.tolist():
            labels[index] = str(step["label"])
    return labels, "task_steps"


def _column(table: pa.Table, name: str) -> FloatArray:
    values = table[name].to_numpy(zero_copy_only=False).astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise LabelError(f"trajectory column {name} has missing or non-finite values")
    return values


def _trajectory_signals(table: pa.Table) -> tuple[FloatArray, FloatArray, FloatArray | None]:
    """(sample time s from the first sample on the host/video clock, speed m/s, |force| N)."""
    missing = [c for c in ("host_time_ns", *POSITION_COLUMNS) if c not in table.column_names]
    if missing:
        raise LabelError(f"trajectory lacks {missing}")
    if table.num_rows < _MIN_SAMPLES:
        raise LabelError(f"trajectory has {table.num_rows} samples")
    host = table["host_time_ns"].to_numpy(zero_copy_only=False).astype(np.int64)
    steps = np.diff(host)
    if np.any(steps <= 0):
        raise LabelError("trajectory host_time_ns does not increase")
    t_s = (host - host[0]) / _NS_PER_S
    hz = _NS_PER_S / float(np.median(steps))
    xyz = np.column_stack([_column(table, c) for c in POSITION_COLUMNS])
    _, speed, _ = kinematics(t_s, xyz, hz)
    force = None
    if all(c in table.column_names for c in FORCE_COLUMNS):
        wrench = np.column_stack([_column(table, c) for c in FORCE_COLUMNS])
        force = np.sqrt(np.einsum("ij,ij->i", wrench, wrench))
    return t_s, speed, force


def _motion_phases(
    times: FloatArray,
    fps: float,
    table: pa.Table | None,
    problem: str | None,
    limits: LabelThresholds,
) -> tuple[list[str], str | None]:
    if table is None or table.num_rows == 0:
        return [UNKNOWN] * times.size, problem or "no trajectory for the segment"
    try:
        t_s, speed, force = _trajectory_signals(table)
    except LabelError as error:
        return [UNKNOWN] * times.size, f"trajectory unusable: {error}"
    # Nearest sample to each frame; farther than two sample periods (or one frame) is no data.
    right = np.clip(np.searchsorted(t_s, times), 1, t_s.size - 1)
    nearest = np.where(times - t_s[right - 1] <= t_s[right] - times, right - 1, right)
    period = float(np.median(np.diff(t_s)))
    covered = np.abs(t_s[nearest] - times) <= max(2 * period, 1.0 / fps)
    phases = np.where(speed[nearest] >= limits.moving_speed_m_s, MOVING, IDLE).astype(object)
    notes = []
    if force is not None:
        phases[force[nearest] >= limits.contact_force_n] = IN_CONTACT
    else:
        notes.append("no force_* columns: contact cannot be seen")
    phases[~covered] = UNKNOWN
    if not covered.all():
        notes.append(f"{int((~covered).sum())} frames have no trajectory sample near them")
    return [str(p) for p in phases], "; ".join(notes) or None


def _tags_per_frame(times: FloatArray, clips: Sequence[ClipTags]) -> list[list[str]]:
    tags: list[list[str]] = [[] for _ in range(times.size)]
    for clip in clips:
        inside = np.flatnonzero((times >= clip.start_s) & (times < clip.end_s))
        for index in inside.tolist():
            tags[index] = sorted(set(tags[index]) | set(clip.tags))
    return tags


def build_label_track(inputs: LabelInputs, limits: LabelThresholds) -> LabelTrack:
    """One row per video frame; raises LabelError only when there are no frames to label."""
    times = frame_times(inputs.frames, inputs.fps, inputs.timestamp_gaps)
    steps, task_source = _task_steps(times, inputs.task_steps, inputs.task_brief)
    phases, reason = _motion_phases(
        times, inputs.fps, inputs.trajectory, inputs.trajectory_problem, limits
    )
    needs_review = inputs.blur_enforced is not True  # a missing flag is no evidence of blur
    columns = {
        "frame_index": pa.array(np.arange(times.size, dtype=np.int64)),
        "timestamp_s": pa.array(np.round(times, 6)),
        "task_step": pa.array(steps, pa.string()),
        "motion_phase": pa.array(phases, pa.string()),
        "privacy_blur_enforced": pa.array([inputs.blur_enforced] * times.size, pa.bool_()),
        "privacy_needs_review": pa.array([needs_review] * times.size, pa.bool_()),
        "reviewer_tags": pa.array(_tags_per_frame(times, inputs.clip_tags), pa.list_(pa.string())),
    }
    about = {
        "task_source": task_source,
        "motion_reason": reason,
        "fps": inputs.fps,
        "moving_speed_m_s": limits.moving_speed_m_s,
        "contact_force_n": limits.contact_force_n,
        "reviewer_tags": "as known at derivation",
    }
    schema = LABEL_SCHEMA.with_metadata({LABELS_METADATA_KEY: json.dumps(about).encode()})
    table = pa.table(columns, schema=schema)
    counts = {p: phases.count(p) for p in (IDLE, MOVING, IN_CONTACT, UNKNOWN) if p in phases}
    return LabelTrack(table, task_source, reason, counts)


def read_label_track(data: bytes | Path) -> pa.Table:
    """A stored label track, checked against the schema; LabelError when it is not one."""
    try:
        table = pq.read_table(pa.BufferReader(data) if isinstance(data, bytes) else data)
    except (pa.ArrowException, OSError) as error:
        raise LabelError(f"label track unreadable: {error}") from None
    missing = [f.name for f in LABEL_SCHEMA if f.name not in table.column_names]
    if missing:
        raise LabelError(f"label track lacks {missing}")
    return table.select(LABEL_SCHEMA.names)


def clip_tags_from_reviews(rows: Iterable[Mapping[str, Any]]) -> list[ClipTags]:
    """Reviewer tags per clip from clip_review rows: the reviewer's verdict (``approved`` /
    ``rejected``, or ``needs_review`` when consent or license holds an approval back) and
    ``override:<score>`` per score a reviewer overrode. Machine-only clips carry no tag."""
    clips = []
    for row in rows:
        tags = set()
        if row.get("decided_by"):
            tags.add(str(row.get("final_status")))
        for score in ("safety", "smoothness", "quality"):
            if row.get(f"reviewer_{score}") is not None:
                tags.add(f"override:{score}")
        clips.append(ClipTags(float(row["start_s"]), float(row["end_s"]), tuple(sorted(tags))))
    return clips


def _cue_text(row: Mapping[str, Any]) -> str:
    privacy = "needs review" if row["privacy_needs_review"] else "blur enforced"
    lines = [
        f"step: {row['task_step'] or '-'}",
        f"phase: {row['motion_phase']}",
        f"privacy: {privacy}",
        f"tags: {', '.join(row['reviewer_tags']) or '-'}",
    ]
    return "\n".join(cue_text(line) for line in lines)


@dataclass(frozen=True)
class LabelRun:
    """Consecutive frames whose labels do not change: one WebVTT cue, one MCAP message."""

    first_frame: int
    last_frame: int
    start_s: float
    end_s: float  # the next run's first frame, or one frame period past the last frame
    labels: dict[str, Any]  # task_step, motion_phase, privacy_*, reviewer_tags


def label_runs(table: pa.Table) -> list[LabelRun]:
    rows = table.select(LABEL_SCHEMA.names).to_pylist()
    times = [float(r["timestamp_s"]) for r in rows]
    end_of_last = times[-1] + (times[-1] - times[-2] if len(times) > 1 else 1.0)
    label = [{k: v for k, v in r.items() if k not in ("frame_index", "timestamp_s")} for r in rows]
    runs = []
    start = 0
    for index in range(1, len(rows) + 1):
        if index < len(rows) and label[index] == label[start]:
            continue
        end = times[index] if index < len(rows) else end_of_last
        runs.append(LabelRun(start, index - 1, times[start], end, label[start]))
        start = index
    return runs


def webvtt_text(table: pa.Table) -> str:
    """WebVTT with one cue per run of frames whose labels do not change."""
    cues = ["WEBVTT", ""]
    for run in label_runs(table):
        cues += [f"{timestamp(run.start_s)} --> {timestamp(run.end_s)}", _cue_text(run.labels), ""]
    return "\n".join(cues)
