"""``robotrace export mcap MEDIA_SESSION_ID --out FILE [--with-video]``.

Writes the session's telemetry MCAP (``export.write_session_mcap``) atomically to FILE and,
with ``--with-video``, each segment's proxy video beside it as ``<segment_id>.proxy.mp4``
(the names the MCAP's segment metadata records give), so a team opens both together.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, TypeVar

_T = TypeVar("_T")

COMMANDS = ("export",)


def register(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser("export", help="export a session into telemetry formats")
    kinds = export.add_subparsers(dest="kind", required=True)
    mcap = kinds.add_parser(
        "mcap",
        help="trajectory, clips, signals, scores and review decisions as Foxglove-ready MCAP",
    )
    mcap.add_argument("media_session_id")
    mcap.add_argument("--out", required=True, type=Path, help="the .mcap file to write")
    mcap.add_argument(
        "--with-video", action="store_true", help="also write each proxy video beside it"
    )
    mcap.add_argument("--topic-map", type=Path, help="default: $ROBOTRACE_TOPIC_MAP_FILE")
    mcap.add_argument(
        "--clip",
        action="append",
        metavar="CLIP_ID",
        help="only these clips (repeatable): their records and the trajectory in their windows",
    )


def _atomic_write(path: Path, write: Callable[[IO[bytes]], _T]) -> _T:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    try:
        with open(temp, "wb") as handle:
            result = write(handle)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return result


def run(args: argparse.Namespace) -> int:
    from robotrace_assets.objectstore.client import ObjectNotFound
    from robotrace_assets.resources import open_object_store
    from robotrace_assets.robotlogs import TopicMapError, load_topic_map_file
    from robotrace_assets.telemetry.collect import TelemetryError, collect_session, select_clips
    from robotrace_assets.telemetry.export import proxy_filename, write_session_mcap

    store = open_object_store()
    try:
        maps = load_topic_map_file(args.topic_map) if args.topic_map else None
        session = collect_session(store, args.media_session_id, maps)
    except (TelemetryError, TopicMapError) as error:
        print(f"refused: {error}", file=sys.stderr)
        return 2
    if args.clip:
        known = {c["clip_id"] for s in session.segments for c in s.clips}
        unknown = sorted(set(args.clip) - known)
        if unknown:
            print(f"refused: not clips of this session: {', '.join(unknown)}", file=sys.stderr)
            return 2
        session = select_clips(session, args.clip)
    summary = _atomic_write(args.out, lambda handle: write_session_mcap(session, handle))
    total = sum(summary.messages.values())
    print(f"wrote {args.out}: {total} messages, {summary.segments} segment(s)")
    for topic, count in sorted(summary.messages.items()):
        print(f"  {topic}: {count}")
    for segment_id, why in summary.trajectory_errors.items():
        print(f"  {segment_id}: no trajectory: {why}", file=sys.stderr)
    if args.with_video:
        expected = {s.segment_id: (s.proxy or {}).get("sha256") for s in session.segments}
        for segment_id, key in summary.proxies.items():
            target = args.out.parent / proxy_filename(segment_id)
            try:
                data = store.get_bytes(key)
            except ObjectNotFound as error:
                print(f"  {segment_id}: proxy missing: {error}", file=sys.stderr)
                continue
            if expected[segment_id] and hashlib.sha256(data).hexdigest() != expected[segment_id]:
                print(
                    f"  {segment_id}: proxy differs from its record; not written", file=sys.stderr
                )
                continue
            _atomic_write(target, lambda handle, data=data: handle.write(data))
            print(f"  {target}")
    return 0
