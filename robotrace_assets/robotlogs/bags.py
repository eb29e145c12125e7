"""ROS 1 and ROS 2 bags, read with rosbags' AnyReader and its typestore.

A ROS 1 bag is one ``.bag`` file. A ROS 2 bag stored as one object is its storage file, a
``.db3`` (sqlite3) or a ``.mcap``, which rosbags reads without ``metadata.yaml``; a local
bag directory can be passed as a Path. Message definitions come from the bag (ROS 1 bags and
recent ROS 2 bags carry them); a ROS 2 bag without them is decoded with the latest ROS 2 LTS
standard types. The bag's message timestamp is the recorder's receive time (log time).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore

from robotrace_assets.robotlogs.errors import RobotLogError
from robotrace_assets.robotlogs.mcaplog import MCAP_MAGIC, Sink

__all__ = ["scan_bag"]

_SQLITE_MAGIC = b"SQLite format 3\x00"
_ROS1_MAGIC = b"#ROSBAG V2.0\n"


def _suffix(head: bytes, fmt: str) -> str:
    if fmt == "ros1bag":
        if not head.startswith(_ROS1_MAGIC):
            raise RobotLogError("not a ROS 1 bag (no '#ROSBAG V2.0' header)")
        return ".bag"
    if head.startswith(_SQLITE_MAGIC):
        return ".db3"
    if head.startswith(MCAP_MAGIC):
        return ".mcap"
    raise RobotLogError("not a ROS 2 bag storage file (neither sqlite3 .db3 nor MCAP)")


def scan_bag(data: bytes | Path, fmt: str, sinks: Mapping[str, Sink]) -> list[str]:
    """Feed every message of the topics in ``sinks`` to its sink, in time order; returns the
    topics the bag has. ``fmt`` is ``ros1bag`` or ``ros2bag``."""
    with tempfile.TemporaryDirectory(prefix="robotrace-bag-") as temp:
        if isinstance(data, Path) and data.is_dir():
            if fmt != "ros2bag":
                raise RobotLogError("a bag directory is a ROS 2 bag, not a ROS 1 bag")
            path = data
        else:
            if isinstance(data, Path):
                with data.open("rb") as f:
                    head = f.read(16)
            else:
                head = data[:16]
            # rosbags picks its storage plugin by file suffix: give it the right one.
            path = Path(temp) / f"log{_suffix(head, fmt)}"
            if isinstance(data, Path):
                path.symlink_to(data.resolve())
            else:
                path.write_bytes(data)
        try:
            return _scan(path, sinks)
        except RobotLogError:
            raise
        except Exception as error:  # rosbags raises many types on hostile bytes
            text = f"{type(error).__name__}: {error}"
            raise RobotLogError(f"{fmt} unreadable: {text[:200]}") from None


def _scan(path: Path, sinks: Mapping[str, Sink]) -> list[str]:
    with AnyReader([path], default_typestore=get_typestore(Stores.LATEST)) as reader:
        present = sorted({c.topic for c in reader.connections})
        missing = sorted(set(sinks) - set(present))
        if missing:
            raise RobotLogError(
                f"not in the log (topics: {', '.join(present) or 'none'})", topic=missing[0]
            )
        wanted = [c for c in reader.connections if c.topic in sinks]
        counts = dict.fromkeys(sinks, 0)
        for connection, timestamp, raw in reader.messages(connections=wanted):
            try:
                decoded = reader.deserialize(raw, connection.msgtype)
            except Exception as error:  # serde errors on bad bytes come in several types
                text = f"{type(error).__name__}: {error}"
                raise RobotLogError(
                    f"message {counts[connection.topic]} undecodable: {text[:200]}",
                    topic=connection.topic,
                ) from None
            counts[connection.topic] += 1
            sinks[connection.topic](decoded, timestamp, timestamp)
        return present
