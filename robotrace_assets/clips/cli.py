"""``robotrace clips list (--segment SEG | --session MSESS) [--status S] [--json]``.

Prints a segment's or a media session's clips from the catalog, so a reviewer finds the clip id
to approve, reject or override with ``robotrace review``."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

COMMANDS = ("clips",)
STATUSES = ("approved", "needs_review", "rejected")


def register(commands: argparse._SubParsersAction) -> None:
    clips = commands.add_parser("clips", help="list clips with their scores and status")
    actions = clips.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="a segment's or a media session's clips")
    which = listing.add_mutually_exclusive_group(required=True)
    which.add_argument("--segment", help="segment id (seg_...)")
    which.add_argument("--session", help="media session id (msess_...)")
    listing.add_argument("--status", choices=STATUSES, help="only clips with this status")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")


def run(args: argparse.Namespace) -> int:
    from robotrace_assets.clips.listing import clips_of
    from robotrace_assets.records.errors import RecordError
    from robotrace_assets.records.sessions import load_session_envelope
    from robotrace_assets.resources import open_object_store

    store = open_object_store()
    if args.segment:
        segment_ids: tuple[str, ...] = (args.segment,)
    else:
        try:
            envelope = load_session_envelope(store, args.session, store.known_tenants)
        except RecordError as error:
            print(f"robotrace clips list: {error}", file=sys.stderr)
            return 2
        segment_ids = envelope.segment_ids
    found = 0
    for line in clips_of(store, segment_ids, args.status):
        print(json.dumps(asdict(line)) if args.json else line.text())
        found += 1
    if not found:
        print("no clips (has clips/clip been materialized for it?)", file=sys.stderr)
    return 0
