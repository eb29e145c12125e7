"""Benchmark: the ingest service under 32 concurrent clients, and finalize cost against size.

(1) Throughput. The service runs as its own uvicorn process (one worker) on loopback beside a
private SeaweedFS; its database is SQLite (the embedded default) and then PostgreSQL (a fresh
database on 127.0.0.1:5432, dropped afterwards). 32 asyncio clients in this process loop for a
fixed time over the whole RoboTrace flow: open an episode with a video slot, PUT a 1 KiB video
to the signed URL, finalize with bytes_total (HEAD, checks, session and segment envelopes and
their inbox entries written). The baseline is the same server's `GET /api/health` under the
same 32 clients in the same run: the ratio is episodes per second over health requests per
second. p50/p99 are per request.

(2) Finalize against size: one client, episodes whose video is 1 KiB or 1 GiB (--quick:
64 MiB); each big object after the first is a server-side copy of the first. Finalize reads no
bytes (a HEAD per artifact), so its latency must not grow with the size.

    python -m bench.ingest_bench [--quick]     prints the markdown section
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg2

from bench.common import GIB, MIB, WORK_DIR, Target, log, md_table, private_store, store_env
from robotrace_assets.api import admin
from robotrace_assets.api.db.session import make_engine, make_sessionmaker, migrate

CLIENTS = 32
KIB = 1024
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
TARGET_SIZE_RATIO = 2.0  # finalize at 1 GiB over finalize at 1 KiB
TARGET_FINALIZE_MS = 300.0  # "within a few hundred milliseconds whatever the sizes"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _key(database_url: str) -> str:
    migrate(database_url)
    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine)() as db, db.begin():
            tenant = admin.create_tenant(db, "bench")
            return admin.create_key(db, tenant.id)[1]
    finally:
        engine.dispose()


@contextmanager
def _service(env: dict[str, str], database_url: str) -> Iterator[str]:
    port = _free_port()
    env = {
        **env,
        "ROBOTRACE_API_DATABASE_URL": database_url,
        "ROBOTRACE_API_RATE_PER_S": "100000",
        "ROBOTRACE_API_RATE_BURST": "100000",
    }
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "robotrace_assets.api.app:create_app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the ingest service did not start")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


@contextmanager
def _postgres() -> Iterator[str | None]:
    try:
        conn = psycopg2.connect(dbname="postgres", connect_timeout=5, **PG)
    except psycopg2.OperationalError:
        log("PostgreSQL is not running on 127.0.0.1:5432: skipping that backend")
        yield None
        return
    conn.autocommit = True
    name = f"robotrace_ingest_bench_{uuid.uuid4().hex[:8]}"
    with conn.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:
        with conn.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {"p50": float("nan"), "p99": float("nan")}
    return {
        "p50": statistics.median(ordered) * 1000,
        "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    }


async def _health_worker(client: httpx.AsyncClient, until: float, out: list[float]) -> None:
    while time.monotonic() < until:
        started = time.perf_counter()
        response = await client.get("/api/health")
        out.append(time.perf_counter() - started)
        response.raise_for_status()


async def _episode_worker(
    client: httpx.AsyncClient, store: httpx.AsyncClient, until: float, out: dict[str, list[float]]
) -> None:
    video = os.urandom(KIB)
    while time.monotonic() < until:
        started = time.perf_counter()
        opened = await client.post("/api/ingest/episode", json={"request_uploads": ["video"]})
        out["open"].append(time.perf_counter() - started)
        body = opened.json()
        put = await store.put(
            body["upload_urls"][0]["url"], content=video, headers={"Content-Type": "video/mp4"}
        )
        put.raise_for_status()
        started = time.perf_counter()
        done = await client.post(
            f"/api/ingest/episode/{body['episode_id']}/finalize", json={"bytes_total": KIB}
        )
        out["finalize"].append(time.perf_counter() - started)
        if done.json()["verification"]["state"] != "pending":
            raise RuntimeError(f"finalize did not hand off: {done.text[:300]}")
        out["episodes"].append(1.0)


async def _load(url: str, key: str, seconds: float) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=CLIENTS * 2, max_keepalive_connections=CLIENTS * 2)
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) as client,
        httpx.AsyncClient(limits=limits, timeout=60) as store,
    ):
        health: list[float] = []
        until = time.monotonic() + seconds
        started = time.monotonic()
        await asyncio.gather(*(_health_worker(client, until, health) for _ in range(CLIENTS)))
        health_elapsed = time.monotonic() - started
        flow: dict[str, list[float]] = {"open": [], "finalize": [], "episodes": []}
        until = time.monotonic() + seconds
        started = time.monotonic()
        await asyncio.gather(*(_episode_worker(client, store, until, flow) for _ in range(CLIENTS)))
        flow_elapsed = time.monotonic() - started
    health_rate = len(health) / health_elapsed
    episode_rate = len(flow["episodes"]) / flow_elapsed
    return {
        "health_per_s": health_rate,
        "health_ms": _percentiles(health),
        "episodes_per_s": episode_rate,
        "episodes": len(flow["episodes"]),
        "open_ms": _percentiles(flow["open"]),
        "finalize_ms": _percentiles(flow["finalize"]),
        "ratio": episode_rate / health_rate,
    }


def _finalize_latency(
    url: str, key: str, s3: Any, bucket: str, size: int, repeats: int, root: Path
) -> list[float]:
    """Finalize of `repeats` fresh episodes whose video is `size` bytes (copies of one upload)."""
    source = root / f"video-{size}.bin"
    with open(source, "wb") as handle:
        remaining = size
        block = os.urandom(min(size, 8 * MIB))
        while remaining:
            handle.write(block[: min(len(block), remaining)])
            remaining -= min(len(block), remaining)
    first_key: str | None = None
    timings = []
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120
    ) as client:
        for _ in range(repeats):
            opened = client.post("/api/ingest/episode", json={"request_uploads": ["video"]}).json()
            target = opened["upload_urls"][0]["url"]
            object_key = target.split("?")[0].split(f"/{bucket}/", 1)[1]
            if first_key is None:
                with open(source, "rb") as body:
                    httpx.put(
                        target,
                        content=body,
                        headers={"Content-Type": "video/mp4", "Content-Length": str(size)},
                        timeout=900,
                    ).raise_for_status()
                first_key = object_key
            else:
                s3.copy_object(
                    Bucket=bucket,
                    Key=object_key,
                    CopySource={"Bucket": bucket, "Key": first_key},
                    ContentType="video/mp4",
                    MetadataDirective="REPLACE",
                )
            started = time.perf_counter()
            done = client.post(
                f"/api/ingest/episode/{opened['episode_id']}/finalize", json={"bytes_total": size}
            )
            timings.append(time.perf_counter() - started)
            if done.json()["verification"]["state"] != "pending":
                raise RuntimeError(f"finalize did not hand off: {done.text[:300]}")
    source.unlink()
    return timings


def run(quick: bool, workdir: Path | None = None) -> dict[str, Any]:
    seconds = 4.0 if quick else 15.0
    big = 64 * MIB if quick else GIB
    repeats = 3 if quick else 5
    base = Path(workdir) if workdir is not None else WORK_DIR
    base.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="ingest-", dir=base))
    result: dict[str, Any] = {"seconds": seconds, "big": big, "load": {}}
    try:
        with private_store("ingest") as store:
            env = store_env(store)
            backends = {"SQLite": f"sqlite:///{root / 'ingest.sqlite3'}"}
            with _postgres() as pg_url:
                if pg_url:
                    backends["PostgreSQL"] = pg_url
                for name, database_url in backends.items():
                    key = _key(database_url)
                    with _service(env, database_url) as url:
                        log(f"ingest: 32 clients for {seconds:.0f} s x 2 on {name}")
                        result["load"][name] = asyncio.run(_load(url, key, seconds))
                        if name == "SQLite":
                            log(f"ingest: finalize at 1 KiB and {big // MIB} MiB")
                            s3, bucket = store.client(), store.bucket
                            result["small_ms"] = [
                                t * 1000
                                for t in _finalize_latency(url, key, s3, bucket, KIB, repeats, root)
                            ]
                            result["big_ms"] = [
                                t * 1000
                                for t in _finalize_latency(url, key, s3, bucket, big, repeats, root)
                            ]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return result


def _size_label(size: int) -> str:
    return f"{size // GIB} GiB" if size >= GIB else f"{size // MIB} MiB"


def markdown(result: dict[str, Any]) -> str:
    rows = []
    for name, load in result["load"].items():
        rows.append(
            (
                name,
                f"{load['health_per_s']:.0f}",
                f"{load['health_ms']['p50']:.1f} / {load['health_ms']['p99']:.1f}",
                f"{load['episodes_per_s']:.1f} ({load['episodes']})",
                f"{load['ratio']:.3f}",
                f"{load['open_ms']['p50']:.1f} / {load['open_ms']['p99']:.1f}",
                f"{load['finalize_ms']['p50']:.1f} / {load['finalize_ms']['p99']:.1f}",
            )
        )
    small = statistics.median(result["small_ms"])
    large = statistics.median(result["big_ms"])
    sizes = [
        ("1 KiB", small, min(result["small_ms"]), max(result["small_ms"])),
        (_size_label(result["big"]), large, min(result["big_ms"]), max(result["big_ms"])),
    ]
    return "\n".join(
        [
            "## Ingest service: episodes per second and finalize against size",
            "",
            f"32 concurrent clients, {result['seconds']:.0f} s per measurement, one uvicorn "
            "worker; an episode is open + PUT 1 KiB video + finalize (checks and hand-off). "
            "Latencies p50 / p99 in ms.",
            "",
            md_table(
                [
                    "database",
                    "health req/s",
                    "health ms",
                    "episodes/s (count)",
                    "episodes/s / health req/s",
                    "open ms",
                    "finalize ms",
                ],
                rows,
            ),
            "",
            "Finalize latency, one client, median (min-max) in ms over fresh episodes:",
            "",
            md_table(
                ["video size", "finalize ms"],
                [(label, f"{med:.1f} ({lo:.1f}-{hi:.1f})") for label, med, lo, hi in sizes],
            ),
            "",
            f"Ratio {_size_label(result['big'])} / 1 KiB: {large / small:.2f}.",
        ]
    )


def targets(result: dict[str, Any]) -> list[Target]:
    small = statistics.median(result["small_ms"])
    large = statistics.median(result["big_ms"])
    label = _size_label(result["big"])
    return [
        Target(
            "ingest",
            f"finalize, {label} vs 1 KiB video",
            "latency ratio",
            f"<= {TARGET_SIZE_RATIO:.1f} (does not grow with size)",
            f"{large / small:.2f}",
            large / small <= TARGET_SIZE_RATIO,
            f"{large / small / TARGET_SIZE_RATIO:.1f}x over",
        ),
        Target(
            "ingest",
            f"finalize, {label} video",
            "median latency",
            f"<= {TARGET_FINALIZE_MS:.0f} ms",
            f"{large:.1f} ms",
            large <= TARGET_FINALIZE_MS,
            f"{large - TARGET_FINALIZE_MS:.0f} ms over",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    print(markdown(run(parser.parse_args().quick)))


if __name__ == "__main__":
    main()
