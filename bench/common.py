"""Shared helpers: a private object store, timing statistics, S3 call accounting, markdown.

Every benchmark starts its own SeaweedFS under bench/.work/ (git-ignored) on free ports, so a
run never touches the developer's store or a parallel test session, and always stops it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from robotrace_assets.objectstore.client import S3Client, client_config
from robotrace_assets.objectstore.local import (
    LocalObjectStore,
    ObjectStoreError,
    find_free_port_block,
)

WORK_DIR = Path(__file__).resolve().parent / ".work"
REPO_ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
GIB = 1024 * MIB
MB = 1_000_000  # throughput is quoted in decimal MB/s, as hashlib speeds usually are
STORE_START_ATTEMPTS = 3  # a private SeaweedFS start that loses a port race is retried

_STARTED = time.monotonic()


def log(message: str) -> None:
    """Progress on stderr with elapsed time, so stdout stays free for the report."""
    elapsed = time.monotonic() - _STARTED
    print(f"[bench {elapsed:7.1f}s] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Spread:
    """Median and range of repeated measurements (the range shows how noisy the machine was)."""

    median: float
    low: float
    high: float
    count: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            raise ValueError("no measurements")
        return cls(statistics.median(values), min(values), max(values), len(values))

    def fmt(self, digits: int = 2) -> str:
        return f"{self.median:.{digits}f} ({self.low:.{digits}f}-{self.high:.{digits}f})"


def mb_per_s(size: int, seconds: float) -> float:
    return size / MB / seconds if seconds > 0 else float("inf")


def human_size(size: int) -> str:
    if size >= GIB and size % GIB == 0:
        return f"{size // GIB} GiB"
    return f"{size / MIB:.0f} MiB"


def verdict(met: bool) -> str:
    return "met" if met else "**missed**"


@dataclass(frozen=True)
class Target:
    """One performance target and what this run measured against it."""

    benchmark: str
    scope: str  # e.g. the object size or bucket sizes it applies to
    measure: str
    target: str
    measured: str
    met: bool
    shortfall: str = ""  # how far off, for a miss

    def result(self) -> str:
        return verdict(True) if self.met else f"{verdict(False)} ({self.shortfall})"

    def row(self) -> tuple[str, str, str, str, str]:
        return (self.scope, self.measure, self.target, self.measured, self.result())


def targets_table(targets: Sequence[Target], with_benchmark: bool = False) -> str:
    headers = ["scope", "measure", "target", "measured", "result"]
    if with_benchmark:
        return md_table(["benchmark", *headers], [(t.benchmark, *t.row()) for t in targets])
    return md_table(headers, [t.row() for t in targets])


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = [
        "| " + " | ".join(headers) + " |",
        "| " + " | ".join("---" for _ in headers) + " |",
    ]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process (the SeaweedFS server, to see the CPU split)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    # Fields after the command name start at index 3 (state), so utime/stime are 11 and 12.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_s() -> float:
    """CPU seconds all processes on the machine have used since boot (busy time, all cores):
    the difference over an interval, minus our own, is what other tenants took meanwhile."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...: idle and iowait are not busy.
    busy = sum(fields[:8]) - fields[3] - fields[4]
    return busy / os.sysconf("SC_CLK_TCK")


@contextmanager
def private_store(name: str) -> Iterator[LocalObjectStore]:
    """A fresh SeaweedFS with random credentials in a temp dir; stopped and deleted afterwards."""
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    # Absolute path: weed runs with cwd=root and is given paths under it.
    root = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=WORK_DIR)).resolve()
    store: LocalObjectStore | None = None
    try:
        for attempt in range(1, STORE_START_ATTEMPTS + 1):
            store = LocalObjectStore(
                root=root / "objectstore",
                s3_port=find_free_port_block(),
                bucket=f"bench-{name}",
                access_key_id=f"bench-{secrets.token_hex(4)}",
                secret_access_key=secrets.token_hex(20),
            )
            started = time.monotonic()
            try:
                store.start()
                break
            except ObjectStoreError as error:
                # The port block is checked before weed binds it, and it lies partly in the
                # kernel's ephemeral range: an outgoing connection can take a port meanwhile.
                # start() has stopped the server; try a fresh block in a fresh directory.
                lines = str(error).splitlines()
                lost_port = [line for line in lines if "address already in use" in line]
                if attempt == STORE_START_ATTEMPTS or not lost_port:
                    raise
                log(f"SeaweedFS for {name} lost a port ({lost_port[0].strip()}); other ports")
                shutil.rmtree(root / "objectstore", ignore_errors=True)
        assert store is not None  # the loop either broke out with a running store or raised
        log(f"SeaweedFS for {name} up at {store.endpoint_url} in {time.monotonic() - started:.1f}s")
        yield store
    finally:
        if store is not None:
            store.stop()
        shutil.rmtree(root, ignore_errors=True)
        log(f"SeaweedFS for {name} stopped and its data removed")


def pooled_client(store: LocalObjectStore, max_pool_connections: int = 64) -> S3Client:
    """A client for bulk setup work: the default pool (16) would throttle 32 writer threads."""
    settings = store.settings()
    return boto3.session.Session().client(
        "s3",
        endpoint_url=settings.endpoint_url,
        region_name=settings.region,
        aws_access_key_id=settings.access_key_id,
        aws_secret_access_key=settings.secret_access_key,
        config=client_config(max_pool_connections=max_pool_connections),
    )


def store_env(store: LocalObjectStore) -> dict[str, str]:
    """Environment that makes Settings.from_env() point at this store (for child processes);
    credentials travel in the environment, not on the command line."""
    settings = store.settings()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROBOTRACE_")}
    env.update(
        {
            "ROBOTRACE_S3_ENDPOINT_URL": settings.endpoint_url,
            "ROBOTRACE_BUCKET": store.bucket,
            "ROBOTRACE_S3_ACCESS_KEY_ID": settings.access_key_id,
            "ROBOTRACE_S3_SECRET_ACCESS_KEY": settings.secret_access_key,
            "ROBOTRACE_S3_REGION": settings.region,
            "ROBOTRACE_DATA_DIR": str(store.root.parent),
        }
    )
    return env


@dataclass
class CallStats:
    """S3 requests a client made, by operation: count and seconds spent waiting on them."""

    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def total_seconds(self) -> float:
        return sum(self.seconds.values())


class CallRecorder:
    """Counts and times every S3 call on a client through botocore's event hooks, so a tick's
    cost can be split into requests (LIST/GET/HEAD) and client-side Python work."""

    def __init__(self, client: S3Client) -> None:
        self._lock = threading.Lock()
        self.stats = CallStats()
        client.meta.events.register("before-call.s3", self._before)
        client.meta.events.register("after-call.s3", self._after)

    def reset(self) -> CallStats:
        with self._lock:
            previous, self.stats = self.stats, CallStats()
        return previous

    def _before(self, context: dict[str, Any], **_: Any) -> None:
        context["bench_started"] = time.perf_counter()

    def _after(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        started = context.get("bench_started")
        if started is None:
            return
        with self._lock:
            self.stats.counts[model.name] += 1
            self.stats.seconds[model.name] += time.perf_counter() - started
