"""Discovery of new envelopes and completed uploads, at a cost that grows with what is new.

Clients drop an inbox entry (robotics/inbox/<day>/<time>Z_<kind>_<id>.json) after each envelope.
Inbox keys sort by the time they were written, so each tick lists with S3 `StartAfter` from
the cursor instead of paging through the bucket (dagster-aws get_objects pages the whole prefix
on every tick). The listing restarts a short lookback before the cursor so an entry written by a
client whose clock lags a little is still found; keys already handled are remembered for that
window only. R2 event notifications carry the same (kind, id) and can feed `handle` directly;
the listing then stays as the backstop.

A segment whose raw upload is not complete stays pending in the cursor and is checked again on
later ticks (one HEAD each, backing off), until it completes or its upload window closes: then it
is requested anyway, so its proof fails as "raw object missing" and alerts, instead of waiting
forever. A multipart upload still in progress keeps the window open. The pending set is bounded.

Anything under the inbox the sensor cannot use (a key that is not an entry, an id that is not a
strict `<kind>_<ULID>`: unicode, `|`, `,`...) is quarantined: a record under
robotics/catalog/quarantine/inbox/, a line in the tick log and an alert, never a partition.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from robotrace_assets import layout
from robotrace_assets.envelopes import EnvelopeError, SegmentEnvelope
from robotrace_assets.ids import is_id
from robotrace_assets.intake.handoff import put_json
from robotrace_assets.objectstore.client import S3Client, error_code, head_object

LOOKBACK = timedelta(minutes=10)
# The rest waits for the next tick: a tick must end well within 60 s, and the daemon creates the
# tick's runs within it (2-3 s per 25-segment run on a loaded 2-core machine with one planned
# event per asset, 12-20 s with one per asset and segment). 100 a tick still drains 12,000 a day
# many times over.
MAX_ENTRIES_PER_TICK = 100
# Handling an entry costs a GET and a HEAD: under a burst on a busy store that is ~0.1 s, so the
# whole evaluation is bounded by time too (rechecks of waiting uploads included); what is left
# is listed or rechecked again next tick.
TICK_BUDGET = timedelta(seconds=15)
UPLOAD_WINDOW = timedelta(hours=4)  # how long a declared raw object may take to appear
MAX_PENDING = 20_000  # the cursor stays bounded: beyond this the oldest waits end as missing
EVERY_TICK_CHECKS = 10  # a waiting upload is HEADed on each of its first ticks, then after...
RECHECK_MIN = timedelta(seconds=30)  # ...this, doubling...
RECHECK_MAX = timedelta(minutes=5)  # ...up to this: latency for a slow upload, cost bounded
MAX_RECHECKS_PER_TICK = 1000  # due waits beyond this are checked on the next tick
ID_KINDS = {"session": "msess", "segment": "seg"}
QUARANTINE = f"{layout.CATALOG}/quarantine/inbox"


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


@dataclass(frozen=True)
class Quarantined:
    key: str
    reason: str


@dataclass
class Discovery:
    sessions: list[SessionFound] = field(default_factory=list)
    segments: list[SegmentReady] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)  # upload window closed, object missing
    ignored: list[str] = field(default_factory=list)  # keys under the inbox that are not entries
    quarantined: list[Quarantined] = field(default_factory=list)
    list_requests: int = 0
    keys_listed: int = 0
    deferred: int = 0  # new inbox keys left for the next tick (time budget)
    seconds: dict[str, float] = field(default_factory=dict)  # where the tick's time went
    cursor: IntakeCursor = field(default_factory=IntakeCursor)


class _Clock:
    """The tick's time budget, and the laps between its phases."""

    def __init__(self, budget: timedelta) -> None:
        self.deadline = time.monotonic() + budget.total_seconds()
        self.last = time.monotonic()

    def out_of_time(self) -> bool:
        return time.monotonic() > self.deadline

    def lap(self) -> float:
        now = time.monotonic()
        lap, self.last = now - self.last, now
        return round(lap, 3)


def entry_problem(key: str) -> tuple[str, str] | str:
    """(kind, id) of a usable inbox key, or why it cannot be used."""
    parsed = layout.parse_inbox_key(key)
    if parsed is None:
        return "not an inbox entry: expected <day>/<HHMMSS.ffffff>Z_<session|segment>_<id>.json"
    kind, entity_id, _ = parsed
    if not is_id(ID_KINDS[kind], entity_id):
        return f"malformed {kind} id: expected {ID_KINDS[kind]}_<26 Crockford base32 characters>"
    return kind, entity_id


def quarantine_key(key: str) -> str:
    # The offending key may hold anything: the record's own key is a hash of it.
    return f"{QUARANTINE}/{hashlib.sha256(key.encode('utf-8', 'replace')).hexdigest()}.json"


def _wait_info(info: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
    info = dict(info or {})
    info.setdefault("since", now.isoformat())
    return info


def _backoff(info: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Every tick for the first checks (an upload in flight usually lands within minutes), then
    doubling from RECHECK_MIN to RECHECK_MAX: a stuck upload costs ever fewer HEADs."""
    checks = int(info.get("checks", 0)) + 1
    if checks <= EVERY_TICK_CHECKS:
        return {**info, "checks": checks}
    delay = min(RECHECK_MAX, RECHECK_MIN * 2 ** min(checks - EVERY_TICK_CHECKS - 1, 10))
    return {**info, "checks": checks, "next": (now + delay).isoformat()}


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
    found: Discovery,
    prefix: str = layout.INBOX,
) -> Iterator[str]:
    """Keys of a time-ordered prefix after `after`, page by page as the caller reads them (S3
    StartAfter: cost grows with what is new, not with the prefix)."""
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": f"{prefix}/", "MaxKeys": 1000}
    if after:
        kwargs["StartAfter"] = after
    while True:
        page = client.list_objects_v2(**kwargs)
        found.list_requests += 1
        for item in page.get("Contents", []):
            found.keys_listed += 1
            yield item["Key"]
        if not page.get("IsTruncated"):
            return
        kwargs["ContinuationToken"] = page["NextContinuationToken"]
        kwargs.pop("StartAfter", None)


class Intake:
    def __init__(
        self, client: S3Client, bucket: str, upload_window: timedelta = UPLOAD_WINDOW
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.upload_window = upload_window

    def handle(
        self, kind: str, entity_id: str, found: Discovery, now: datetime | None = None
    ) -> None:
        """One notification, from the inbox listing or from an R2 event queue alike."""
        now = now or datetime.now(UTC)
        if kind not in ID_KINDS or not is_id(ID_KINDS[kind], entity_id):
            found.quarantined.append(Quarantined(f"{kind}:{entity_id}", "malformed id"))
            return
        if kind == "session":
            head = head_object(
                self.client, self.bucket, layout.session_envelope_key(entity_id), checksum=False
            )
            etag = head["ETag"].strip('"') if head else "missing"
            found.sessions.append(SessionFound(entity_id, etag))
        else:
            found.cursor.pending[entity_id] = _wait_info(None, now)
            self.check_segment(entity_id, found, now)

    def _ready(self, found: Discovery, segment_id: str, session: str | None, version: str) -> None:
        found.cursor.pending.pop(segment_id, None)
        found.segments.append(SegmentReady(segment_id, session, version))

    def check_segment(self, segment_id: str, found: Discovery, now: datetime) -> None:
        """Ready once its raw object exists; a bad or missing envelope is ready too, and so is a
        raw object still missing when its upload window closes: its partition then fails with a
        clear message instead of waiting forever."""
        envelope_key = layout.segment_envelope_key(segment_id)
        try:
            raw = self.client.get_object(Bucket=self.bucket, Key=envelope_key)
            envelope = SegmentEnvelope.parse(raw["Body"].read())
        except (EnvelopeError, ClientError) as error:
            code = error_code(error) if isinstance(error, ClientError) else "invalid"
            self._ready(found, segment_id, None, f"envelope:{code}")
            return
        envelope_etag = raw["ETag"].strip('"')
        session = envelope.media_session_id
        try:
            layout.check_key_within(envelope.raw_key, layout.tenant_raw_prefix(envelope.tenant_id))
        except layout.UnsafeKey:
            # Never HEAD another tenant's key; the proof checks report it on this partition.
            self._ready(found, segment_id, session, f"unsafe:{envelope_etag}")
            return
        head = head_object(self.client, self.bucket, envelope.raw_key, checksum=False)
        if head is not None:
            # The envelope's ETag is part of the version: a changed envelope over the same
            # bytes runs again (and is refused if its segment is already proven).
            self._ready(
                found, segment_id, session, f"{head['ETag'].strip(chr(34))}+{envelope_etag}"
            )
            return
        info = _wait_info(found.cursor.pending.get(segment_id), now)
        window_closed = now - datetime.fromisoformat(info["since"]) >= self.upload_window
        if window_closed and not self._upload_in_progress(envelope.raw_key):
            found.expired.append(segment_id)
            self._ready(found, segment_id, session, f"missing+{envelope_etag}")
            return
        found.cursor.pending[segment_id] = _backoff(info, now)
        found.waiting.append(segment_id)

    def _upload_in_progress(self, key: str) -> bool:
        uploads = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=key)
        return any(u["Key"] == key for u in uploads.get("Uploads", []))

    def quarantine(self, found: Discovery, key: str, reason: str, now: datetime) -> None:
        """Record an inbox key the sensor cannot use, so that a client with a bug finds out."""
        found.ignored.append(key)
        found.quarantined.append(Quarantined(key, reason))
        record = {"inbox_key": key, "reason": reason, "seen_at": now.isoformat()}
        put_json(self.client, self.bucket, quarantine_key(key), record)

    def discover(
        self,
        cursor: IntakeCursor,
        limit: int = MAX_ENTRIES_PER_TICK,
        now: datetime | None = None,
        budget: timedelta = TICK_BUDGET,
    ) -> Discovery:
        now = now or datetime.now(UTC)
        found = Discovery(
            cursor=IntakeCursor(cursor.after, list(cursor.recent), dict(cursor.pending))
        )
        # One deadline for the whole evaluation (rechecks, listing, handling): under a loaded
        # code server the parts outside the handling loop alone once passed the 60 s timeout.
        clock = _Clock(budget)
        due = sorted(
            (info.get("next") or "", segment_id)
            for segment_id, info in cursor.pending.items()
            if not info.get("next") or datetime.fromisoformat(info["next"]) <= now
        )[:MAX_RECHECKS_PER_TICK]
        checked: set[str] = set()
        for _, segment_id in due:
            if clock.out_of_time():
                break  # still due: the next tick checks it
            self.check_segment(segment_id, found, now)
            checked.add(segment_id)
        found.waiting += [s for s in cursor.pending if s not in checked]
        found.seconds["rechecks"] = clock.lap()
        keys = poll_new_keys(self.client, self.bucket, cursor, found, limit=limit, now=now)
        found.seconds["listing"] = clock.lap()
        for index, key in enumerate(keys):
            if clock.out_of_time():
                leave_for_next_tick(found.cursor, cursor, keys[index:])
                found.deferred = len(keys) - index
                break
            entry = entry_problem(key)
            if isinstance(entry, str):
                self.quarantine(found, key, entry, now)
                continue
            kind, entity_id = entry
            if kind == "segment" and entity_id in found.cursor.pending:
                continue  # already waiting on it
            self.handle(kind, entity_id, found, now)
        found.seconds["handling"] = clock.lap()
        self._bound_pending(found)
        return found

    def _bound_pending(self, found: Discovery) -> None:
        """Past MAX_PENDING the oldest waits end now: their proofs fail as missing."""
        pending = found.cursor.pending
        excess = len(pending) - MAX_PENDING
        if excess <= 0:
            return
        for segment_id in sorted(pending, key=lambda s: pending[s]["since"])[:excess]:
            found.expired.append(segment_id)
            self._ready(found, segment_id, None, "missing+overflow")
            if segment_id in found.waiting:
                found.waiting.remove(segment_id)


def leave_for_next_tick(cursor: IntakeCursor, before: IntakeCursor, keys: list[str]) -> None:
    """Move the cursor back to just before `keys` (sorted, not handled) and forget them, so
    the next tick lists and handles them; nothing is lost, nothing handled twice."""
    handled_up_to = max((k for k in cursor.recent if k < keys[0]), default=None)
    cursor.after = max(filter(None, (before.after, handled_up_to)), default=None)
    unhandled = set(keys)
    cursor.recent = [k for k in cursor.recent if k not in unhandled]


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
    # The limit counts new keys only: the lookback re-lists handled ones, and after a burst of
    # more than `limit` they alone would fill every tick until the window passed them.
    for key in list_inbox(client, bucket, start_after(cursor, prefix), found, prefix):
        if key in recent:
            continue
        if len(fresh) >= limit:
            break
        recent.add(key)
        newest = max(newest or key, key)
        fresh.append(key)
    found.cursor.after = newest
    found.cursor.ticked_at = now.isoformat()
    # Keep only keys that the next tick's listing can return again.
    floor = min(newest or "", lookback_floor(now, prefix))
    found.cursor.recent = sorted(k for k in recent if k > floor)
    return fresh
