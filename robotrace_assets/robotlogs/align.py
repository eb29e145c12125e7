"""Streams of one log -> our trajectory table, with the clocks our Parquet schema uses.

Clock mapping (the simulator's definitions, ``sensorlog``):

* ``device_time_ns``: the robot controller clock that stamped the sample. From a robot log:
  the pose message's header stamp (or the field the topic map names); without one, the log
  time, and then the clock-drift signal has nothing to measure (offset and skew come out 0).
* ``host_time_ns``: the host/video clock. From a robot log: the recorder's log (receive) time
  of the pose message, plus the topic map's ``host_clock_offset_ns`` when the recording host's
  clock is known to differ from the camera's. Recorder and camera on one host share a clock;
  the stamp-to-receive latency then shows up as a small negative clock offset (the robot's
  stamp precedes the receive time), as it should.

One row per pose message. Joint and wrench samples are put on the pose rows by linear
interpolation on their own stamps (exact when they share the pose stamps, the usual case for
one controller publishing all three), so all streams must be stamped by the same clock.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from robotrace_assets.robotlogs.errors import RobotLogError
from robotrace_assets.robotlogs.extract import StreamSamples
from robotrace_assets.robotlogs.topicmap import TopicMap
from robotrace_assets.sensorlog import SCHEMA_VERSION

__all__ = ["build_table", "check_monotonic"]

_POSITION = ("ee_x", "ee_y", "ee_z")
_FORCE = ("force_x", "force_y", "force_z")


def check_monotonic(samples: StreamSamples) -> None:
    """Stamps must strictly increase: a log going back in time cannot be differentiated."""
    step = np.diff(samples.stamp_ns)
    bad = np.flatnonzero(step <= 0)
    if bad.size:
        i = int(bad[0]) + 1
        before, after = int(samples.stamp_ns[i - 1]), int(samples.stamp_ns[i])
        what = "go backwards" if after < before else "repeat"
        raise RobotLogError(
            f"timestamps {what} at message {i}: {after} ns after {before} ns "
            f"({samples.stamp_source}); {bad.size} such step(s)",
            topic=samples.topic,
        )


def _on_rows(rows_ns: npt.NDArray[np.int64], samples: StreamSamples) -> npt.NDArray[np.float64]:
    """``samples.values`` at the row stamps (columns interpolated independently)."""
    if samples.stamp_ns.shape == rows_ns.shape and np.array_equal(samples.stamp_ns, rows_ns):
        return samples.values
    # Relative nanoseconds: an hour is 3.6e12 ns, exact in float64 (absolute epoch ns are not).
    base = rows_ns[0]
    x = (rows_ns - base).astype(np.float64)
    xp = (samples.stamp_ns - base).astype(np.float64)
    out = np.empty((rows_ns.size, samples.values.shape[1]))
    for k in range(samples.values.shape[1]):
        out[:, k] = np.interp(x, xp, samples.values[:, k])
    return out


def _field(name: str, dtype: pa.DataType, unit: str) -> pa.Field:
    return pa.field(name, dtype, nullable=False, metadata={b"unit": unit.encode()})


def build_table(
    streams: Mapping[str, StreamSamples], topic_map: TopicMap, fmt: str, topics: list[str]
) -> pa.Table:
    """The trajectory table (columns as ``capture.trajectories.synthesize_trajectory`` writes)."""
    for samples in streams.values():
        check_monotonic(samples)
    pose = streams["pose"]
    device = pose.stamp_ns
    host = pose.log_time_ns + np.int64(topic_map.host_clock_offset_ns)
    if np.any(np.diff(host) < 0):  # readers yield log-time order; a guard for what follows
        raise RobotLogError("log times go backwards", topic=pose.topic)
    n = device.size
    columns: dict[str, tuple[pa.Field, npt.NDArray[np.generic]]] = {
        "frame_index": (_field("frame_index", pa.int64(), "1"), np.arange(n, dtype=np.int64)),
        "host_time_ns": (_field("host_time_ns", pa.int64(), "ns"), host),
        "device_time_ns": (_field("device_time_ns", pa.int64(), "ns"), device),
    }
    for k, name in enumerate(_POSITION):
        columns[name] = (_field(name, pa.float64(), "m"), pose.values[:, k])
    joints = streams["joints"]
    joint_values = _on_rows(device, joints)
    for j in range(joint_values.shape[1]):
        columns[f"joint_{j}"] = (_field(f"joint_{j}", pa.float64(), "rad"), joint_values[:, j])
    if "wrench" in streams:
        force = _on_rows(device, streams["wrench"])
        for k, name in enumerate(_FORCE):
            columns[name] = (_field(name, pa.float64(), "N"), force[:, k])
    periods = np.diff(device)
    hz = float(1e9 / np.median(periods)) if periods.size else 0.0
    metadata = {
        b"robotrace.schema_version": SCHEMA_VERSION.encode(),
        b"robotrace.units": json.dumps(
            {name: f.metadata[b"unit"].decode() for name, (f, _) in columns.items()},
            sort_keys=True,
        ).encode(),
        b"robotrace.hz": json.dumps(round(hz, 6)).encode(),
        b"robotrace.clocks": json.dumps(
            {
                "host_time_ns": "log (receive) time of the pose message + host_clock_offset_ns",
                "device_time_ns": f"pose stamp: {pose.stamp_source}",
            },
            sort_keys=True,
        ).encode(),
        b"robotrace.source": json.dumps(
            {
                "format": fmt,
                "topic_map": topic_map.describe(),
                "stamps": {role: s.stamp_source for role, s in streams.items()},
                "joint_names": list(joints.names),
                "topics_in_log": topics,
            },
            sort_keys=True,
            default=list,
        ).encode(),
    }
    fields = [f for f, _ in columns.values()]
    arrays = [pa.array(values) for _, values in columns.values()]
    return pa.table(arrays, schema=pa.schema(fields, metadata=metadata))
