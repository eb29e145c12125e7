"""Hostile and broken robot logs: each fails with one RobotLogError naming the topic or the
reason, never with a library's own exception and never with a partial table."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcap.reader import make_reader
from mcap.writer import IndexType
from mcap.writer import Writer as McapWriter
from mcap_ros2.writer import Writer as Ros2McapWriter
from rosbags.typesys import Stores, get_typestore

from robotrace_assets.capture.trajectories import TrajectorySpec, synthesize_trajectory
from robotrace_assets.robotlogs import RobotLogError, TopicMap, read_robot_log
from robotrace_assets.robotlogs.mcaplog import MCAP_MAGIC
from robotrace_assets.robotlogs.writers import (
    DEFAULT_TOPICS,
    MSGTYPES,
    default_topic_map,
    write_mcap,
    write_ros1_bag,
    write_ros2_bag,
)

TOPIC_MAP = TopicMap.from_dict(default_topic_map())
POSE = DEFAULT_TOPICS["pose"]
FORMAT_WRITERS = {
    "mcap": lambda t: write_mcap(t, "ros2"),
    "ros1bag": write_ros1_bag,
    "ros2bag": write_ros2_bag,
}


@pytest.fixture(scope="module")
def trajectory() -> pa.Table:
    return synthesize_trajectory(TrajectorySpec(seconds=1.0, seed=3))


@pytest.fixture(scope="module")
def good_mcap(trajectory: pa.Table) -> bytes:
    return write_mcap(trajectory, "ros2")


def _with_column(table: pa.Table, name: str, values: np.ndarray) -> pa.Table:
    index = table.schema.get_field_index(name)
    return table.set_column(index, table.schema.field(index), pa.array(values))


@pytest.mark.parametrize("fmt", list(FORMAT_WRITERS))
def test_missing_topic_is_named(fmt: str, trajectory: pa.Table) -> None:
    data = FORMAT_WRITERS[fmt](trajectory)
    entry = default_topic_map()
    entry["wrench"] = {"topic": "/ft_sensor/wrench"}
    with pytest.raises(RobotLogError) as caught:
        read_robot_log(data, fmt, TopicMap.from_dict(entry))
    assert caught.value.topic == "/ft_sensor/wrench"
    assert "not in the log" in caught.value.reason and POSE in caught.value.reason


@pytest.mark.parametrize("fmt", list(FORMAT_WRITERS))
def test_header_stamps_going_backwards_are_refused(fmt: str, trajectory: pa.Table) -> None:
    device = trajectory["device_time_ns"].to_numpy().copy()
    device[[40, 41]] = device[[41, 40]]  # two samples stamped out of order
    data = FORMAT_WRITERS[fmt](_with_column(trajectory, "device_time_ns", device))
    with pytest.raises(RobotLogError) as caught:
        read_robot_log(data, fmt, TOPIC_MAP)
    assert caught.value.topic == POSE
    assert "timestamps go backwards at message 41" in caught.value.reason


def test_repeated_stamps_are_refused(trajectory: pa.Table) -> None:
    device = trajectory["device_time_ns"].to_numpy().copy()
    device[10] = device[9]
    data = write_mcap(_with_column(trajectory, "device_time_ns", device))
    with pytest.raises(RobotLogError, match="timestamps repeat at message 10"):
        read_robot_log(data, "mcap", TOPIC_MAP)


def test_truncated_mcap_is_refused_not_read_partially(good_mcap: bytes) -> None:
    for cut in (len(good_mcap) // 2, len(good_mcap) - 1, 12):
        with pytest.raises(RobotLogError) as caught:
            read_robot_log(good_mcap[:cut], "mcap", TOPIC_MAP)
        assert caught.value.topic is None and "MCAP truncated" in caught.value.reason


def _streamed(data: bytes, last_log_time: int | None = None) -> bytes:
    """The same messages as a streaming writer leaves them: no chunks, no index, no summary
    (and, when given, another log time on the last message)."""
    out = io.BytesIO()
    writer = McapWriter(
        out,
        index_types=IndexType.NONE,
        repeat_channels=False,
        repeat_schemas=False,
        use_chunking=False,
        use_statistics=False,
        use_summary_offsets=False,
    )
    writer.start("ros2", "test")
    schemas: dict[int, int] = {}
    channels: dict[int, int] = {}
    records = list(make_reader(io.BytesIO(data)).iter_messages())
    for n, (schema, channel, message) in enumerate(records, start=1):
        assert schema is not None
        if schema.id not in schemas:
            schemas[schema.id] = writer.register_schema(schema.name, schema.encoding, schema.data)
        if channel.id not in channels:
            channels[channel.id] = writer.register_channel(
                channel.topic, channel.message_encoding, schemas[schema.id]
            )
        log_time = message.log_time
        if last_log_time is not None and n == len(records):
            log_time = last_log_time
        writer.add_message(channels[channel.id], log_time, message.data, message.publish_time)
    writer.finish()
    return out.getvalue()


def test_record_time_beyond_int64_is_refused(good_mcap: bytes) -> None:
    # MCAP stores log times as uint64; int64 nanoseconds end in 2262.
    with pytest.raises(RobotLogError, match="record time out of range"):
        read_robot_log(_streamed(good_mcap, last_log_time=2**64 - 1), "mcap", TOPIC_MAP)


def test_complete_mcap_without_summary_is_scanned(good_mcap: bytes) -> None:
    streamed = _streamed(good_mcap)
    assert make_reader(io.BytesIO(streamed)).get_summary() is None
    assert read_robot_log(streamed, "mcap", TOPIC_MAP).equals(
        read_robot_log(good_mcap, "mcap", TOPIC_MAP)
    )
    entry = default_topic_map()
    entry["joints"] = {"topic": "/arm/joint_states"}
    with pytest.raises(RobotLogError) as caught:  # no index: found missing after the scan
        read_robot_log(streamed, "mcap", TopicMap.from_dict(entry))
    assert caught.value.topic == "/arm/joint_states"
    assert caught.value.reason == "topic has no messages in the log"


@pytest.mark.parametrize("fmt", ["mcap", "ros1bag", "ros2bag", "parquet"])
@pytest.mark.parametrize(
    "data",
    [b"", b"garbage" * 100, b"SQLite format 3\x00" + b"\x00" * 200, MCAP_MAGIC * 3],
    ids=["empty", "garbage", "fake-sqlite", "magic-only"],
)
def test_garbage_bytes_fail_cleanly(fmt: str, data: bytes) -> None:
    with pytest.raises(RobotLogError):
        read_robot_log(data, fmt, TOPIC_MAP)


@pytest.mark.parametrize("fmt", ["ros1bag", "ros2bag"])
def test_truncated_bags_fail_cleanly(fmt: str, trajectory: pa.Table) -> None:
    data = FORMAT_WRITERS[fmt](trajectory)
    with pytest.raises(RobotLogError, match=f"{fmt} unreadable"):
        read_robot_log(data[: len(data) // 2], fmt, TOPIC_MAP)


def _ros2_mcap(messages: list[tuple[str, str, dict]]) -> bytes:
    """A ROS 2 MCAP with hand-picked messages: (role, topic, message as a dict)."""
    store = get_typestore(Stores.ROS2_HUMBLE)
    out = io.BytesIO()
    ros2 = Ros2McapWriter(out)
    schemas = {
        role: ros2.register_msgdef(t, store.generate_msgdef(t, ros_version=2)[0])
        for role, t in MSGTYPES.items()
    }
    for i, (role, topic, body) in enumerate(messages):
        ros2.write_message(topic, schemas[role], body, log_time=1_000 + i)
    ros2.finish()
    return out.getvalue()


def _pose(i: int, x: float = 0.1) -> dict:
    return {
        "header": {"stamp": {"sec": 1, "nanosec": i * 10_000_000}, "frame_id": "b"},
        "pose": {"position": {"x": x, "y": 0.2, "z": 0.3}, "orientation": {"w": 1.0}},
    }


def _joints(i: int, positions: list[float], names: list[str] | None = None) -> dict:
    names = names if names is not None else [f"j{k}" for k in range(len(positions))]
    return {
        "header": {"stamp": {"sec": 1, "nanosec": i * 10_000_000}, "frame_id": "b"},
        "name": names,
        "position": positions,
    }


NO_WRENCH = TopicMap.from_dict(default_topic_map(with_wrench=False))


def test_joint_arrays_changing_length_are_refused() -> None:
    data = _ros2_mcap(
        [("pose", POSE, _pose(i)) for i in range(3)]
        + [
            ("joints", DEFAULT_TOPICS["joints"], _joints(0, [0.1, 0.2], names=[])),
            ("joints", DEFAULT_TOPICS["joints"], _joints(1, [0.1, 0.2, 0.3], names=[])),
        ]
    )
    with pytest.raises(RobotLogError, match="joint arrays change length") as caught:
        read_robot_log(data, "mcap", NO_WRENCH)
    assert caught.value.topic == DEFAULT_TOPICS["joints"]


def test_joints_are_reordered_by_name_and_a_missing_name_is_refused() -> None:
    messages = [("pose", POSE, _pose(i)) for i in range(2)] + [
        ("joints", DEFAULT_TOPICS["joints"], _joints(0, [1.0, 2.0], ["a", "b"])),
        ("joints", DEFAULT_TOPICS["joints"], _joints(1, [20.0, 10.0], ["b", "a"])),
    ]
    table = read_robot_log(_ros2_mcap(messages), "mcap", NO_WRENCH)
    assert table["joint_0"].to_pylist() == [1.0, 10.0]
    assert table["joint_1"].to_pylist() == [2.0, 20.0]
    entry = default_topic_map(with_wrench=False)
    entry["joints"]["names"] = ["a", "c"]
    with pytest.raises(RobotLogError, match="joint\\(s\\) c not in names"):
        read_robot_log(_ros2_mcap(messages), "mcap", TopicMap.from_dict(entry))


def test_nan_positions_are_refused(trajectory: pa.Table) -> None:
    x = trajectory["ee_x"].to_numpy().copy()
    x[5] = np.nan
    with pytest.raises(RobotLogError, match="message 5: pose value is NaN") as caught:
        read_robot_log(write_mcap(_with_column(trajectory, "ee_x", x)), "mcap", TOPIC_MAP)
    assert caught.value.topic == POSE


# One topic feeding both required roles: a file with just that topic passes the topic check.
ONE_TOPIC = TopicMap.from_dict({"pose": {"topic": POSE}, "joints": {"topic": POSE}})


def _raw_mcap(message_encoding: str, schema_encoding: str, payload: bytes) -> bytes:
    store = get_typestore(Stores.ROS2_HUMBLE)
    out = io.BytesIO()
    writer = McapWriter(out)
    writer.start("", "test")
    typename = MSGTYPES["pose"]
    msgdef = store.generate_msgdef(typename, ros_version=2)[0].encode()
    schema_id = writer.register_schema(typename, schema_encoding, msgdef)
    channel = writer.register_channel(POSE, message_encoding, schema_id)
    writer.add_message(channel, 1, payload, 1)
    writer.finish()
    return out.getvalue()


def test_undecodable_message_names_topic_and_index() -> None:
    with pytest.raises(RobotLogError) as caught:
        read_robot_log(_raw_mcap("cdr", "ros2msg", b"\x00\x01\x00\x00\x07"), "mcap", ONE_TOPIC)
    assert caught.value.topic == POSE
    assert caught.value.reason.startswith("message 0 undecodable")


def test_unknown_encoding_names_topic() -> None:
    with pytest.raises(RobotLogError) as caught:
        read_robot_log(_raw_mcap("cbor", "ros2msg", b"\xa0"), "mcap", ONE_TOPIC)
    assert caught.value.topic == POSE
    assert "no decoder for message encoding 'cbor'" in caught.value.reason


def test_malformed_schema_names_topic() -> None:
    with pytest.raises(RobotLogError) as caught:
        read_robot_log(_raw_mcap("protobuf", "protobuf", b"\xff\xff"), "mcap", ONE_TOPIC)
    assert caught.value.topic == POSE and "unusable" in caught.value.reason


def test_format_and_topic_map_are_required() -> None:
    with pytest.raises(RobotLogError, match="unknown sensor log format 'csv'"):
        read_robot_log(b"x", "csv", TOPIC_MAP)
    with pytest.raises(RobotLogError, match="needs a topic map"):
        read_robot_log(b"x", "mcap", None)
    buf = io.BytesIO()
    pq.write_table(pa.table({"ee_x": [1.0]}), buf)
    with pytest.raises(RobotLogError, match="lacks column"):
        read_robot_log(buf.getvalue(), "parquet", None)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=400))
def test_fuzzed_mcap_bodies_only_raise_robot_log_error(body: bytes) -> None:
    with pytest.raises(RobotLogError):
        read_robot_log(MCAP_MAGIC + body + MCAP_MAGIC, "mcap", TOPIC_MAP)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_flipped_bytes_in_a_real_mcap_never_escape(good_mcap: bytes, data: st.DataObject) -> None:
    # Inside the file, keeping the magic: the reader must either read it or refuse it cleanly.
    where = data.draw(st.integers(8, len(good_mcap) - 9))
    flipped = bytearray(good_mcap)
    flipped[where] ^= data.draw(st.integers(1, 255))
    try:
        table = read_robot_log(bytes(flipped), "mcap", TOPIC_MAP)
    except RobotLogError:
        return
    assert table.num_rows > 0


def test_oversized_chunks_are_refused_before_decompression(
    good_mcap: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    from robotrace_assets.robotlogs import mcaplog

    monkeypatch.setattr(mcaplog, "MAX_CHUNK_BYTES", 1000)  # the real file's chunks exceed it
    with pytest.raises(RobotLogError, match="bytes uncompressed"):
        read_robot_log(good_mcap, "mcap", TOPIC_MAP)


def test_non_numeric_json_values_are_refused() -> None:
    out = io.BytesIO()
    writer = McapWriter(out)
    writer.start("", "test")
    schema = writer.register_schema("p", "jsonschema", b"{}")
    channel = writer.register_channel(POSE, "json", schema)
    body = {"timestamp": 5, "position": {"x": "left", "y": 0.0, "z": 0.0}}
    writer.add_message(channel, 1, json.dumps(body).encode(), 1)
    writer.finish()
    one_topic = TopicMap.from_dict(
        {
            "pose": {"topic": POSE, "stamp": {"field": "timestamp"}},
            "joints": {"topic": POSE, "field": "position.y"},
        }
    )
    with pytest.raises(RobotLogError, match="not numbers") as caught:
        read_robot_log(out.getvalue(), "mcap", one_topic)
    assert caught.value.topic == POSE


@pytest.mark.parametrize("stamp", [{"sec": -5, "nanosec": 0}, {"sec": 1, "nanosec": 2_000_000_000}])
def test_stamps_out_of_range_are_refused(stamp: dict) -> None:
    pose = _pose(0)
    pose["header"]["stamp"] = stamp
    joints = ("joints", DEFAULT_TOPICS["joints"], _joints(0, [0.1]))
    data = _ros2_mcap([("pose", POSE, pose), joints])
    with pytest.raises(RobotLogError, match=r"message 0: stamp .* out of range") as caught:
        read_robot_log(data, "mcap", NO_WRENCH)
    assert caught.value.topic == POSE
