"""``robotrace segments reopen|status|archive``: the partition lifecycle by hand.

    robotrace segments reopen ID... [--reason TEXT] [--by NAME]
    robotrace segments status ID... [--json]
    robotrace segments archive --dry-run [--limit N] [--json]   (without --dry-run: archive now)

IDs are segment (seg_...) or media session (msess_...) ids. The Dagster instance is the one at
DAGSTER_HOME (default: <data dir>/dagster_home), the bucket the one the environment names.
Exit 0 on success, 2 when the request is refused (nothing changed).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dagster import DagsterInstance

    from robotrace_assets.resources import ObjectStoreResource

COMMANDS = ("segments",)


def register(commands: argparse._SubParsersAction) -> None:
    segments = commands.add_parser(
        "segments", help="partition lifecycle: reopen archived segments, status, archive"
    )
    actions = segments.add_subparsers(dest="action", required=True)
    reopen = actions.add_parser("reopen", help="bring archived segments or sessions back")
    reopen.add_argument("ids", nargs="+", metavar="ID")
    reopen.add_argument("--reason", default="reopened by hand", help="kept in the record")
    reopen.add_argument("--by", default=None, help="who (default: the login name)")
    status = actions.add_parser("status", help="active, or archived with when and why")
    status.add_argument("ids", nargs="+", metavar="ID")
    status.add_argument("--json", action="store_true", help="one JSON object per line")
    archive = actions.add_parser("archive", help="what the archival policy archives now")
    archive.add_argument(
        "--dry-run", action="store_true", help="only list; change nothing (recommended first)"
    )
    archive.add_argument("--limit", type=int, default=100_000, help="most partitions evaluated")
    archive.add_argument("--json", action="store_true", help="one JSON object per line")


def _instance() -> DagsterInstance:
    from dagster import DagsterInstance

    from robotrace_assets.settings import Settings

    home = os.environ.get("DAGSTER_HOME") or str(Settings.from_env().data_dir / "dagster_home")
    os.environ["DAGSTER_HOME"] = home
    Path(home).mkdir(parents=True, exist_ok=True)
    return DagsterInstance.get()


def run(args: argparse.Namespace) -> int:
    from robotrace_assets.lifecycle.archive import LifecycleError, kind_of
    from robotrace_assets.resources import open_object_store

    try:
        for entity_id in getattr(args, "ids", ()):  # malformed ids: refused before any I/O
            kind_of(entity_id)
        store = open_object_store()
        with _instance() as instance:
            if args.action == "reopen":
                return _reopen(instance, store, args)
            if args.action == "status":
                return _status(instance, store, args)
            return _archive(instance, store, args)
    except LifecycleError as error:
        print(f"refused: {error}", file=sys.stderr)
        return 2


def _reopen(instance: DagsterInstance, store: ObjectStoreResource, args: argparse.Namespace) -> int:
    from robotrace_assets.lifecycle.archive import reopen

    done = reopen(instance, store, args.ids, by=args.by or getpass.getuser(), reason=args.reason)
    for item in done:
        print(f"{item.entity_id}  {item.outcome}")
    return 0


def _status(instance: DagsterInstance, store: ObjectStoreResource, args: argparse.Namespace) -> int:
    from robotrace_assets.lifecycle.status import entity_status

    for line in entity_status(instance, store, args.ids):
        print(json.dumps(asdict(line)) if args.json else line.text())
    return 0


def _archive(
    instance: DagsterInstance, store: ObjectStoreResource, args: argparse.Namespace
) -> int:
    from robotrace_assets.lifecycle.archive import partitions_name
    from robotrace_assets.lifecycle.evaluate import record_plan
    from robotrace_assets.lifecycle.sensors import plan_now
    from robotrace_assets.lifecycle.settings import lifecycle_settings
    from robotrace_assets.lifecycle.sweep import SweepCursor

    if args.limit < 1:
        print("refused: --limit must be >= 1", file=sys.stderr)
        return 2
    settings = lifecycle_settings()
    now = datetime.now(UTC)
    plan = plan_now(instance, store, settings, SweepCursor(), now, limit=args.limit)
    for closure in plan.segments + plan.sessions:
        if args.json:
            print(json.dumps(asdict(closure)))
        elif closure.closed:
            print(f"{closure.entity_id}  archive  {closure.detail}")
    print(plan.summary() + f" (archive age {settings.archive_after_days} days)", file=sys.stderr)
    if args.dry_run:
        return 0
    record_plan(store, plan, by=f"robotrace segments archive ({getpass.getuser()})", at=now)
    # Segments before sessions, as the sensor's requests do.
    for closure in plan.segments_to_archive + plan.sessions_to_archive:
        instance.delete_dynamic_partition(partitions_name(closure.entity_id), closure.entity_id)
    return 0
