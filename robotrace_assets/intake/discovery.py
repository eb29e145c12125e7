"""Discovery of new envelopes and completed uploads, at a cost that grows with what is new.

Clients drop an inbox entry (robotics/inbox/<day>/<time>Z_<kind>_<id>.json) after each envelope.
Inbox keys sort by the time they were written, so each tick lists with S3 `StartAfter` from
the cursor instead of paging through the bucket (dagster-aws get_objects pages the whole prefix
on every tick). The listing restarts a short lookback before the cursor so an entry written by a
client whose clock lags a little is still found; keys already handled are remembered for that
window only. R2 event notifications carry the same (kind, id) and can feed `handle` directly;
the listing then stays as the backstop.

A segment whose raw upload is not complete stays pending in the cursor and is checked again on
later ticks with one HEAD each, until it completes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from robotrace_assets import layout
from robotrace_assets.envelopes import EnvelopeError, SegmentEnvelope
from robotrace_assets.objectstore.client import S3Client, error_code

LOOKBACK = timedelta(minutes=10)
MAX_ENTRIES_PER_TICK = 2000  # the rest waits for the next tick: a tick must end well within 60 s


@dataclass
class IntakeCursor:
    after: str | None = None  # newest inbox key handled
    recent: list[str] = field(default_factory=list)  # handled keys inside the lookback window
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)  # segment id -> waiting info
    ticked_at: str | None = None  # wall time of the tick that wrote this cursor

    def to_json(self) -> str:
        return json.dumps(
            {
                "after": self.after,
                "recent": self.recent,
                "pending": self.pending,
                "ticked_at": self.ticked_at,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str | None) -> IntakeCursor:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(
            data.get("after"),
            list(data.get("recent", [])),
            dict(data.get("pending", {})),
            data.get("ticked_at"),
        )


@dataclass(frozen=True)
class SessionFound:
    media_session_id: str
    envelope_etag: str


@dataclass(frozen=True)
class SegmentReady:
    segment_id: str
    media_session_id: str | None
    version: str  # raw object ETag, or "envelope:<etag>" when the envelope itself is unusable


@dataclass
class Discovery:
    sessions: list[SessionFound] = field(default_factory=list)
    segments: list[SegmentReady] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # keys under the inbox that are not entries
    list_requests: int = 0
    keys_listed: int = 0
    cursor: IntakeCursor = field(default_factory=IntakeCursor)


def _head(client: S3Client, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        return client.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error_code(error) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


def lookback_floor(ticked_at: datetime, prefix: str = layout.INBOX) -> str:
    return layout.inbox_floor(ticked_at - LOOKBACK, prefix)


def start_after(cursor: IntakeCursor, prefix: str = layout.INBOX) -> str | None:
    """Where a tick's listing starts: just after the cursor, or LOOKBACK before the previous
    tick if that is earlier. An entry written since that tick by a client whose clock lags by
    less than LOOKBACK sorts after that point, so it is still found; a quiet bucket costs only
    what is new."""
    if not cursor.after:
        return None
    if not cursor.ticked_at:
        return cursor.after
    return min(cursor.after, lookback_floor(datetime.fromisoformat(cursor.ticked_at), prefix))


def list_inbox(
    client: S3Client,
    bucket: str,
    after: str | None,
    limit: int,
    found: Discovery,
    prefix: str = layout.INBOX,
) -> Iterable[str]:
    """Keys of a time-ordered prefix after `after` (S3 StartAfter: cost grows with what is new,
    not with the prefix)."""
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": f"{prefix}/", "MaxKeys": 1000}
    if after:
        kwargs["StartAfter"] = after
    yielded = 0
    while True:
        page = client.list_objects_v2(**kwargs)
        found.list_requests += 1
        for item in page.get("Contents", []):
            found.keys_listed += 1
            yield item["Key"]
            yielded += 1
            if yielded >= limit:
                return
        if not page.get("IsTruncated"):
            return
        kwargs["ContinuationToken"] = page["NextContinuationToken"]
        kwargs.pop("StartAfter", None)


class Intake:
    def __init__(self, client: S3Client, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def handle(self, kind: str, entity_id: str, found: Discovery) -> None:
        """One notification, from the inbox listing or from an R2 event queue alike."""
        if kind == "session":
            head = _head(self.client, self.bucket, layout.session_envelope_key(entity_id))
            etag = head["ETag"].strip('"') if head else "missing"
            found.sessions.append(SessionFound(entity_id, etag))
        else:
            found.cursor.pending[entity_id] = {"since": datetime.now(UTC).isoformat()}
            self.check_segment(entity_id, found)

    def check_segment(self, segment_id: str, found: Discovery) -> None:
        """Ready once its raw object exists; a bad or missing envelope is ready too, so its
        partition fails with a clear message instead of waiting forever."""
        envelope_key = layout.segment_envelope_key(segment_id)
        try:
            raw = self.client.get_object(Bucket=self.bucket, Key=envelope_key)
            envelope = SegmentEnvelope.parse(raw["Body"].read())
        except (EnvelopeError, ClientError) as error:
            code = error_code(error) if isinstance(error, ClientError) else "invalid"
            found.cursor.pending.pop(segment_id, None)
            found.segments.append(SegmentReady(segment_id, None, f"envelope:{code}"))
            return
        try:
            layout.check_key_within(envelope.raw_key, layout.tenant_raw_prefix(envelope.tenant_id))
        except layout.UnsafeKey:
            # Never HEAD another tenant's key; the proof checks report it on this partition.
            found.cursor.pending.pop(segment_id, None)
            found.segments.append(
                SegmentReady(segment_id, envelope.media_session_id, f"unsafe:{raw['ETag']}")
            )
            return
        head = _head(self.client, self.bucket, envelope.raw_key)
        if head is None:
            found.waiting.append(segment_id)
            return
        found.cursor.pending.pop(segment_id, None)
        found.segments.append(
            SegmentReady(segment_id, envelope.media_session_id, head["ETag"].strip('"'))
        )

    def discover(
        self,
        cursor: IntakeCursor,
        limit: int = MAX_ENTRIES_PER_TICK,
        now: datetime | None = None,
    ) -> Discovery:
        found = Discovery(
            cursor=IntakeCursor(cursor.after, list(cursor.recent), dict(cursor.pending))
        )
        for segment_id in list(cursor.pending):
            self.check_segment(segment_id, found)
        for key in poll_new_keys(self.client, self.bucket, cursor, found, limit=limit, now=now):
            parsed = layout.parse_inbox_key(key)
            if parsed is None:
                found.ignored.append(key)
                continue
            kind, entity_id, _ = parsed
            if kind == "segment" and entity_id in found.cursor.pending:
                continue  # already waiting on it
            self.handle(kind, entity_id, found)
        return found


def poll_new_keys(
    client: S3Client,
    bucket: str,
    cursor: IntakeCursor,
    found: Discovery,
    *,
    prefix: str = layout.INBOX,
    limit: int = MAX_ENTRIES_PER_TICK,
    now: datetime | None = None,
) -> list[str]:
    """New keys of a time-ordered prefix since `cursor`; moves found.cursor past them."""
    now = now or datetime.now(UTC)
    recent = set(cursor.recent)
    fresh: list[str] = []
    newest = cursor.after
    for key in list_inbox(client, bucket, start_after(cursor, prefix), limit, found, prefix):
        if key in recent:
            continue
        recent.add(key)
        newest = max(newest or key, key)
        fresh.append(key)
    found.cursor.after = newest
    found.cursor.ticked_at = now.isoformat()
    # Keep only keys that the next tick's listing can return again.
    floor = min(newest or "", lookback_floor(now, prefix))
    found.cursor.recent = sorted(k for k in recent if k > floor)
    return fresh
