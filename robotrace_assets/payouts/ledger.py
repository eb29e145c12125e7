"""The payout ledger: append-only events in the bucket's catalog, one object per event.

    robotics/catalog/payouts/events/<segment_id>/<UTC time>_<event_id>.parquet

Each event is written with If-None-Match: * (SeaweedFS and R2 both honour it), so no writer can
overwrite another's event; keys sort by time, and reading a segment's state is a fold of its
events in key order (states.fold), which ignores any event the transition rules forbid.
No Dagster import.
"""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from robotrace_assets import catalog, layout
from robotrace_assets.ids import check_id, ulid
from robotrace_assets.objectstore.client import error_code
from robotrace_assets.payouts.states import Change, Event, PayoutState, event_for, fold
from robotrace_assets.records.store import BucketStore

PAYOUTS = f"{layout.CATALOG}/payouts"
EVENTS = catalog.PAYOUT_EVENTS  # catalog table: one folder per segment
_RNG = random.SystemRandom()
_EXISTS = {"PreconditionFailed", "ConditionalRequestConflict", "412"}


class LedgerError(RuntimeError):
    """An event could not be written; nothing was changed."""


def events_prefix(segment_id: str) -> str:
    check_id("seg", segment_id)  # ids become key segments: never a `/` or `..` from a caller
    return f"{layout.CATALOG}/{EVENTS}/{segment_id}/"


def put_new(store: BucketStore, key: str, data: bytes, content_type: str) -> bool:
    """Create `key` only if it does not exist yet; False when it already does."""
    checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
    client = store.client()
    try:
        client.put_object(
            Bucket=store.bucket_name,
            Key=key,
            Body=data,
            ContentType=content_type,
            ChecksumSHA256=checksum,
            IfNoneMatch="*",
        )
    except client.exceptions.ClientError as error:
        if error_code(error) in _EXISTS:
            return False
        raise
    return True


def list_keys(store: BucketStore, prefix: str) -> Iterator[str]:
    paginator = store.client().get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=store.bucket_name, Prefix=prefix):
        for item in page.get("Contents", []):
            yield item["Key"]


def _row(event: Event, media_session_id: str | None) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "segment_id": event.segment_id,
        "media_session_id": media_session_id,
        "state": event.state,
        "reason": event.reason,
        "actor": event.actor,
        "at": event.at,
        "currency": event.currency,
        # Money as exact decimal text: Parquet readers never see a float.
        "approved_minutes": str(event.approved_minutes),
        "amount": str(event.amount),
        "batch_id": event.batch_id,
    }


def _event(row: dict[str, Any]) -> Event:
    return Event(
        event_id=row["event_id"],
        segment_id=row["segment_id"],
        state=row["state"],
        reason=row["reason"],
        actor=row["actor"],
        at=row["at"],
        currency=row.get("currency"),
        approved_minutes=Decimal(row.get("approved_minutes") or 0),
        amount=Decimal(row.get("amount") or 0),
        batch_id=row.get("batch_id"),
    )


def read_events(store: BucketStore, segment_id: str) -> list[Event]:
    """Every event of the segment in ledger (key) order."""
    events = []
    for key in sorted(list_keys(store, events_prefix(segment_id))):
        for row in catalog.from_parquet(store.get_bytes(key)):
            events.append(_event(row))
    return events


def read_key(store: BucketStore, key: str) -> Event:
    """The event stored at one ledger key."""
    return _event(catalog.from_parquet(store.get_bytes(key))[0])


def current_state(store: BucketStore, segment_id: str) -> PayoutState:
    return fold(segment_id, read_events(store, segment_id))


def append(
    store: BucketStore,
    current: PayoutState,
    change: Change,
    actor: str,
    media_session_id: str | None = None,
) -> tuple[Event, PayoutState]:
    """Write one event for `change` (who and why) and return it with the state it leads to.

    The state is read back from the whole ledger, so a concurrent writer's event is folded in
    and a change that lost a race is ignored by the fold rather than applied twice."""
    if not actor.strip() or not change.reason.strip():
        raise LedgerError("a payout event needs who (actor) and why (reason)")
    now = datetime.now(UTC)
    event_id = f"pev_{ulid(now, _RNG)}"
    event = event_for(current, change, event_id, actor.strip(), now.isoformat())
    key = f"{events_prefix(current.segment_id)}{now.strftime('%Y%m%dT%H%M%S.%fZ')}_{event_id}"
    data = catalog.to_parquet([_row(event, media_session_id)])
    if not put_new(store, key + ".parquet", data, layout.PARQUET_CONTENT_TYPE):
        raise LedgerError(f"event {event_id} already exists; nothing written")
    return event, current_state(store, current.segment_id)
