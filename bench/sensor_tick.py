"""Benchmark 2: sensor tick cost against the size of the inbox.

Two buckets hold N_small and N_large pre-existing inbox entries (tiny JSON bodies, keys from
`layout.inbox_key("segment", ...)` spread over the 30 days before the cursor). Then 100 NEW
entries are written after the cursor, each pointing at a valid segment envelope and a small
raw object, so a tick finds 100 segments ready. One tick of `Intake.discover()` is timed
against dagster-aws `get_objects(since_key=...)` on the same buckets for the same 100 keys.

The cursor is the one a previous tick left: a real discover() tick over the newest old
entries (those inside the lookback window) produces it just before the new entries arrive.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from dagster_aws.s3.sensor import get_objects

from bench.common import (
    MIB,
    CallRecorder,
    CallStats,
    Spread,
    Target,
    log,
    md_table,
    pooled_client,
    private_store,
    targets_table,
)
from robotrace_assets import layout
from robotrace_assets.envelopes import SegmentEnvelope
from robotrace_assets.ids import new_id
from robotrace_assets.intake.discovery import LOOKBACK, Intake, IntakeCursor
from robotrace_assets.objectstore.client import S3Client, ensure_bucket

FULL_COUNTS = (10_000, 100_000)
QUICK_COUNTS = (1_000, 10_000)
NEW_ENTRIES = 100
SPREAD = timedelta(days=30)  # how far back the old inbox entries reach
WRITERS = 32
FULL_REPEATS = {"discover": 5, "get_objects": 3}
QUICK_REPEATS = {"discover": 3, "get_objects": 2}
TARGET_RATIO = 1.5  # discover() tick at N_large / at N_small
RAW_BYTES = 1024
PART_SIZE = 64 * MIB


@dataclass(frozen=True)
class Tick:
    seconds: float
    calls: CallStats
    keys_listed: int | None  # None where the code under test does not say
    found: int  # segments ready (discover) or objects returned (get_objects)


@dataclass
class BucketRun:
    objects: int
    bucket: str
    populate_s: float
    lookback_keys: int  # old keys the previous tick kept in cursor.recent (lookback window)
    discover: list[Tick] = field(default_factory=list)
    get_objects: list[Tick] = field(default_factory=list)

    def median(self, which: str) -> float:
        return Spread.of([t.seconds for t in getattr(self, which)]).median

    def typical(self, which: str) -> Tick:
        """The tick whose time is the median one (its call counts describe a typical tick)."""
        ticks = sorted(getattr(self, which), key=lambda t: t.seconds)
        return ticks[len(ticks) // 2]


@dataclass
class SensorBench:
    quick: bool
    repeats: dict[str, int]
    runs: list[BucketRun] = field(default_factory=list)

    def markdown(self) -> str:
        return _markdown(self)

    def targets(self) -> list[Target]:
        small, large = self.runs[0], self.runs[-1]
        ratio = large.median("discover") / small.median("discover")
        return [
            Target(
                "sensor tick",
                f"{small.objects:,} vs {large.objects:,} objects",
                "discover() tick time ratio, large / small",
                f"<= {TARGET_RATIO}",
                f"{ratio:.2f}",
                ratio <= TARGET_RATIO,
                f"{ratio - TARGET_RATIO:.2f} over the limit",
            )
        ]


# -- setup ---------------------------------------------------------------------------------------


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _inbox_body(bucket: str, segment_id: str, at: datetime) -> bytes:
    """An inbox entry shaped like the capture client's (an R2 event notification)."""
    event = {
        "action": "PutObject",
        "bucket": bucket,
        "object": {"key": layout.segment_envelope_key(segment_id), "size": 512},
        "eventTime": _iso(at),
        "kind": "segment",
        "id": segment_id,
    }
    return json.dumps(event).encode()


def _put_all(
    client: S3Client,
    bucket: str,
    items: Sequence[tuple[str, bytes, str]],
    label: str,
    progress_every: int,
) -> float:
    """PUT (key, body, content type) items with a thread pool; returns the elapsed seconds."""

    def put(item: tuple[str, bytes, str]) -> None:
        key, body, content_type = item
        client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)

    started = time.perf_counter()
    with ThreadPoolExecutor(WRITERS) as pool:
        # Batches keep the number of pending futures small and give regular progress lines.
        for first in range(0, len(items), progress_every):
            list(pool.map(put, items[first : first + progress_every]))
            done = min(first + progress_every, len(items))
            elapsed = time.perf_counter() - started
            if len(items) > progress_every:
                log(f"{label}: {done:,}/{len(items):,} PUTs ({done / elapsed:,.0f}/s)")
    return time.perf_counter() - started


def populate(
    client: S3Client, bucket: str, count: int, rng: random.Random, end: datetime
) -> tuple[str, float]:
    """`count` old inbox entries spread over SPREAD before `end`; returns (newest key, seconds).

    The newest entry is written last, after a pause, so that its LastModified is the greatest
    of the old ones: get_objects' since_key filter orders by LastModified, Intake's by key.
    """
    times = sorted(end - SPREAD * rng.random() for _ in range(count - 1))
    keys_bodies = []
    for at in times:
        segment_id = new_id("seg", at, rng)
        keys_bodies.append(
            (
                layout.inbox_key("segment", segment_id, at),
                _inbox_body(bucket, segment_id, at),
                layout.JSON_CONTENT_TYPE,
            )
        )
    seconds = _put_all(client, bucket, keys_bodies, f"{bucket}", max(1000, count // 10))
    time.sleep(1.1)  # LastModified may have one-second resolution
    newest_id = new_id("seg", end, rng)
    newest = layout.inbox_key("segment", newest_id, end)
    client.put_object(
        Bucket=bucket,
        Key=newest,
        Body=_inbox_body(bucket, newest_id, end),
        ContentType=layout.JSON_CONTENT_TYPE,
    )
    return newest, seconds


def previous_tick_cursor(client: S3Client, bucket: str, end: datetime, newest: str) -> IntakeCursor:
    """The cursor a sensor ticking all along would hold now, made by the package itself.

    A real discover() tick runs from a synthetic key just before the lookback window, so it
    handles only the old entries inside that window (their envelopes do not exist: they come
    back as 'bad envelope', which is fine for the setup) and leaves after/recent/ticked_at
    exactly as the package computes them, instead of the benchmark re-implementing that.
    """
    primer = IntakeCursor(after=layout.inbox_floor(end - LOOKBACK))
    cursor = Intake(client, bucket).discover(primer).cursor
    if cursor.after != newest:
        raise RuntimeError(f"priming tick on {bucket} ended at {cursor.after}, not {newest}")
    return cursor


def write_new_segments(client: S3Client, bucket: str, rng: random.Random) -> list[str]:
    """NEW_ENTRIES segments written after the cursor: raw object + valid envelope + inbox entry,
    in that order, as a capture client does. Returns the inbox keys."""
    now = datetime.now(UTC)
    tenant, msess = new_id("ten", now, rng), new_id("msess", now, rng)
    objects: list[tuple[str, bytes, str]] = []
    segment_ids = []
    for index in range(NEW_ENTRIES):
        segment_id = new_id("seg", now, rng)
        segment_ids.append(segment_id)
        raw = rng.randbytes(RAW_BYTES)
        raw_key = layout.raw_video_key(tenant, msess, segment_id)
        envelope = {
            "schema_version": "1",
            "media_session_id": msess,
            "segment_id": segment_id,
            "capture_id": new_id("cap", now, rng),
            "tenant_id": tenant,
            "segment_index": index,
            "started_at": _iso(now - timedelta(seconds=20)),
            "ended_at": _iso(now),
            "boundary_reason": "time_limit",
            "raw": {
                "object_key": raw_key,
                "size_bytes": RAW_BYTES,
                "sha256": hashlib.sha256(raw).hexdigest(),
                "content_type": layout.VIDEO_CONTENT_TYPE,
            },
            "upload": {
                "part_count": 1,
                "part_size_bytes": PART_SIZE,
                "checksum_algorithm": "SHA256",
            },
        }
        body = json.dumps(envelope).encode()
        SegmentEnvelope.parse(body)  # fail here, not as 100 'bad envelope' results in the tick
        objects.append((raw_key, raw, layout.VIDEO_CONTENT_TYPE))
        objects.append((layout.segment_envelope_key(segment_id), body, layout.JSON_CONTENT_TYPE))
    _put_all(client, bucket, objects, f"{bucket} new segments", len(objects))
    time.sleep(1.1)  # keep the new entries' LastModified strictly after the cursor's
    entries = []
    for segment_id in segment_ids:
        at = datetime.now(UTC)
        key = layout.inbox_key("segment", segment_id, at)
        entries.append((key, _inbox_body(bucket, segment_id, at), layout.JSON_CONTENT_TYPE))
    _put_all(client, bucket, entries, f"{bucket} new inbox entries", len(entries))
    return [key for key, _, _ in entries]


# -- measurements --------------------------------------------------------------------------------


def _timed(recorder: CallRecorder, action: Callable[[], tuple[int | None, int]]) -> Tick:
    recorder.reset()
    started = time.perf_counter()
    keys_listed, found = action()
    seconds = time.perf_counter() - started
    return Tick(seconds, recorder.reset(), keys_listed, found)


def discover_tick(
    client: S3Client, bucket: str, cursor: IntakeCursor, new_keys: list[str]
) -> tuple[int, int]:
    found = Intake(client, bucket).discover(cursor)
    ready = [s for s in found.segments if not s.version.startswith(("envelope:", "unsafe:"))]
    if len(ready) != len(new_keys) or found.waiting:
        raise RuntimeError(
            f"discover() on {bucket} found {len(ready)} ready / {len(found.waiting)} waiting, "
            f"expected {len(new_keys)} ready"
        )
    return found.keys_listed, len(ready)


def get_objects_tick(
    client: S3Client, bucket: str, since_key: str, new_keys: list[str]
) -> tuple[int | None, int]:
    objects = get_objects(bucket, prefix=f"{layout.INBOX}/", since_key=since_key, client=client)
    returned = {obj["Key"] for obj in objects}
    if returned != set(new_keys):
        raise RuntimeError(
            f"get_objects on {bucket} returned {len(returned)} keys, expected the "
            f"{len(new_keys)} new ones"
        )
    return None, len(objects)  # it lists every key under the prefix; the LIST count shows it


def run(quick: bool = False) -> SensorBench:
    counts = QUICK_COUNTS if quick else FULL_COUNTS
    repeats = QUICK_REPEATS if quick else FULL_REPEATS
    result = SensorBench(quick=quick, repeats=repeats)
    rng = random.Random(2024)
    with private_store("sensor") as store:
        writer = pooled_client(store)
        prepared: list[tuple[BucketRun, IntakeCursor, list[str]]] = []
        for count in counts:
            bucket = f"bench-inbox-{count}"
            ensure_bucket(writer, bucket)
            log(f"{bucket}: writing {count:,} old inbox entries with {WRITERS} threads")
            end = datetime.now(UTC) - timedelta(seconds=5)
            newest, seconds = populate(writer, bucket, count, rng, end)
            cursor = previous_tick_cursor(writer, bucket, end, newest)
            time.sleep(1.1)
            new_keys = write_new_segments(writer, bucket, rng)
            run_ = BucketRun(count, bucket, seconds, lookback_keys=len(cursor.recent))
            prepared.append((run_, cursor, new_keys))
            result.runs.append(run_)
        # The sensor's own client (default pool), hooked to count and time its S3 calls.
        client = store.client()
        recorder = CallRecorder(client)
        for run_, cursor, new_keys in prepared:
            discover_tick(client, run_.bucket, cursor, new_keys)  # warm-up: connections, schema
        for attempt in range(max(repeats.values())):
            for run_, cursor, new_keys in prepared:
                if attempt < repeats["discover"]:
                    tick = _timed(
                        recorder,
                        lambda r=run_, c=cursor, k=new_keys: discover_tick(client, r.bucket, c, k),
                    )
                    run_.discover.append(tick)
                    log(f"{run_.bucket}: discover() tick {tick.seconds:.3f}s")
                if attempt < repeats["get_objects"]:
                    tick = _timed(
                        recorder,
                        lambda r=run_, c=cursor, k=new_keys: get_objects_tick(
                            client, r.bucket, c.after or "", k
                        ),
                    )
                    run_.get_objects.append(tick)
                    log(f"{run_.bucket}: get_objects() {tick.seconds:.3f}s")
    return result


# -- report --------------------------------------------------------------------------------------


def _calls(stats: CallStats) -> str:
    short = {"ListObjectsV2": "LIST", "GetObject": "GET", "HeadObject": "HEAD"}
    return ", ".join(f"{stats.counts[op]} {short.get(op, op)}" for op in sorted(stats.counts))


def _markdown(bench: SensorBench) -> str:
    small, large = bench.runs[0], bench.runs[-1]
    d_ratio = large.median("discover") / small.median("discover")
    g_ratio = large.median("get_objects") / small.median("get_objects")
    lines = [
        "## 2. Sensor tick cost",
        "",
        f"Buckets with {small.objects:,} and {large.objects:,} old inbox entries (spread over "
        f"the {SPREAD.days} days before the cursor), then {NEW_ENTRIES} new entries written "
        "after the cursor, each pointing at a valid segment envelope and a 1 KiB raw object. "
        f"Median of {bench.repeats['discover']} `discover()` ticks and "
        f"{bench.repeats['get_objects']} `get_objects()` calls per bucket (range in "
        "parentheses), interleaved across buckets, one warm-up tick first.",
        "",
        "- **`Intake.discover()`**: one LIST from StartAfter = cursor minus the 10-minute "
        "lookback (old keys in that window are listed again and skipped via `cursor.recent`), "
        "then for each new entry one GET of its envelope (parsed and schema-validated) and one "
        "HEAD of its raw object; returns 100 segments ready.",
        "- **dagster-aws `get_objects(bucket, prefix='robotics/inbox/', since_key=<newest old "
        "key>)`**: paginates the whole prefix (1,000 keys per LIST), sorts by LastModified, "
        "returns the 100 new objects. Listing only: a real sensor would still have to read the "
        "100 envelopes afterwards.",
        "",
        "Populating the buckets (not timed in the ticks): "
        + "; ".join(
            f"{r.objects:,} PUTs in {r.populate_s:.0f}s ({r.objects / r.populate_s:,.0f}/s, "
            f"{WRITERS} threads)"
            for r in bench.runs
        )
        + ".",
        "",
        md_table(
            [
                "inbox objects",
                "discover() tick s",
                "S3 calls in a tick",
                "keys listed",
                "time in S3 calls s",
                "get_objects() s",
                "S3 calls",
                "time in S3 calls s",
            ],
            [
                (
                    f"{r.objects:,}",
                    Spread.of([t.seconds for t in r.discover]).fmt(3),
                    _calls(r.typical("discover").calls),
                    f"{r.typical('discover').keys_listed} ({r.lookback_keys} in lookback)",
                    f"{r.typical('discover').calls.total_seconds():.3f}",
                    Spread.of([t.seconds for t in r.get_objects]).fmt(2),
                    _calls(r.typical("get_objects").calls),
                    f"{r.typical('get_objects').calls.total_seconds():.2f}",
                )
                for r in bench.runs
            ],
        ),
        "",
        "### Targets and comparison",
        "",
        targets_table(bench.targets()),
        "",
        md_table(
            ["comparison", f"{small.objects:,}", f"{large.objects:,}", "large / small"],
            [
                (
                    "discover() tick s",
                    f"{small.median('discover'):.3f}",
                    f"{large.median('discover'):.3f}",
                    f"{d_ratio:.2f}",
                ),
                (
                    "dagster-aws get_objects() s",
                    f"{small.median('get_objects'):.2f}",
                    f"{large.median('get_objects'):.2f}",
                    f"{g_ratio:.2f}",
                ),
                (
                    "get_objects() time / discover() time",
                    f"{small.median('get_objects') / small.median('discover'):.1f}x",
                    f"{large.median('get_objects') / large.median('discover'):.1f}x",
                    "",
                ),
            ],
        ),
        "",
        _where_time_goes(bench),
    ]
    return "\n".join(lines)


def _where_time_goes(bench: SensorBench) -> str:
    """Split each typical tick into waiting on S3 and client-side Python work."""
    parts = ["Where a tick's time goes (typical tick):", ""]
    for r in bench.runs:
        d, g = r.typical("discover"), r.typical("get_objects")
        d_s3, g_s3 = d.calls.total_seconds(), g.calls.total_seconds()
        lists = g.calls.counts.get("ListObjectsV2", 0)
        parts.append(
            f"- {r.objects:,} objects: discover() {d.seconds:.3f}s = {d_s3:.3f}s in "
            f"{sum(d.calls.counts.values())} S3 calls + {d.seconds - d_s3:.3f}s client side; "
            f"get_objects() {g.seconds:.2f}s = {g_s3:.2f}s in {lists} LISTs "
            f"({g_s3 / max(lists, 1) * 1000:.0f} ms each) + {g.seconds - g_s3:.2f}s client side."
        )
    return "\n".join(parts)


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv[1:]).markdown())
