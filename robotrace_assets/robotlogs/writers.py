"""Write a trajectory table the way a robot's own stack would log it, with the real writers.

For the simulator, tests and benchmarks: the same samples as our Parquet schema, as MCAP
(ROS 2 CDR via mcap-ros2-support, ROS 1 via mcap-ros1-support, JSON, protobuf via the Foxglove
SDK's schemas), as a ROS 1 bag or as a ROS 2 bag (rosbags). Message definitions come from
rosbags' typestores, never typed by hand. Each row becomes a geometry_msgs/PoseStamped, a
sensor_msgs/JointState and (with force columns) a geometry_msgs/WrenchStamped, header-stamped
with ``device_time_ns`` and logged at ``host_time_ns``: the mapping ``align`` reads back.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from mcap.writer import Writer as McapWriter
from mcap_ros1._vendor.genpy import dynamic as genpy_dynamic
from mcap_ros1.writer import Writer as Ros1McapWriter
from mcap_ros2.writer import Writer as Ros2McapWriter
from rosbags.rosbag1 import Writer as Bag1Writer
from rosbags.rosbag2 import StoragePlugin
from rosbags.rosbag2 import Writer as Bag2Writer
from rosbags.typesys import Stores, get_typestore

from robotrace_assets.derivatives.labels import label_runs

__all__ = [
    "DEFAULT_TOPICS",
    "LABELS_TOPIC",
    "MSGTYPES",
    "default_topic_map",
    "register_label_channel",
    "write_labels",
    "write_mcap",
    "write_robot_log",
    "write_ros1_bag",
    "write_ros2_bag",
]

DEFAULT_TOPICS = {"pose": "/robot/ee_pose", "joints": "/joint_states", "wrench": "/robot/wrench"}
MSGTYPES = {
    "pose": "geometry_msgs/msg/PoseStamped",
    "joints": "sensor_msgs/msg/JointState",
    "wrench": "geometry_msgs/msg/WrenchStamped",
}
FRAME_ID = "base_link"
_NS_PER_S = 1_000_000_000
LABELS_TOPIC = "/robotrace/labels"
# One message per run of video frames with unchanged labels (a WebVTT cue of the label track).
LABEL_MESSAGE_SCHEMA = {
    "title": "robotrace.Labels",
    "type": "object",
    "properties": {
        "segment_id": {"type": "string"},
        "first_frame": {"type": "integer"},
        "last_frame": {"type": "integer"},
        "start_s": {"type": "number", "description": "video time of the first frame"},
        "end_s": {"type": "number", "description": "video time where the next run starts"},
        "task_step": {"type": ["string", "null"]},
        "motion_phase": {"enum": ["idle", "moving", "in_contact", "unknown"]},
        "privacy_blur_enforced": {"type": ["boolean", "null"]},
        "privacy_needs_review": {"type": "boolean"},
        "reviewer_tags": {"type": "array", "items": {"type": "string"}},
    },
}


def default_topic_map(with_wrench: bool = True) -> dict[str, Any]:
    """A topic map entry naming ``DEFAULT_TOPICS`` (for ``TopicMap.from_dict``)."""
    entry: dict[str, Any] = {
        "pose": {"topic": DEFAULT_TOPICS["pose"]},
        "joints": {"topic": DEFAULT_TOPICS["joints"]},
    }
    if with_wrench:
        entry["wrench"] = {"topic": DEFAULT_TOPICS["wrench"]}
    return entry


@dataclass(frozen=True)
class _Row:
    host_ns: int
    sec: int
    nanosec: int
    position: tuple[float, float, float]
    joints: list[float]
    force: tuple[float, float, float] | None


def _rows(table: pa.Table) -> Iterator[_Row]:
    names = table.schema.names
    host = table["host_time_ns"].to_numpy()
    device = table["device_time_ns"].to_numpy()
    ee = np.column_stack([table[c].to_numpy() for c in ("ee_x", "ee_y", "ee_z")]).tolist()
    joint_cols = [c for c in names if c.startswith("joint_")]
    joints = np.column_stack([table[c].to_numpy() for c in joint_cols]).tolist()
    force = None
    if "force_x" in names:
        force = np.column_stack([table[c].to_numpy() for c in ("force_x", "force_y", "force_z")])
    forces = force.tolist() if force is not None else None
    for i in range(table.num_rows):
        sec, nanosec = divmod(int(device[i]), _NS_PER_S)
        yield _Row(
            int(host[i]),
            sec,
            nanosec,
            tuple(ee[i]),
            joints[i],
            tuple(forces[i]) if forces is not None else None,
        )


def _joint_names(table: pa.Table) -> list[str]:
    return [c for c in table.schema.names if c.startswith("joint_")]


def _ros2_dicts(row: _Row, names: list[str]) -> dict[str, dict[str, Any]]:
    header = {"stamp": {"sec": row.sec, "nanosec": row.nanosec}, "frame_id": FRAME_ID}
    x, y, z = row.position
    out: dict[str, dict[str, Any]] = {
        "pose": {
            "header": header,
            "pose": {
                "position": {"x": x, "y": y, "z": z},
                "orientation": {"x": 0.0, "y": 0.0, "z": 0.0, "w": 1.0},
            },
        },
        "joints": {
            "header": header,
            "name": names,
            "position": row.joints,
            "velocity": [],
            "effort": [],
        },
    }
    if row.force is not None:
        fx, fy, fz = row.force
        out["wrench"] = {
            "header": header,
            "wrench": {
                "force": {"x": fx, "y": fy, "z": fz},
                "torque": {"x": 0.0, "y": 0.0, "z": 0.0},
            },
        }
    return out


def _mcap_ros2(table: pa.Table, out: io.BytesIO, topics: dict[str, str]) -> None:
    store = get_typestore(Stores.ROS2_HUMBLE)
    writer = Ros2McapWriter(out)
    schemas = {
        role: writer.register_msgdef(t, store.generate_msgdef(t, ros_version=2)[0])
        for role, t in MSGTYPES.items()
    }
    names = _joint_names(table)
    for row in _rows(table):
        for role, message in _ros2_dicts(row, names).items():
            writer.write_message(topics[role], schemas[role], message, row.host_ns, row.host_ns)
    writer.finish()


def _genpy_classes() -> dict[str, Any]:
    store = get_typestore(Stores.ROS1_NOETIC)
    classes = {}
    for role, typename in MSGTYPES.items():
        text = store.generate_msgdef(typename, ros_version=1)[0]
        ros1_name = typename.replace("/msg/", "/")
        classes[role] = genpy_dynamic.generate_dynamic(ros1_name, text)[ros1_name]
    return classes


def _mcap_ros1(table: pa.Table, out: io.BytesIO, topics: dict[str, str]) -> None:
    classes = _genpy_classes()
    writer = Ros1McapWriter(out)
    names = _joint_names(table)
    for row in _rows(table):
        for role, doc in _ros2_dicts(row, names).items():
            message = classes[role]()
            _fill_genpy(message, doc)
            writer.write_message(topics[role], message, row.host_ns, row.host_ns)
    writer.finish()


def _fill_genpy(message: Any, doc: dict[str, Any]) -> None:
    """Set genpy message fields from a ROS 2-shaped dict (ROS 1 time is secs/nsecs)."""
    for key, value in doc.items():
        if key == "stamp":
            message.stamp.secs, message.stamp.nsecs = value["sec"], value["nanosec"]
        elif isinstance(value, dict):
            _fill_genpy(getattr(message, key), value)
        else:
            setattr(message, key, value)


def _json_schema(title: str, body: dict[str, Any]) -> bytes:
    return json.dumps({"title": title, "type": "object", "properties": body}).encode()


def _mcap_json_protobuf(table: pa.Table, out: io.BytesIO, topics: dict[str, str]) -> None:
    """Pose as protobuf foxglove.PoseInFrame (Foxglove SDK schema), joints and wrench as JSON."""
    from foxglove import messages as fox  # optional: only this writer needs the Foxglove SDK

    writer = McapWriter(out)
    writer.start(profile="", library="robotrace-assets")
    pose_schema = fox.PoseInFrame.get_schema()
    pose_id = writer.register_schema(pose_schema.name, pose_schema.encoding, pose_schema.data)
    time_ = {"type": "object", "properties": {"sec": {}, "nsec": {}}}
    joints_id = writer.register_schema(
        "robotrace.JointPositions",
        "jsonschema",
        _json_schema("robotrace.JointPositions", {"timestamp": time_, "name": {}, "position": {}}),
    )
    wrench_id = writer.register_schema(
        "robotrace.Force", "jsonschema", _json_schema("robotrace.Force", {"timestamp": time_})
    )
    channels = {
        "pose": writer.register_channel(topics["pose"], "protobuf", pose_id),
        "joints": writer.register_channel(topics["joints"], "json", joints_id),
        "wrench": writer.register_channel(topics["wrench"], "json", wrench_id),
    }
    names = _joint_names(table)
    for row in _rows(table):
        stamp = {"sec": row.sec, "nsec": row.nanosec}
        x, y, z = row.position
        pose = fox.PoseInFrame(
            timestamp=fox.Timestamp(row.sec, row.nanosec),
            frame_id=FRAME_ID,
            pose=fox.Pose(position=fox.Vector3(x=x, y=y, z=z), orientation=fox.Quaternion(w=1)),
        ).encode()
        docs = {"joints": {"timestamp": stamp, "name": names, "position": row.joints}}
        if row.force is not None:
            fx, fy, fz = row.force
            docs["wrench"] = {"timestamp": stamp, "force": {"x": fx, "y": fy, "z": fz}}
        writer.add_message(channels["pose"], row.host_ns, pose, row.host_ns)
        for role, doc in docs.items():
            writer.add_message(channels[role], row.host_ns, json.dumps(doc).encode(), row.host_ns)
    writer.finish()


def register_label_channel(writer: McapWriter, topic: str = LABELS_TOPIC) -> int:
    """A JSON channel for label-track messages on ``topic``; returns its channel id."""
    schema_id = writer.register_schema(
        name="robotrace.Labels",
        encoding="jsonschema",
        data=json.dumps(LABEL_MESSAGE_SCHEMA).encode(),
    )
    return writer.register_channel(topic=topic, message_encoding="json", schema_id=schema_id)


def write_labels(
    writer: McapWriter, channel_id: int, labels: pa.Table, origin_ns: int, segment_id: str
) -> int:
    """The segment's label track as one message per label run, logged at ``origin_ns`` (the
    video-clock time of its first frame) plus the run's start; returns the message count."""
    runs = label_runs(labels)
    for run in runs:
        log_ns = origin_ns + round(run.start_s * _NS_PER_S)
        doc = {
            "segment_id": segment_id,
            "first_frame": run.first_frame,
            "last_frame": run.last_frame,
            "start_s": run.start_s,
            "end_s": run.end_s,
            **run.labels,
        }
        writer.add_message(channel_id, log_ns, json.dumps(doc).encode(), log_ns)
    return len(runs)


def write_mcap(
    table: pa.Table, encoding: str = "ros2", topics: dict[str, str] | None = None
) -> bytes:
    """The table as an MCAP file; ``encoding`` is ros2, ros1 or json+protobuf."""
    writers = {"ros2": _mcap_ros2, "ros1": _mcap_ros1, "json+protobuf": _mcap_json_protobuf}
    out = io.BytesIO()
    writers[encoding](table, out, topics or DEFAULT_TOPICS)
    return out.getvalue()


def _typed_messages(table: pa.Table, store: Any) -> Iterator[tuple[int, str, Any]]:
    """(log time, role, rosbags message object) per row and topic."""
    # ROS 1 headers carry a sequence number, ROS 2 headers do not.
    seq = any(name == "seq" for name, _ in store.fielddefs["std_msgs/msg/Header"][1])
    t = store.types
    Time, Header = t["builtin_interfaces/msg/Time"], t["std_msgs/msg/Header"]
    Point, Quat, Pose = (
        t["geometry_msgs/msg/Point"],
        t["geometry_msgs/msg/Quaternion"],
        t["geometry_msgs/msg/Pose"],
    )
    Vector3, Wrench = t["geometry_msgs/msg/Vector3"], t["geometry_msgs/msg/Wrench"]
    names = _joint_names(table)
    empty = np.zeros(0)
    for i, row in enumerate(_rows(table)):
        stamp = Time(sec=row.sec, nanosec=row.nanosec)
        extra = {"seq": i} if seq else {}
        header = Header(stamp=stamp, frame_id=FRAME_ID, **extra)
        pose = Pose(position=Point(*row.position), orientation=Quat(0.0, 0.0, 0.0, 1.0))
        yield row.host_ns, "pose", t[MSGTYPES["pose"]](header=header, pose=pose)
        yield (
            row.host_ns,
            "joints",
            t[MSGTYPES["joints"]](
                header=header,
                name=names,
                position=np.asarray(row.joints),
                velocity=empty,
                effort=empty,
            ),
        )
        if row.force is not None:
            wrench = Wrench(force=Vector3(*row.force), torque=Vector3(0.0, 0.0, 0.0))
            yield row.host_ns, "wrench", t[MSGTYPES["wrench"]](header=header, wrench=wrench)


def write_ros1_bag(table: pa.Table, topics: dict[str, str] | None = None) -> bytes:
    """The table as a ROS 1 bag (rosbags writer, Noetic message definitions)."""
    topics = topics or DEFAULT_TOPICS
    store = get_typestore(Stores.ROS1_NOETIC)
    with tempfile.TemporaryDirectory(prefix="robotrace-bag1-") as temp:
        path = Path(temp) / "log.bag"
        with Bag1Writer(path) as writer:
            conns = {
                role: writer.add_connection(topics[role], t, typestore=store)
                for role, t in MSGTYPES.items()
            }
            for log_ns, role, message in _typed_messages(table, store):
                data = store.serialize_ros1(message, MSGTYPES[role])
                writer.write(conns[role], log_ns, data)
        return path.read_bytes()


def write_ros2_bag(
    table: pa.Table, storage: str = "sqlite3", topics: dict[str, str] | None = None
) -> bytes:
    """The table as a ROS 2 bag's storage file (rosbags writer, Humble definitions):
    the ``.db3`` (``storage="sqlite3"``) or the ``.mcap`` (``storage="mcap"``)."""
    topics = topics or DEFAULT_TOPICS
    store = get_typestore(Stores.ROS2_HUMBLE)
    plugin = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}[storage]
    with tempfile.TemporaryDirectory(prefix="robotrace-bag2-") as temp:
        bag_dir = Path(temp) / "bag"
        with Bag2Writer(bag_dir, version=9, storage_plugin=plugin) as writer:
            conns = {
                role: writer.add_connection(topics[role], t, typestore=store)
                for role, t in MSGTYPES.items()
            }
            for log_ns, role, message in _typed_messages(table, store):
                writer.write(conns[role], log_ns, store.serialize_cdr(message, MSGTYPES[role]))
        (storage_file,) = [p for p in bag_dir.iterdir() if p.suffix in (".db3", ".mcap")]
        return storage_file.read_bytes()


def write_robot_log(table: pa.Table, fmt: str) -> bytes:
    """The table in any ``sensors.format`` (parquet, mcap as ROS 2 CDR, ros1bag, ros2bag as
    sqlite3), read back by ``read_robot_log`` with ``default_topic_map()``."""
    if fmt == "parquet":
        from robotrace_assets.sensorlog import write_parquet

        with tempfile.TemporaryDirectory(prefix="robotrace-log-") as temp:
            path = Path(temp) / "log.parquet"
            write_parquet(table, path)
            return path.read_bytes()
    writers = {"mcap": write_mcap, "ros1bag": write_ros1_bag, "ros2bag": write_ros2_bag}
    if fmt not in writers:
        raise ValueError(f"unknown sensor log format {fmt!r}")
    return writers[fmt](table)
