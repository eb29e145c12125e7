"""One simulated trajectory written by the real writers in every format robots use, read back
through the topic map into the same table and the same safety signals as our Parquet."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mcap.writer import Writer as McapWriter
from mcap_ros2.writer import Writer as Ros2McapWriter
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import Writer as Bag2Writer
from rosbags.typesys import Stores, get_typestore

from robotrace_assets.capture.trajectories import TrajectorySpec, synthesize_trajectory
from robotrace_assets.clips.signals import SafetySignals, compute_signals
from robotrace_assets.robotlogs import TopicMap, read_robot_log
from robotrace_assets.robotlogs.writers import (
    DEFAULT_TOPICS,
    MSGTYPES,
    default_topic_map,
    write_mcap,
    write_robot_log,
    write_ros1_bag,
    write_ros2_bag,
)
from robotrace_assets.sensorlog import write_parquet

# Drift and a knock, so the clock and jerk signals have something to find.
SPEC = TrajectorySpec(
    seconds=3.0, seed=7, clock_skew_ppm=80.0, clock_offset_s=0.012, jerk_spikes=(1.5,)
)
TOPIC_MAP = TopicMap.from_dict(default_topic_map())
# JSON and protobuf messages carry a Foxglove-style `timestamp`, not a ROS header.
STAMPED_BY_FIELD = TopicMap.from_dict(
    {
        role: {"topic": topic, "stamp": {"field": "timestamp"}}
        for role, topic in DEFAULT_TOPICS.items()
    }
)


@pytest.fixture(scope="module")
def trajectory() -> pa.Table:
    return synthesize_trajectory(SPEC)


@pytest.fixture(scope="module")
def parquet_bytes(trajectory: pa.Table, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("parquet") / "log.parquet"
    write_parquet(trajectory, path)
    return path.read_bytes()


def _signals(table: pa.Table) -> SafetySignals:
    return compute_signals(table, hz=SPEC.hz, blur_enforced=True, fps=30.0, frame_gaps_s=[])


def _assert_same_signals(got: SafetySignals, want: SafetySignals) -> None:
    for field in dataclasses.fields(SafetySignals):
        a, b = getattr(got, field.name), getattr(want, field.name)
        if isinstance(b, float):
            assert a == pytest.approx(b, rel=1e-9, abs=1e-9), field.name
        else:
            assert a == b, field.name


WRITTEN = {
    "mcap-ros2": (lambda t: write_mcap(t, "ros2"), "mcap", TOPIC_MAP),
    "mcap-ros1": (lambda t: write_mcap(t, "ros1"), "mcap", TOPIC_MAP),
    "mcap-json-protobuf": (lambda t: write_mcap(t, "json+protobuf"), "mcap", STAMPED_BY_FIELD),
    "ros1bag": (write_ros1_bag, "ros1bag", TOPIC_MAP),
    "ros2bag-sqlite3": (lambda t: write_ros2_bag(t, "sqlite3"), "ros2bag", TOPIC_MAP),
    "ros2bag-mcap": (lambda t: write_ros2_bag(t, "mcap"), "ros2bag", TOPIC_MAP),
}


@pytest.mark.parametrize("kind", list(WRITTEN))
def test_every_format_reads_back_the_parquet_table(
    kind: str, trajectory: pa.Table, parquet_bytes: bytes
) -> None:
    write, fmt, topic_map = WRITTEN[kind]
    table = read_robot_log(write(trajectory), fmt, topic_map)
    parquet = read_robot_log(parquet_bytes, "parquet", None)
    assert table.schema.names == parquet.schema.names
    for name in parquet.schema.names:
        assert table[name].type == parquet[name].type, name
        assert np.array_equal(table[name].to_numpy(), parquet[name].to_numpy()), name
    source = json.loads(table.schema.metadata[b"robotrace.source"])
    assert source["format"] == fmt
    assert source["joint_names"] == [f"joint_{j}" for j in range(SPEC.joints)]
    assert json.loads(table.schema.metadata[b"robotrace.hz"]) == pytest.approx(
        SPEC.hz, rel=1e-3
    )  # robot clock, 80 ppm fast


def test_parquet_mcap_and_ros2_bag_give_the_same_signals(
    trajectory: pa.Table, parquet_bytes: bytes
) -> None:
    from_parquet = _signals(pq.read_table(io.BytesIO(parquet_bytes)))
    from_mcap = _signals(read_robot_log(write_mcap(trajectory, "ros2"), "mcap", TOPIC_MAP))
    from_bag = _signals(read_robot_log(write_ros2_bag(trajectory), "ros2bag", TOPIC_MAP))
    _assert_same_signals(from_mcap, from_parquet)
    _assert_same_signals(from_bag, from_parquet)
    # The header stamps really feed the clock-drift signal: the injected drift is found.
    assert from_mcap.clock_skew_ppm == pytest.approx(SPEC.clock_skew_ppm, abs=0.5)
    assert from_mcap.clock_offset_ms == pytest.approx(SPEC.clock_offset_s * 1e3, abs=0.05)
    assert from_mcap.jerk_peak > 100.0  # the knock at 1.5 s


def test_paths_and_a_ros2_bag_directory(trajectory: pa.Table, tmp_path: Path) -> None:
    mcap_path = tmp_path / "robot.log"  # any name: the format comes from the envelope
    mcap_path.write_bytes(write_mcap(trajectory, "ros2"))
    bag_path = tmp_path / "recording"
    bag_path.write_bytes(write_ros1_bag(trajectory))
    assert read_robot_log(mcap_path, "mcap", TOPIC_MAP).num_rows == trajectory.num_rows
    assert read_robot_log(bag_path, "ros1bag", TOPIC_MAP).num_rows == trajectory.num_rows
    # A recorder's own directory (metadata.yaml + storage file) reads as it is.
    store = get_typestore(Stores.ROS2_HUMBLE)
    bag_dir = tmp_path / "bag2"
    with Bag2Writer(bag_dir, version=9) as writer:
        conns = {
            role: writer.add_connection(DEFAULT_TOPICS[role], t, typestore=store)
            for role, t in MSGTYPES.items()
        }
        source = read_robot_log(write_ros2_bag(trajectory), "ros2bag", TOPIC_MAP)
        assert source.num_rows == trajectory.num_rows
        db3 = tmp_path / "log.db3"
        db3.write_bytes(write_ros2_bag(trajectory))
        with AnyReader([db3]) as reader:  # copy the raw messages into the directory bag
            by_topic = {c.topic: c for c in reader.connections}
            for conn, stamp, raw in reader.messages():
                role = next(r for r, t in DEFAULT_TOPICS.items() if t == conn.topic)
                writer.write(conns[role], stamp, raw)
        assert set(by_topic) == set(DEFAULT_TOPICS.values())
    table = read_robot_log(bag_dir, "ros2bag", TOPIC_MAP)
    assert table.equals(source)


def test_without_header_stamps_log_time_is_both_clocks(trajectory: pa.Table) -> None:
    stamped_by_log = TopicMap.from_dict(
        {role: {"topic": t, "stamp": "log_time"} for role, t in DEFAULT_TOPICS.items()}
    )
    table = read_robot_log(write_mcap(trajectory, "ros2"), "mcap", stamped_by_log)
    assert np.array_equal(table["device_time_ns"].to_numpy(), trajectory["host_time_ns"].to_numpy())
    signals = _signals(table)
    assert signals.clock_offset_ms == 0.0 and signals.clock_skew_ppm == 0.0
    clocks = json.loads(table.schema.metadata[b"robotrace.clocks"])
    assert clocks["device_time_ns"] == "pose stamp: log_time"


def test_host_clock_offset_moves_only_the_host_clock(trajectory: pa.Table) -> None:
    shifted = TopicMap.from_dict({**default_topic_map(), "host_clock_offset_ns": 5_000_000})
    table = read_robot_log(write_mcap(trajectory, "ros2"), "mcap", shifted)
    host = table["host_time_ns"].to_numpy()
    assert np.array_equal(host, trajectory["host_time_ns"].to_numpy() + 5_000_000)
    assert _signals(table).clock_offset_ms == pytest.approx(
        SPEC.clock_offset_s * 1e3 - 5.0, abs=0.05
    )


def _half_rate_joints_mcap(trajectory: pa.Table) -> bytes:
    """Pose at every row, joints at every other row (their own stamps), no wrench."""
    store = get_typestore(Stores.ROS2_HUMBLE)
    out = io.BytesIO()
    writer = Ros2McapWriter(out)
    schemas = {
        role: writer.register_msgdef(t, store.generate_msgdef(t, ros_version=2)[0])
        for role, t in MSGTYPES.items()
    }
    names = [f"joint_{j}" for j in range(SPEC.joints)]
    for i, row in enumerate(trajectory.to_pylist()):
        sec, nanosec = divmod(row["device_time_ns"], 1_000_000_000)
        header = {"stamp": {"sec": sec, "nanosec": nanosec}, "frame_id": "base"}
        position = {"x": row["ee_x"], "y": row["ee_y"], "z": row["ee_z"]}
        pose = {"header": header, "pose": {"position": position, "orientation": {"w": 1.0}}}
        writer.write_message(DEFAULT_TOPICS["pose"], schemas["pose"], pose, row["host_time_ns"])
        if i % 2 == 0:
            joints = {"header": header, "name": names, "position": [row[n] for n in names]}
            topic = DEFAULT_TOPICS["joints"]
            writer.write_message(topic, schemas["joints"], joints, row["host_time_ns"])
    writer.finish()
    return out.getvalue()


def test_joints_on_their_own_clock_are_interpolated_onto_pose_rows(trajectory: pa.Table) -> None:
    topic_map = TopicMap.from_dict(default_topic_map(with_wrench=False))
    table = read_robot_log(_half_rate_joints_mcap(trajectory), "mcap", topic_map)
    assert table.num_rows == trajectory.num_rows
    assert "force_x" not in table.schema.names
    got = table["joint_0"].to_numpy()
    want = trajectory["joint_0"].to_numpy()
    assert np.array_equal(got[::2], want[::2])  # samples that exist are taken as they are
    # Between two joint samples: linear in the robot's stamps (uniform here, so the midpoint).
    assert np.allclose(got[1:-1:2], (want[:-2:2] + want[2::2]) / 2, rtol=0, atol=1e-12)


def test_schema_rosbags_cannot_parse_falls_back_to_mcap_ros2_support(
    trajectory: pa.Table,
) -> None:
    # A three-level type name is legal for mcap-ros2-support but not for rosbags' typesys.
    store = get_typestore(Stores.ROS2_HUMBLE)
    out = io.BytesIO()
    writer = Ros2McapWriter(out)
    msgdef = store.generate_msgdef(MSGTYPES["pose"], ros_version=2)[0]
    pose_schema = writer.register_msgdef("acme/arm/TcpPose", msgdef)
    joints_schema = writer.register_msgdef(
        MSGTYPES["joints"], store.generate_msgdef(MSGTYPES["joints"], ros_version=2)[0]
    )
    names = [f"joint_{j}" for j in range(SPEC.joints)]
    rows = trajectory.to_pylist()
    for row in rows:
        sec, nanosec = divmod(row["device_time_ns"], 1_000_000_000)
        header = {"stamp": {"sec": sec, "nanosec": nanosec}, "frame_id": "base"}
        position = {"x": row["ee_x"], "y": row["ee_y"], "z": row["ee_z"]}
        pose = {"header": header, "pose": {"position": position, "orientation": {"w": 1.0}}}
        joints = {"header": header, "name": names, "position": [row[n] for n in names]}
        writer.write_message(DEFAULT_TOPICS["pose"], pose_schema, pose, row["host_time_ns"])
        writer.write_message(DEFAULT_TOPICS["joints"], joints_schema, joints, row["host_time_ns"])
    writer.finish()
    topic_map = TopicMap.from_dict(default_topic_map(with_wrench=False))
    table = read_robot_log(out.getvalue(), "mcap", topic_map)
    for name in ("host_time_ns", "device_time_ns", "ee_x", "ee_z", "joint_3"):
        assert np.array_equal(table[name].to_numpy(), trajectory[name].to_numpy()), name


def test_messages_stored_out_of_log_time_order_are_put_back_in_order(
    trajectory: pa.Table,
) -> None:
    # MCAP allows any storage order; the reader takes file order and sorts by log time.
    backwards = trajectory.take(np.arange(trajectory.num_rows)[::-1])
    table = read_robot_log(write_mcap(backwards, "ros2"), "mcap", TOPIC_MAP)
    for name in trajectory.schema.names:
        assert np.array_equal(table[name].to_numpy(), trajectory[name].to_numpy()), name


def test_publish_time_and_integer_nanosecond_stamps(trajectory: pa.Table) -> None:
    by_publish = TopicMap.from_dict(
        {role: {"topic": t, "stamp": "publish_time"} for role, t in DEFAULT_TOPICS.items()}
    )
    table = read_robot_log(write_mcap(trajectory, "ros2"), "mcap", by_publish)
    assert np.array_equal(table["device_time_ns"].to_numpy(), trajectory["host_time_ns"].to_numpy())
    # JSON messages stamped with integer epoch nanoseconds (too big for float64: kept exact).
    out = io.BytesIO()
    writer = McapWriter(out)
    writer.start("", "test")
    schema = writer.register_schema("robot.Sample", "jsonschema", b"{}")
    channel = writer.register_channel("/sample", "json", schema)
    for row in trajectory.to_pylist():
        sample = {
            "stamp_ns": row["device_time_ns"],
            "tcp": {"x": row["ee_x"], "y": row["ee_y"], "z": row["ee_z"]},
            "q": [row[f"joint_{j}"] for j in range(SPEC.joints)],
        }
        writer.add_message(channel, row["host_time_ns"], json.dumps(sample).encode(), 0)
    writer.finish()
    one_message_type = TopicMap.from_dict(
        {
            "pose": {"topic": "/sample", "field": "tcp"},
            "joints": {"topic": "/sample", "field": "q"},
            "stamp": {"field": "stamp_ns"},
        }
    )
    table = read_robot_log(out.getvalue(), "mcap", one_message_type)
    for name in ("host_time_ns", "device_time_ns", "ee_y", "joint_6"):
        assert np.array_equal(table[name].to_numpy(), trajectory[name].to_numpy()), name


@pytest.mark.parametrize("fmt", ["parquet", "mcap", "ros1bag", "ros2bag"])
def test_write_robot_log_round_trips_every_envelope_format(fmt: str, trajectory: pa.Table) -> None:
    data = write_robot_log(trajectory, fmt)
    table = read_robot_log(data, fmt, None if fmt == "parquet" else TOPIC_MAP)
    for name in trajectory.schema.names:
        assert np.array_equal(table[name].to_numpy(), trajectory[name].to_numpy()), name
