"""``robotrace robotlogs check FILE --format mcap [--tenant T] [--device MODEL]``.

Reads a robot log the way the clip asset will (same topic map entry, same reader) and prints
what came out: the topics, the clocks, the rate and the safety signals of the whole log; or the
RobotLogError naming the topic at fault. For writing and checking a topic map before uploads.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

COMMANDS = ("robotlogs",)


def register(commands: argparse._SubParsersAction) -> None:
    robotlogs = commands.add_parser("robotlogs", help="robot logs (MCAP, ROS bags) and topic maps")
    actions = robotlogs.add_subparsers(dest="action", required=True)
    check = actions.add_parser("check", help="read a log through the topic map, print signals")
    check.add_argument("path", type=Path)
    check.add_argument("--format", required=True, choices=["parquet", "mcap", "ros1bag", "ros2bag"])
    check.add_argument("--tenant", default="", help="tenant id (picks the topic map entry)")
    check.add_argument("--device", default="", help="device model (picks the topic map entry)")
    check.add_argument("--topic-map", type=Path, help="default: $ROBOTRACE_TOPIC_MAP_FILE")
    check.add_argument("--hz", type=float, help="nominal rate (default: measured from stamps)")


def run(args: argparse.Namespace) -> int:
    from robotrace_assets.clips.signals import compute_signals
    from robotrace_assets.robotlogs import (
        RobotLogError,
        TopicMapError,
        load_topic_map_file,
        read_segment_log,
    )

    try:
        maps = load_topic_map_file(args.topic_map) if args.topic_map else None
        table = read_segment_log(
            args.path,
            args.format,
            tenant_id=args.tenant,
            device_model=args.device,
            topic_maps=maps,
        )
    except (RobotLogError, TopicMapError, OSError) as error:
        print(f"refused: {error}", file=sys.stderr)
        return 2
    metadata = table.schema.metadata or {}
    measured = json.loads(metadata.get(b"robotrace.hz", b"0"))
    hz = args.hz or measured or 100.0
    print(f"{args.path}: {table.num_rows} samples, columns {', '.join(table.schema.names)}")
    for key in (b"robotrace.source", b"robotrace.clocks"):
        if key in metadata:
            print(f"{key.decode()}: {metadata[key].decode()}")
    if table.num_rows < 2:
        return 0
    signals = compute_signals(table, hz=hz, blur_enforced=None)
    print(f"signals at {hz:g} Hz: {json.dumps(signals.as_dict(), sort_keys=True)}")
    return 0
