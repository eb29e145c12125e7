"""The one entry point: a segment's sensor log, in any supported format, as our trajectory table."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from robotrace_assets.robotlogs.align import build_table
from robotrace_assets.robotlogs.bags import scan_bag
from robotrace_assets.robotlogs.errors import RobotLogError
from robotrace_assets.robotlogs.extract import Collector
from robotrace_assets.robotlogs.mcaplog import Sink, scan_mcap
from robotrace_assets.robotlogs.topicmap import (
    TopicMap,
    TopicMapError,
    TopicMapFile,
    load_topic_map_file,
)

__all__ = ["FORMATS", "read_robot_log", "read_segment_log"]

# The segment envelope's sensors.format values.
FORMATS = ("parquet", "mcap", "ros1bag", "ros2bag")
_REQUIRED = ("host_time_ns", "device_time_ns", "ee_x", "ee_y", "ee_z")


def _read_parquet(data: bytes | Path) -> pa.Table:
    try:
        table = pq.read_table(data if isinstance(data, Path) else io.BytesIO(data))
    except (pa.ArrowInvalid, OSError) as error:
        raise RobotLogError(f"parquet unreadable: {error}") from None
    missing = [c for c in _REQUIRED if c not in table.schema.names]
    if missing:
        raise RobotLogError(f"parquet trajectory lacks column(s) {', '.join(missing)}")
    return table


def read_robot_log(data: bytes | Path, fmt: str, topic_map: TopicMap | None) -> pa.Table:
    """The trajectory table (``frame_index, host_time_ns, device_time_ns, ee_x..z,
    joint_0..N-1[, force_x..z]``) that ``clips.signals.compute_signals`` reads.

    ``fmt`` is the envelope's ``sensors.format``; ``topic_map`` (``topic_map_for(tenant,
    device model)``) is required for every format but ``parquet``. Raises RobotLogError, naming
    the topic when one is at fault, for anything that cannot become that table.
    """
    if fmt == "parquet":
        return _read_parquet(data)
    if fmt not in FORMATS:
        raise RobotLogError(f"unknown sensor log format {fmt!r} (one of {', '.join(FORMATS)})")
    if topic_map is None:
        raise RobotLogError(f"a {fmt} log needs a topic map (ROBOTRACE_TOPIC_MAP_FILE)")
    collectors = {role: Collector(role, spec) for role, spec in topic_map.streams.items()}
    by_topic: dict[str, list[Collector]] = {}
    for collector in collectors.values():
        by_topic.setdefault(collector.spec.topic, []).append(collector)
    sinks: dict[str, Sink] = {topic: _fan_out(group) for topic, group in by_topic.items()}
    topics = scan_mcap(data, sinks) if fmt == "mcap" else scan_bag(data, fmt, sinks)
    streams = {role: c.finish() for role, c in collectors.items()}
    return build_table(streams, topic_map, fmt, topics)


def _fan_out(group: list[Collector]) -> Sink:
    """One topic may feed two roles (e.g. a controller state message with pose and joints)."""
    if len(group) == 1:
        return group[0].add

    def sink(message: object, log_time: int, publish_time: int) -> None:
        for collector in group:
            collector.add(message, log_time, publish_time)

    return sink


def read_segment_log(
    data: bytes | Path,
    fmt: str,
    *,
    tenant_id: str,
    device_model: str | None,
    topic_maps: TopicMapFile | None = None,
) -> pa.Table:
    """``read_robot_log`` with the topic map entry for this tenant and device model, taken from
    ``topic_maps`` or else ``$ROBOTRACE_TOPIC_MAP_FILE`` (only read for a non-Parquet log).
    A missing or malformed topic map is a RobotLogError too: callers catch one error type."""
    topic_map = None
    if fmt != "parquet":
        try:
            maps = topic_maps if topic_maps is not None else load_topic_map_file()
        except TopicMapError as error:
            raise RobotLogError(str(error)) from None
        topic_map = maps.entry_for(tenant_id, device_model)
    return read_robot_log(data, fmt, topic_map)
