"""The topic map file: shipped example, most-specific-entry resolution, refusals."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from robotrace_assets.robotlogs import (
    ENV_VAR,
    StreamSpec,
    TopicMapError,
    TopicMapFile,
    load_topic_map_file,
    topic_map_for,
)

EXAMPLE = resources.files("robotrace_assets.robotlogs").joinpath("topic_map.example.json")


def test_shipped_example_is_valid_and_resolves_most_specific_first() -> None:
    maps = TopicMapFile.parse(EXAMPLE.read_bytes())
    assert maps.entry_for("ten_other", "unknown-arm").pose.topic == "/robot/ee_pose"
    ur5e = maps.entry_for("ten_other", "ur5e")
    assert ur5e.pose.topic == "/tcp_pose_broadcaster/pose"
    assert ur5e.joints.names is not None and len(ur5e.joints.names) == 6
    # A tenant's default beats a device entry; the tenant's device entry beats both.
    acme = maps.entry_for("ten_acme", "ur5e")
    assert acme.pose == StreamSpec("/tf_ee", "transform.translation", "header")
    assert acme.wrench is not None and acme.wrench.stamp == "log_time"
    arm = maps.entry_for("ten_acme", "foxglove-arm")
    assert arm.pose.stamp == ("field", "timestamp") and arm.wrench is None


def test_loaded_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "topics.json"
    path.write_bytes(EXAMPLE.read_bytes())
    monkeypatch.setenv(ENV_VAR, str(path))
    assert topic_map_for("ten_acme", None).joints.topic == "/franka/joint_states"
    monkeypatch.delenv(ENV_VAR)
    with pytest.raises(TopicMapError, match=ENV_VAR):
        load_topic_map_file()
    with pytest.raises(TopicMapError, match="No such file"):
        load_topic_map_file(tmp_path / "absent.json")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{", "not valid JSON"),
        ({"version": 1}, "'default' is a required property"),
        (
            {"version": 2, "default": {"pose": {"topic": "/p"}, "joints": {"topic": "/j"}}},
            "version: 1 was expected",
        ),
        (
            {
                "version": 1,
                "default": {"pose": {"topic": "/p"}, "joints": {"topic": "/j"}},
                "devices": {"x": {"pose": {"topic": "/p"}}},
            },
            "devices/x",
        ),
        (
            {
                "version": 1,
                "default": {"pose": {"topic": "/p", "field": "a..b"}, "joints": {"topic": "/j"}},
            },
            "default/pose/field",
        ),
        (
            {
                "version": 1,
                "default": {"pose": {"topic": "/p", "stamp": "wall"}, "joints": {"topic": "/j"}},
            },
            "default/pose/stamp",
        ),
    ],
)
def test_malformed_maps_are_refused_with_the_place(document: object, message: str) -> None:
    raw = document if isinstance(document, str) else json.dumps(document)
    with pytest.raises(TopicMapError, match=message):
        TopicMapFile.parse(raw)


def test_oversized_map_is_refused() -> None:
    with pytest.raises(TopicMapError, match="bytes"):
        TopicMapFile.parse(b" " * (1024 * 1024 + 1))


def test_read_segment_log_picks_the_entry_and_reports_map_problems_as_log_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from robotrace_assets.capture.trajectories import TrajectorySpec, synthesize_trajectory
    from robotrace_assets.robotlogs import RobotLogError, read_segment_log
    from robotrace_assets.robotlogs.writers import default_topic_map, write_mcap

    trajectory = synthesize_trajectory(TrajectorySpec(seconds=0.5))
    data = write_mcap(trajectory, "ros2")
    path = tmp_path / "topics.json"
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "default": {"pose": {"topic": "/nope"}, "joints": {"topic": "/nope"}},
                "tenants": {"ten_a": {"devices": {"arm-1": default_topic_map()}}},
            }
        )
    )
    monkeypatch.setenv(ENV_VAR, str(path))
    table = read_segment_log(data, "mcap", tenant_id="ten_a", device_model="arm-1")
    assert table.num_rows == trajectory.num_rows
    with pytest.raises(RobotLogError, match="/nope"):  # another tenant: the default entry
        read_segment_log(data, "mcap", tenant_id="ten_b", device_model="arm-1")
    monkeypatch.delenv(ENV_VAR)
    with pytest.raises(RobotLogError, match=ENV_VAR):
        read_segment_log(data, "mcap", tenant_id="ten_a", device_model="arm-1")
    # Parquet never needs the map: with none configured, the error is about the bytes.
    with pytest.raises(RobotLogError, match="parquet unreadable"):
        read_segment_log(b"PAR1", "parquet", tenant_id="ten_a", device_model=None)
