"""Benchmark (b): the cost of one aggregate update after 100 new segments, on top of 10,000 vs
100,000 existing segments (target: ratio <= 1.5), both sizes in the same run.

  store side (SeaweedFS): the review-set day update of the 100 new segments (what a
    review_sets run does with the sensor's segment list), and the delivery's candidate-pool
    read of their day; for contrast, the old design at the small size (list and read every
    segment's clip reviews);
  Dagster side (PostgreSQL instance): one incremental derivative-refresh tick that finds the
    100 newly proven segments among the existing ones.

Existing segments are written directly as synthetic catalog records (parallel PUTs, spread over
the 60 days before today) and as batched materialization events; the seeded store is kept under
bench/.work/aggregates-store between runs. Only the proofs' check results of the existing
segments are not seeded (the event log takes them one by one): the tick reads check history
after its cursor only, so they would only deepen an index.

    python -m bench.aggregates_bench [--quick]     prints the markdown section
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import secrets
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg2
from dagster import (
    AssetCheckEvaluation,
    AssetMaterialization,
    AssetRecordsFilter,
    DagsterEvent,
    DagsterEventType,
    DagsterInstance,
)
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)
from dagster._core.events import StepMaterializationData
from dagster._core.events.log import EventLogEntry
from dagster._core.instance.utils import RUNLESS_JOB_NAME, RUNLESS_RUN_ID

from bench.common import WORK_DIR, Target, log, md_table
from robotrace_assets import catalog, layout
from robotrace_assets.derivatives.assets import PROXY
from robotrace_assets.derivatives.profiles import CURRENT_PROFILE
from robotrace_assets.derivatives.sensors import RefreshReader, refresh_tick
from robotrace_assets.derivatives.staleness import RefreshCursor
from robotrace_assets.ids import id_day, new_id
from robotrace_assets.objectstore.local import LocalObjectStore, find_free_port_block
from robotrace_assets.proof.assets import PROVIDER_PROOF
from robotrace_assets.proof.guard import PROOF_CHECK_KEYS
from robotrace_assets.resources import ObjectStoreResource
from robotrace_assets.review.shards import read_days, shard_key, update_day

NEW = 100
TARGET = 1.5
REPEATS = 3
SPREAD_DAYS = 60
STORE_DIR = WORK_DIR / "aggregates-store"
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


def _rows(segment_id: str, status: str = "approved") -> list[dict[str, Any]]:
    return [
        {
            "clip_id": f"clip_{segment_id[4:-1]}{i}",
            "segment_id": segment_id,
            "tenant_id": "ten_01KT9WNH809PJX8W9XC34AE1HS",
            "final_status": status if i else "rejected",
            "reasons": [] if i else ["jerk_spike: 40 m/s^3"],
            "machine_quality": 0.9,
        }
        for i in range(3)
    ]


def _segments(count: int, seed: int, now: datetime, spread_days: int) -> list[str]:
    rng = random.Random(seed)
    return sorted(
        new_id("seg", now - timedelta(seconds=rng.uniform(0, spread_days * 86400)), rng)
        for _ in range(count)
    )


def _open_store() -> LocalObjectStore:
    """The kept store: same directory and credentials between runs, a free port each time."""
    STORE_DIR.mkdir(parents=True, exist_ok=True)
    creds_file = STORE_DIR / "credentials.json"
    if not creds_file.exists():
        creds_file.write_text(
            json.dumps({"key": f"bench-{secrets.token_hex(4)}", "secret": secrets.token_hex(20)})
        )
    creds = json.loads(creds_file.read_text())
    store = LocalObjectStore(
        root=(STORE_DIR / "objectstore").resolve(),
        s3_port=find_free_port_block(),
        bucket="bench-aggregates",
        access_key_id=creds["key"],
        secret_access_key=creds["secret"],
    )
    store.start()
    return store


def _resource(store: LocalObjectStore, bucket: str) -> ObjectStoreResource:
    settings = store.settings()
    return ObjectStoreResource(
        endpoint_url=settings.endpoint_url,
        bucket=bucket,
        access_key_id=settings.access_key_id,
        secret_access_key=settings.secret_access_key,
    )


def _seed_store(res: ObjectStoreResource, existing: int, now: datetime) -> float:
    """Clip reviews and review-complete shards of `existing` segments, unless already there."""
    client, bucket = res.client(), res.bucket_name
    marker = f"bench/seeded-{existing}"
    with contextlib.suppress(client.exceptions.ClientError):  # kept from a past run
        client.create_bucket(Bucket=bucket)
    if client.list_objects_v2(Bucket=bucket, Prefix=marker).get("KeyCount"):
        return 0.0
    started = time.perf_counter()
    segments = _segments(existing, existing, now - timedelta(days=1), SPREAD_DAYS)

    def put(segment_id: str) -> None:
        rows = _rows(segment_id)
        data = catalog.to_parquet(rows)
        res.put_bytes(
            layout.catalog_key(catalog.CLIP_REVIEWS, segment_id), data, layout.PARQUET_CONTENT_TYPE
        )
        approved = catalog.to_parquet([r for r in rows if r["final_status"] == "approved"])
        key = shard_key(catalog.REVIEW_COMPLETE, id_day(segment_id), segment_id)
        res.put_bytes(key, approved, layout.PARQUET_CONTENT_TYPE)

    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(put, segments))
    client.put_object(Bucket=bucket, Key=marker, Body=b"")
    return time.perf_counter() - started


def _store_update(res: ObjectStoreResource, existing: int, now: datetime) -> dict[str, Any]:
    """Median cost of the day update of NEW fresh segments, and of reading their day."""
    updates, reads = [], []
    for repeat in range(REPEATS):
        # A capture day of their own, before the seeded ones: a rerun on the kept store
        # never finds an earlier run's shards in it, so both sizes read the same day size.
        rng = random.Random(uuid.uuid4().int)
        day_start = now - timedelta(days=SPREAD_DAYS + 2 + rng.randrange(600))
        fresh = _segments(NEW, rng.getrandbits(64), day_start, 0)
        for segment_id in fresh:  # the clip_review runs' output: not part of the update
            res.write_record(catalog.CLIP_REVIEWS, segment_id, _rows(segment_id))
        day = id_day(fresh[0])
        started = time.perf_counter()
        update = update_day(res, day, fresh)
        updates.append(time.perf_counter() - started)
        assert update.sets[catalog.REVIEW_COMPLETE].written == NEW, update
        started = time.perf_counter()
        read_days(res, catalog.REVIEW_COMPLETE, [day])
        reads.append(time.perf_counter() - started)
        log(f"  {existing}: day update {updates[-1]:.2f}s, day read {reads[-1]:.2f}s ({repeat})")
    return {"update_s": updates, "read_s": reads}


def _old_design(res: ObjectStoreResource) -> float:
    """What review_sets cost before: list every clip review and read each one."""
    client, bucket = res.client(), res.bucket_name
    started = time.perf_counter()
    keys = [
        item["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=f"{layout.CATALOG}/{catalog.CLIP_REVIEWS}/"
        )
        for item in page.get("Contents", [])
    ]
    rows = [row for key in keys for row in catalog.from_parquet(res.get_bytes(key))]
    assert rows
    return time.perf_counter() - started


def _pg_instance(tmp: Path, name: str) -> DagsterInstance:
    admin = psycopg2.connect(dbname="postgres", connect_timeout=5, **PG)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    storage = {
        "postgres": {
            "postgres_db": {
                "username": PG["user"],
                "password": "",
                "hostname": PG["host"],
                "port": PG["port"],
                "db_name": name,
                "scheme": "postgresql+psycopg2",
            }
        }
    }
    home = tmp / name
    home.mkdir()
    return DagsterInstance.local_temp(
        str(home), overrides={"storage": storage, "telemetry": {"enabled": False}}
    )


def _drop(name: str) -> None:
    admin = psycopg2.connect(dbname="postgres", connect_timeout=5, **PG)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def _entry(materialization: AssetMaterialization) -> EventLogEntry:
    event = DagsterEvent(
        event_type_value=DagsterEventType.ASSET_MATERIALIZATION.value,
        event_specific_data=StepMaterializationData(materialization),
        job_name=RUNLESS_JOB_NAME,
    )
    return EventLogEntry(
        error_info=None,
        level=20,
        user_message="",
        run_id=RUNLESS_RUN_ID,
        timestamp=time.time(),
        dagster_event=event,
    )


def _seed_instance(instance: DagsterInstance, existing: int, now: datetime) -> float:
    started = time.perf_counter()
    segments = _segments(existing, existing, now - timedelta(days=1), SPREAD_DAYS)
    fingerprint = CURRENT_PROFILE.fingerprint()
    for start in range(0, existing, 1000):
        chunk = segments[start : start + 1000]
        instance.add_dynamic_partitions("segment", chunk)
        for key, metadata in ((PROVIDER_PROOF, {}), (PROXY, {"profile_fingerprint": fingerprint})):
            instance.event_log_storage.store_event_batch(
                [_entry(AssetMaterialization(key, partition=s, metadata=metadata)) for s in chunk]
            )
    return time.perf_counter() - started


def _prove(instance: DagsterInstance, segment_id: str) -> None:
    instance.add_dynamic_partitions("segment", [segment_id])
    instance.report_runless_asset_event(AssetMaterialization(PROVIDER_PROOF, partition=segment_id))
    record = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=PROVIDER_PROOF, asset_partitions=[segment_id]), limit=1
    ).records[0]
    target = AssetCheckEvaluationTargetMaterializationData(
        storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
    )
    for key in PROOF_CHECK_KEYS:
        instance.report_runless_asset_event(
            AssetCheckEvaluation(
                asset_key=key.asset_key,
                check_name=key.name,
                passed=True,
                partition=segment_id,
                target_materialization_data=target,
            )
        )


def _refresh(existing: int, now: datetime, tmp: Path) -> dict[str, Any]:
    name = f"robotrace_bench_{existing}_{uuid.uuid4().hex[:8]}"
    instance = _pg_instance(tmp, name)
    try:
        seed_s = _seed_instance(instance, existing, now)
        log(f"  {existing}: Dagster events seeded in {seed_s:.1f}s")
        cursor = RefreshCursor(fingerprint=CURRENT_PROFILE.fingerprint(), full_pass=False)
        cursor.checks, cursor.proxies = RefreshReader(instance).high_water()
        ticks = []
        for _ in range(REPEATS):
            for segment_id in _segments(NEW, uuid.uuid4().int, now, 0):
                _prove(instance, segment_id)
            reader = RefreshReader(instance)
            started = time.perf_counter()
            stale = refresh_tick(reader, cursor, CURRENT_PROFILE.fingerprint())
            ticks.append(time.perf_counter() - started)
            assert len(stale.missing) >= NEW, stale
            cursor.pending = {}  # as if the backfill had made them
            log(f"  {existing}: refresh tick {ticks[-1]:.2f}s, {reader.segment_reads} reads")
        return {"tick_s": ticks, "seed_s": seed_s}
    finally:
        instance.dispose()
        _drop(name)


def run(quick: bool, workdir: Path | None = None) -> dict[str, Any]:
    small, large = (1_000, 10_000) if quick else (10_000, 100_000)
    now = datetime.now(UTC)
    figures: dict[str, Any] = {"small": small, "large": large, "quick": quick}
    store = _open_store()
    try:
        for size in (small, large):
            res = _resource(store, f"bench-aggregates-{size}")
            seed_s = _seed_store(res, size, now)
            log(f"store seeded with {size} segments in {seed_s:.1f}s (0: kept from a past run)")
            figures[f"store_{size}"] = {"seed_s": seed_s, **_store_update(res, size, now)}
        figures["old_design_s"] = _old_design(_resource(store, f"bench-aggregates-{small}"))
    finally:
        store.stop()
    with tempfile.TemporaryDirectory(dir=workdir or WORK_DIR) as tmp:
        for size in (small, large):
            figures[f"refresh_{size}"] = _refresh(size, now, Path(tmp))
    return figures


def _ratio(figures: dict[str, Any], part: str, measure: str) -> float:
    small, large = figures["small"], figures["large"]
    return statistics.median(figures[f"{part}_{large}"][measure]) / statistics.median(
        figures[f"{part}_{small}"][measure]
    )


def targets(figures: dict[str, Any]) -> list[Target]:
    scope = f"{NEW} new on {figures['small']:,} vs {figures['large']:,} segments"
    out = []
    for part, measure, what in (
        ("store", "update_s", "review-set day update"),
        ("refresh", "tick_s", "derivative refresh tick"),
    ):
        ratio = _ratio(figures, part, measure)
        out.append(
            Target(
                "aggregates",
                scope,
                f"{what}: large / small (median)",
                f"<= {TARGET}",
                f"{ratio:.2f}",
                ratio <= TARGET,
                f"{ratio / TARGET:.2f}x the target",
            )
        )
    return out


def markdown(figures: dict[str, Any]) -> str:
    small, large = figures["small"], figures["large"]

    def med(part: str, size: int, measure: str) -> str:
        values = figures[f"{part}_{size}"][measure]
        return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"

    rows = [
        (
            "review-set day update (s)",
            med("store", small, "update_s"),
            med("store", large, "update_s"),
            f"{_ratio(figures, 'store', 'update_s'):.2f}",
        ),
        (
            "delivery pool: read that day (s)",
            med("store", small, "read_s"),
            med("store", large, "read_s"),
            f"{_ratio(figures, 'store', 'read_s'):.2f}",
        ),
        (
            "derivative refresh tick (s)",
            med("refresh", small, "tick_s"),
            med("refresh", large, "tick_s"),
            f"{_ratio(figures, 'refresh', 'tick_s'):.2f}",
        ),
        (
            "seeding: store records (s, 0 = kept)",
            f"{figures[f'store_{small}']['seed_s']:.0f}",
            f"{figures[f'store_{large}']['seed_s']:.0f}",
            "",
        ),
        (
            "seeding: Dagster events (s)",
            f"{figures[f'refresh_{small}']['seed_s']:.0f}",
            f"{figures[f'refresh_{large}']['seed_s']:.0f}",
            "",
        ),
    ]
    return "\n\n".join(
        [
            "## Aggregate updates after 100 new segments",
            f"{NEW} new segments (one capture day) on top of {small:,} and {large:,} existing "
            f"ones spread over {SPREAD_DAYS} days; median of {REPEATS} (range). The review-set "
            "update reads each new segment's clip reviews and writes its shards; the refresh "
            "tick reads the check and proxy events after its cursor and looks up the new "
            "segments only.",
            md_table(["measure", f"{small:,} existing", f"{large:,} existing", "ratio"], rows),
            f"For contrast, the old design (list and read every segment's clip reviews) took "
            f"{figures['old_design_s']:.1f} s at {small:,} segments, on every update.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.aggregates_bench")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    figures = run(args.quick)
    print(markdown(figures))
    print(
        md_table(
            ["measure", "measured", "met"],
            [(t.measure, t.measured, t.met) for t in targets(figures)],
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
