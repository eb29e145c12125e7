"""`robotrace robotlogs check`: a log read through the topic map, as the clip asset reads it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robotrace_assets.capture.trajectories import TrajectorySpec, synthesize_trajectory
from robotrace_assets.cli import main as cli
from robotrace_assets.robotlogs.writers import default_topic_map, write_ros2_bag


def test_check_prints_signals_or_names_the_missing_topic(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trajectory = synthesize_trajectory(TrajectorySpec(seconds=1.0, clock_skew_ppm=200.0))
    bag = tmp_path / "run.db3"
    bag.write_bytes(write_ros2_bag(trajectory))
    topics = tmp_path / "topics.json"
    entry = default_topic_map()
    topics.write_text(
        json.dumps(
            {
                "version": 1,
                "default": {**entry, "wrench": {"topic": "/ati/ft"}},
                "devices": {"arm-7": entry},
            }
        )
    )
    args = ["robotlogs", "check", str(bag), "--format", "ros2bag", "--topic-map", str(topics)]
    assert cli([*args, "--device", "arm-7"]) == 0
    out = capsys.readouterr().out
    assert f"{trajectory.num_rows} samples" in out
    signals = json.loads(out.split("Hz: ", 1)[1])
    assert signals["clock_skew_ppm"] == pytest.approx(200.0, abs=1.0)
    assert cli(args) == 2  # the default entry wants a wrench topic this robot does not log
    assert "topic /ati/ft: not in the log" in capsys.readouterr().err
