"""Robot logs as robots write them (MCAP, ROS 1 bags, ROS 2 bags) read into our trajectory
table, through a per-tenant / per-device topic map. Plain Python: no Dagster here."""

from robotrace_assets.robotlogs.errors import RobotLogError
from robotrace_assets.robotlogs.reader import FORMATS, read_robot_log, read_segment_log
from robotrace_assets.robotlogs.topicmap import (
    ENV_VAR,
    StreamSpec,
    TopicMap,
    TopicMapError,
    TopicMapFile,
    load_topic_map_file,
    topic_map_for,
)

__all__ = [
    "ENV_VAR",
    "FORMATS",
    "RobotLogError",
    "StreamSpec",
    "TopicMap",
    "TopicMapError",
    "TopicMapFile",
    "load_topic_map_file",
    "read_robot_log",
    "read_segment_log",
    "topic_map_for",
]
