"""``robotrace payouts status|approve|export``: what finance runs.

robotrace payouts status  SEGMENT... | --media-session MSESS
robotrace payouts approve SEGMENT... | --media-session MSESS  --by WHO --reason WHY
robotrace payouts export  [SEGMENT...] --by WHO --reason WHY [--out DIR]

Exit 0 when everything asked for was done, 1 when some segments were refused (each is named with
its reason; the others still went through), 2 when nothing could start (bad rate card, bad id).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

COMMANDS = ("payouts",)


def register(commands: argparse._SubParsersAction) -> None:
    payouts = commands.add_parser("payouts", help="segment payout states, approval, batches")
    actions = payouts.add_subparsers(dest="payouts_action", required=True)
    status = actions.add_parser("status", help="ledger and derived payout state per segment")
    approve = actions.add_parser("approve", help="approve payable segments (who and why)")
    export = actions.add_parser("export", help="write a signed payout batch of approved ones")
    for sub in (status, approve, export):
        sub.add_argument("segments", nargs="*", metavar="SEGMENT")
    for sub in (status, approve):
        sub.add_argument("--media-session", metavar="MSESS", help="every segment it lists")
    for sub in (approve, export):
        sub.add_argument("--by", required=True, help="who (kept in the ledger)")
        sub.add_argument("--reason", required=True, help="why (kept in the ledger)")
    export.add_argument("--out", type=Path, metavar="DIR", help="also copy the files here")


def _segments(store: Any, args: argparse.Namespace) -> list[str]:
    from robotrace_assets.records.sessions import load_session_envelope

    chosen = list(args.segments)
    if getattr(args, "media_session", None):
        chosen += load_session_envelope(store, args.media_session).segment_ids
    return list(dict.fromkeys(chosen))


def run(args: argparse.Namespace) -> int:
    from robotrace_assets.ids import InvalidId
    from robotrace_assets.payouts.ratecard import RateCardError
    from robotrace_assets.payouts.settings import payouts_settings
    from robotrace_assets.records.errors import RecordError
    from robotrace_assets.resources import open_object_store

    try:
        card = payouts_settings().rate_card()
        store = open_object_store()
        segments = _segments(store, args)
        if args.payouts_action != "export" and not segments:
            raise ValueError("name segments or --media-session")
    except (RateCardError, RecordError, InvalidId, ValueError) as error:
        print(f"refused: {error}", file=sys.stderr)
        return 2
    if args.payouts_action == "status":
        return _status(store, card, segments)
    if args.payouts_action == "approve":
        return _approve(store, card, segments, args.by, args.reason)
    return _export(store, card, segments or None, args)


def _status(store: Any, card: Any, segments: list[str]) -> int:
    from robotrace_assets.payouts import ledger
    from robotrace_assets.payouts.facts import segment_facts
    from robotrace_assets.payouts.states import derive

    problems = 0
    for segment_id in segments:
        try:
            state = ledger.current_state(store, segment_id)
            derived = derive(segment_facts(store, segment_id), card)
        except Exception as error:  # one bad segment never hides the others
            print(f"{segment_id}  error: {error}")
            problems += 1
            continue
        money = f"{state.amount} {state.currency}" if state.currency else "-"
        print(
            f"{segment_id}  {state.state or 'none'}  {money}  ({state.reason or '-'})"
            f"  records say: {derived.state} {derived.amount}  ({derived.reason})"
        )
    return 1 if problems else 0


def _approve(store: Any, card: Any, segments: list[str], by: str, reason: str) -> int:
    from robotrace_assets.payouts.service import approve_segment

    refused = 0
    for segment_id in segments:
        try:
            outcome = approve_segment(store, segment_id, card, by, reason)
        except Exception as error:  # refused with its reason; the rest go on
            print(f"{segment_id}  refused: {error}", file=sys.stderr)
            refused += 1
            continue
        state = outcome.state
        print(f"{segment_id}  approved  {state.amount} {state.currency}")
    return 1 if refused else 0


def _export(store: Any, card: Any, segments: list[str] | None, args: argparse.Namespace) -> int:
    from robotrace_assets.payouts.batch import export_batch
    from robotrace_assets.resources import ManifestSigningResource
    from robotrace_assets.settings import Settings

    settings = Settings.from_env()
    signer = ManifestSigningResource(
        hmac_key=settings.manifest_hmac_key,
        ed25519_key_file=settings.manifest_ed25519_key,
        key_id=settings.manifest_key_id,
    ).signer()
    try:
        result = export_batch(store, card, signer, args.by, args.reason, segments)
    except ValueError as error:
        print(f"refused: {error}", file=sys.stderr)
        return 2
    for segment_id, why in sorted(result.refused.items()):
        print(f"{segment_id}  not paid: {why}", file=sys.stderr)
    if not result.paid:
        print("no payout batch written: nothing approved to pay")
        return 1 if result.refused else 0
    header = result.header or {}
    totals = header.get("currency_totals")
    print(f"payout batch {result.batch_id}: {len(result.paid)} segments, totals {totals}")
    for key in result.keys:
        print(f"  s3://{store.bucket_name}/{key}")
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / key.rsplit("/", 1)[-1]).write_bytes(store.get_bytes(key))
    return 1 if result.refused else 0
