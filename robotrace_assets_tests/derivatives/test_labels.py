"""The label track (derivatives/labels.py) on simulated trajectories: phases, steps, WebVTT."""

import io
import itertools

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import webvtt

from robotrace_assets.capture.trajectories import TrajectorySpec, synthesize_trajectory
from robotrace_assets.derivatives.labels import (
    IDLE,
    IN_CONTACT,
    LABEL_SCHEMA,
    MOVING,
    UNKNOWN,
    ClipTags,
    LabelError,
    LabelInputs,
    LabelThresholds,
    build_label_track,
    clip_tags_from_reviews,
    frame_times,
    read_label_track,
    webvtt_text,
)
from robotrace_assets.derivatives.profiles import CURRENT_PROFILE

LIMITS = LabelThresholds(
    CURRENT_PROFILE.label_moving_speed_m_s, CURRENT_PROFILE.label_contact_force_n
)
XYZ = ("ee_x", "ee_y", "ee_z")
STEPS = [
    {"label": "pick the cup", "start_s": 0.0, "end_s": 2.0},
    {"label": "place it <left> & --> done\nnow", "start_s": 2.0, "end_s": 4.0},
]


def _inputs(**changes) -> LabelInputs:
    base = {
        "frames": 40,
        "fps": 10.0,
        "timestamp_gaps": [],
        "task_steps": STEPS,
        "task_brief": "Tidy the table",
        "blur_enforced": True,
        "clip_tags": [],
        "trajectory": synthesize_trajectory(TrajectorySpec(seconds=4.0, hz=100.0, seed=3)),
    }
    return LabelInputs(**{**base, **changes})


def test_simulated_segment_has_every_phase_one_row_per_frame() -> None:
    track = build_label_track(_inputs(), LIMITS)
    table = track.table
    assert table.schema.remove_metadata() == LABEL_SCHEMA
    assert table.num_rows == 40
    assert table["frame_index"].to_pylist() == list(range(40))
    assert np.allclose(table["timestamp_s"].to_numpy(), np.arange(40) / 10.0)
    phases = set(table["motion_phase"].to_pylist())
    assert {IDLE, MOVING, IN_CONTACT} <= phases and UNKNOWN not in phases
    assert track.motion_reason is None and track.task_source == "task_steps"
    steps = table["task_step"].to_pylist()
    assert steps[0] == "pick the cup" and steps[-1] == STEPS[1]["label"]
    assert table["privacy_needs_review"].to_pylist() == [False] * 40
    assert sum(track.phase_counts.values()) == 40


def test_webvtt_parses_and_cues_change_with_labels(tmp_path) -> None:
    track = build_label_track(_inputs(), LIMITS)
    path = tmp_path / "labels.vtt"
    track.write_webvtt(path)
    cues = webvtt.read(str(path))
    assert len(cues) >= 4
    assert cues[0].start == "00:00:00.000" and cues[-1].end == "00:00:04.000"
    for before, after in itertools.pairwise(cues):
        assert before.end == after.start and before.text != after.text
    # A hostile step label cannot break a cue: no arrow, no extra line, entities escaped.
    hostile = [c for c in cues if "place it" in c.text]
    assert hostile and all(len(c.text.splitlines()) == 4 for c in hostile)
    assert "place it &lt;left&gt; &amp; -&gt; done now" in path.read_text()


def test_without_step_list_the_brief_labels_every_frame() -> None:
    track = build_label_track(_inputs(task_steps=[]), LIMITS)
    assert track.task_source == "task_brief"
    assert set(track.table["task_step"].to_pylist()) == {"Tidy the table"}


@pytest.mark.parametrize(
    ("trajectory", "problem", "reason"),
    [
        (None, "the segment declares no sensor log", "declares no sensor log"),
        (pa.table({"host_time_ns": [1, 2, 3]}), None, "lacks ['ee_x', 'ee_y', 'ee_z']"),
        (
            pa.table({"host_time_ns": [3, 2, 1], **{c: [0.0] * 3 for c in XYZ}}),
            None,
            "does not increase",
        ),
        (
            pa.table({"host_time_ns": [1, 2, 3], **{c: [0.0, np.nan, 1.0] for c in XYZ}}),
            None,
            "non-finite",
        ),
    ],
)
def test_missing_or_malformed_trajectory_gives_unknown_with_reason(
    trajectory, problem, reason
) -> None:
    track = build_label_track(_inputs(trajectory=trajectory, trajectory_problem=problem), LIMITS)
    assert set(track.table["motion_phase"].to_pylist()) == {UNKNOWN}
    assert reason in (track.motion_reason or "")
    assert track.table.num_rows == 40  # steps and privacy still labelled
    assert track.table["task_step"].to_pylist()[0] == "pick the cup"


def test_frames_past_the_log_are_unknown_and_counted() -> None:
    short = synthesize_trajectory(TrajectorySpec(seconds=2.0, hz=100.0, seed=3))
    track = build_label_track(_inputs(trajectory=short), LIMITS)
    phases = track.table["motion_phase"].to_pylist()
    assert UNKNOWN not in phases[:20] and set(phases[21:]) == {UNKNOWN}
    assert "frames have no trajectory sample" in (track.motion_reason or "")


def test_gaps_shift_later_frames_and_privacy_and_tags_follow() -> None:
    times = frame_times(5, 10.0, [(0.1, 0.3)])  # frame at 0.1 s, the next 0.3 s later
    assert np.allclose(times, [0.0, 0.1, 0.4, 0.5, 0.6])
    reviews = [
        {"start_s": 0.0, "end_s": 2.0, "decided_by": "rev1", "final_status": "approved"},
        {"start_s": 2.0, "end_s": 4.0, "decided_by": None, "reviewer_safety": 0.2},
    ]
    tags = clip_tags_from_reviews(reviews)
    assert tags == [ClipTags(0.0, 2.0, ("approved",)), ClipTags(2.0, 4.0, ("override:safety",))]
    track = build_label_track(_inputs(blur_enforced=None, clip_tags=tags), LIMITS)
    assert set(track.table["privacy_needs_review"].to_pylist()) == {True}
    assert track.table["privacy_blur_enforced"].to_pylist()[0] is None
    assert track.table["reviewer_tags"].to_pylist()[0] == ["approved"]
    assert track.table["reviewer_tags"].to_pylist()[-1] == ["override:safety"]


def test_no_frames_or_no_rate_is_a_clear_error() -> None:
    with pytest.raises(LabelError, match="0 frames"):
        build_label_track(_inputs(frames=0), LIMITS)
    with pytest.raises(LabelError, match="frame rate"):
        build_label_track(_inputs(fps=float("nan")), LIMITS)


def test_stored_track_round_trips_and_a_foreign_file_is_refused(tmp_path) -> None:
    track = build_label_track(_inputs(), LIMITS)
    path = tmp_path / "labels.parquet"
    track.write_parquet(path)
    assert read_label_track(path.read_bytes()).equals(track.table.select(LABEL_SCHEMA.names))
    with pytest.raises(LabelError, match="unreadable"):
        read_label_track(b"not parquet")
    buffer = io.BytesIO()
    pq.write_table(pa.table({"x": [1]}), buffer)
    with pytest.raises(LabelError, match="lacks"):
        read_label_track(buffer.getvalue())
    assert webvtt_text(track.table).startswith("WEBVTT\n")
