"""The review sets by capture day, one shard per segment (plain functions, no Dagster).

    robotics/catalog/review_complete/day=YYYY-MM-DD/<segment_id>.parquet   its approved clips
    robotics/catalog/regression_bank/day=YYYY-MM-DD/<segment_id>.parquet   its rejected clips

Hive-style, so `pyarrow.dataset.dataset(".../review_complete/", partitioning="hive")` or DuckDB's
`read_parquet('.../review_complete/*/*.parquet', hive_partitioning=true)` read a set whole. An
update costs what changed: it reads the clip reviews of the segments named, rewrites only the
shards whose rows differ, and deletes a shard whose segment has no clip left in that set.

A segment's day is the UTC mint day of its ULID (ids.id_day). Ids minted before the first day
of the partitions land in the first day; ids minted after the last partition (a capture clock
far ahead) have no day yet: the sensor keeps them waiting until their day's partition exists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol, TypeVar

from robotrace_assets import catalog, ids, layout
from robotrace_assets.objectstore.client import ObjectNotFound, S3Client

APPROVED, REJECTED = "approved", "rejected"
SETS = {catalog.REVIEW_COMPLETE: APPROVED, catalog.REGRESSION_BANK: REJECTED}
WORKERS = 8  # parallel GET/PUT per update: round trips, not CPU, bound an update
_CLIP_REVIEWS = f"{layout.CATALOG}/{catalog.CLIP_REVIEWS}/"
T = TypeVar("T")
R = TypeVar("R")


class Store(Protocol):
    """What an update needs of the object store (ObjectStoreResource has it)."""

    @property
    def bucket_name(self) -> str: ...

    def client(self) -> S3Client: ...

    def get_bytes(self, key: str) -> bytes: ...

    def put_bytes(self, key: str, data: bytes, content_type: str) -> dict[str, Any]: ...


def day_prefix(table: str, day: str) -> str:
    return f"{layout.CATALOG}/{table}/day={day}/"


def shard_key(table: str, day: str, segment_id: str) -> str:
    return f"{day_prefix(table, day)}{segment_id}.parquet"


def segment_day(segment_id: str, first_day: str, last_day: str) -> str | None:
    """The day partition of a segment: its mint day, the first day for older ids, None for an
    id minted after the last partition (it waits for its day)."""
    day = ids.id_day(segment_id)
    if day > last_day:
        return None
    return max(day, first_day)


def days_between(first: str, last: str) -> list[str]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


def _time_prefix(at: datetime) -> str:
    """The first 10 characters (48-bit millisecond time) of any ULID minted at `at`."""
    value, chars = int(at.timestamp() * 1000), []
    for _ in range(10):
        chars.append(ids.CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def _list_from(client: S3Client, bucket: str, prefix: str, start_after: str) -> Iterator[str]:
    """Keys under `prefix` after `start_after`, in key order, page by page (stop any time)."""
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        if token:
            kwargs["ContinuationToken"] = token
        elif start_after:
            kwargs["StartAfter"] = start_after
        page = client.list_objects_v2(**kwargs)
        yield from (item["Key"] for item in page.get("Contents", []))
        if not page.get("IsTruncated"):
            return
        token = page["NextContinuationToken"]


def reviewed_segments_of_day(client: S3Client, bucket: str, day: str, first_day: str) -> list[str]:
    """Segments of one day with a clip-review record. Their keys are `seg_<ULID>.parquet` and a
    ULID starts with its mint time, so one day is one contiguous key range: list from its start
    and stop past its end (the first day also takes every older id)."""
    start = datetime.fromisoformat(day).replace(tzinfo=UTC)
    low = _time_prefix(start)
    high = _time_prefix(start + timedelta(days=1))
    start_after = _CLIP_REVIEWS if day == first_day else f"{_CLIP_REVIEWS}seg_{low}"
    found = []
    for key in _list_from(client, bucket, f"{_CLIP_REVIEWS}seg_", start_after):
        segment_id = key.removeprefix(_CLIP_REVIEWS).removesuffix(".parquet")
        if not ids.is_id("seg", segment_id):
            continue
        if segment_id[4:14] >= high:
            break
        found.append(segment_id)
    return found


def sharded_segments(client: S3Client, bucket: str, table: str, day: str) -> list[str]:
    prefix = day_prefix(table, day)
    return [
        key.removeprefix(prefix).removesuffix(".parquet")
        for key in _list_from(client, bucket, prefix, prefix)
    ]


@dataclass
class SetChange:
    added: int = 0  # clips that entered the set
    removed: int = 0  # clips that left it
    written: int = 0  # shards (re)written
    deleted: int = 0  # shards deleted: the segment has no clip left in the set


@dataclass
class DayUpdate:
    day: str
    segments: int = 0
    sets: dict[str, SetChange] = field(default_factory=lambda: {t: SetChange() for t in SETS})
    reasons: dict[str, int] = field(default_factory=dict)  # of clips entering the bank

    def top_reasons(self, n: int = 10) -> dict[str, int]:
        return dict(sorted(self.reasons.items(), key=lambda i: (-i[1], i[0]))[:n])


def _get(store: Store, key: str) -> bytes | None:
    try:
        return store.get_bytes(key)
    except ObjectNotFound:
        return None


def reason_head(reason: str) -> str:
    return reason.split(":")[0].split(" (")[0]


def _update_shard(
    store: Store, table: str, day: str, segment_id: str, rows: list[dict[str, Any]]
) -> tuple[SetChange, set[str]]:
    """Bring one segment's shard of one set in line with its rows; the clip ids that entered."""
    key = shard_key(table, day, segment_id)
    old = _get(store, key)
    old_ids = {r["clip_id"] for r in catalog.from_parquet(old)} if old is not None else set()
    new_ids = {r["clip_id"] for r in rows}
    change = SetChange(added=len(new_ids - old_ids), removed=len(old_ids - new_ids))
    if not rows:
        if old is not None:
            store.client().delete_object(Bucket=store.bucket_name, Key=key)
            change.deleted = 1
        return change, set()
    data = catalog.to_parquet(rows)
    if data != old:  # the same rows give the same bytes: leave an unchanged shard alone
        store.put_bytes(key, data, layout.PARQUET_CONTENT_TYPE)
        change.written = 1
    return change, new_ids - old_ids


def update_segment(store: Store, day: str, segment_id: str) -> DayUpdate:
    """One segment's shards in both sets, from its clip-review record (none: no shards)."""
    reviews = _get(store, layout.catalog_key(catalog.CLIP_REVIEWS, segment_id))
    rows = catalog.from_parquet(reviews) if reviews is not None else []
    update = DayUpdate(day, segments=1)
    for table, status in SETS.items():
        mine = [r for r in rows if r.get("final_status") == status]
        update.sets[table], entered = _update_shard(store, table, day, segment_id, mine)
        if table == catalog.REGRESSION_BANK:
            for row in mine:
                if row["clip_id"] in entered:
                    for reason in row.get("reasons") or []:
                        head = reason_head(reason)
                        update.reasons[head] = update.reasons.get(head, 0) + 1
    return update


def merge(day: str, updates: Iterable[DayUpdate]) -> DayUpdate:
    total = DayUpdate(day)
    for update in updates:
        total.segments += update.segments
        for table, change in update.sets.items():
            into = total.sets[table]
            into.added += change.added
            into.removed += change.removed
            into.written += change.written
            into.deleted += change.deleted
        for reason, count in update.reasons.items():
            total.reasons[reason] = total.reasons.get(reason, 0) + count
    return total


def _parallel(fn: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    if len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(fn, items))


def update_day(
    store: Store, day: str, segment_ids: Sequence[str], workers: int = WORKERS
) -> DayUpdate:
    """Update the shards of the segments named, and only theirs."""
    store.client()  # build the client once, before the threads share it
    segments = sorted(set(segment_ids))
    return merge(day, _parallel(lambda s: update_segment(store, day, s), segments, workers))


def rebuild_day(store: Store, day: str, first_day: str, workers: int = WORKERS) -> DayUpdate:
    """Every segment of the day: those with clip reviews and those with shards (a shard whose
    clip reviews are gone is deleted). Costs the day, never the catalog."""
    client, bucket = store.client(), store.bucket_name
    segments = set(reviewed_segments_of_day(client, bucket, day, first_day))
    for table in SETS:
        segments.update(sharded_segments(client, bucket, table, day))
    return update_day(store, day, sorted(segments), workers)


def read_days(
    store: Store, table: str, days: Sequence[str], workers: int = WORKERS
) -> list[dict[str, Any]]:
    """Every row of a set in these days (one LIST per day, one GET per shard), in key order."""
    client, bucket = store.client(), store.bucket_name
    keys = [key for day in days for key in _list_from(client, bucket, day_prefix(table, day), "")]
    shards = _parallel(store.get_bytes, keys, workers)
    return [row for data in shards for row in catalog.from_parquet(data)]


MAX_WAITING = 10_000  # segments minted after the last day, kept in the sensor's cursor


def group_by_day(
    segment_ids: Iterable[str], first_day: str, last_day: str
) -> tuple[dict[str, list[str]], list[str]]:
    """Segments by day partition, and those minted after the last day (to wait, bounded)."""
    days: dict[str, set[str]] = {}
    waiting: list[str] = []
    for segment_id in sorted(set(segment_ids)):
        day = segment_day(segment_id, first_day, last_day)
        if day is None:
            waiting.append(segment_id)
        else:
            days.setdefault(day, set()).add(segment_id)
    return {day: sorted(s) for day, s in sorted(days.items())}, waiting[-MAX_WAITING:]
