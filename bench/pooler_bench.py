"""PgBouncer in front of Dagster's PostgreSQL storage: what a Dagster process's queries cost
directly and through the pooler, measured in the same run.

dagster-postgres opens a new connection for every query outside the webserver (SQLAlchemy's
NullPool). The workload is a real DagsterInstance on PostgreSQL doing what the daemon and run
workers do most: read the run queue, write an asset event, read the latest materialization.
Each is timed directly against PostgreSQL and through PgBouncer (session pooling, the
topology's own configuration), alternating rounds, at 1 and 8 threads; PostgreSQL's own
`pg_stat_database.sessions` counts the backends forked for them.

    python -m bench.run --only pooler
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from bench.common import WORK_DIR, Spread, Target, log, md_table
from robotrace_assets.topology import pooler
from robotrace_assets.topology.config import PostgresTarget

FULL = {"rounds": 5, "ops": 120, "threads": (1, 8)}
QUICK = {"rounds": 2, "ops": 30, "threads": (1, 8)}
SESSIONS_TARGET = 0.05  # backends forked per Dagster storage call through PgBouncer


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_pooler(upstream: PostgresTarget, home: Path) -> Iterator[PostgresTarget]:
    settings = pooler.PoolerSettings(port=_free_port())
    component = pooler.component(upstream, settings, home / "pgbouncer")
    component.start()
    try:
        component.wait_healthy(30)
        yield pooler.clients_target(upstream, settings)
    finally:
        component.stop()


def open_instance(target: PostgresTarget, home: Path) -> Any:
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    home.mkdir(parents=True, exist_ok=True)
    db = {
        "hostname": target.host,
        "port": target.port,
        "username": target.user,
        "db_name": target.db,
        "scheme": "postgresql+psycopg2",  # as deploy/dagster.yaml
    }
    config = {"storage": {"postgres": {"postgres_db": db}}, "telemetry": {"enabled": False}}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))


def one_op(instance: Any, n: int) -> None:
    """The daemon's and a run worker's staple: queue read, event write, latest read."""
    from dagster import AssetKey, AssetMaterialization, DagsterRunStatus, RunsFilter

    instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.QUEUED]), limit=10)
    key = f"bench_pooler_{n % 16}"
    instance.report_runless_asset_event(AssetMaterialization(key, metadata={"n": n}))
    instance.get_latest_materialization_event(AssetKey(key))


CALLS_PER_OP = 3  # Dagster storage calls; each opens one or more connections


def sessions(upstream: PostgresTarget) -> int:
    """Backends PostgreSQL has started for the database so far (this reader's own included)."""
    time.sleep(0.5)  # exiting backends flush their statistics as they go
    connection = upstream.connect()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT sessions FROM pg_stat_database WHERE datname = %s", (upstream.db,)
            )
            row = cursor.fetchone()
            return int(row[0]) if row else 0
    finally:
        connection.close()


def measure(instance: Any, upstream: PostgresTarget, ops: int, threads: int) -> tuple[float, float]:
    """(ms per op, backends forked per storage call) for `ops` ops over `threads` threads."""
    before = sessions(upstream)
    began = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda n: one_op(instance, n), range(ops)))
    took = time.perf_counter() - began
    forked = sessions(upstream) - before - 1  # minus the reader's own session
    return took * 1000 / ops, max(forked, 0) / (ops * CALLS_PER_OP)


def run(quick: bool = False, workdir: Path | None = None) -> dict[str, Any]:
    plan = QUICK if quick else FULL
    root = workdir or WORK_DIR
    root.mkdir(parents=True, exist_ok=True)
    upstream = PostgresTarget(db=f"robotrace_bench_pooler_{uuid.uuid4().hex[:8]}")
    upstream.ensure_database()
    figures: dict[str, Any] = {"quick": quick, "plan": plan, "rows": {}, "version": ""}
    try:
        with (
            tempfile.TemporaryDirectory(dir=root) as tmp,
            running_pooler(upstream, Path(tmp)) as through,
        ):
            figures["version"] = _pooler_version()
            direct = open_instance(upstream, Path(tmp) / "direct")
            pooled = open_instance(through, Path(tmp) / "pooled")
            one_op(direct, 0)  # schema and first connections before timing
            for threads in plan["threads"]:
                samples: dict[str, list[tuple[float, float]]] = {"direct": [], "pooled": []}
                for round_ in range(plan["rounds"]):
                    log(f"pooler: {threads} thread(s), round {round_ + 1}/{plan['rounds']}")
                    order = ("direct", "pooled") if round_ % 2 == 0 else ("pooled", "direct")
                    for name in order:
                        instance = direct if name == "direct" else pooled
                        samples[name].append(measure(instance, upstream, plan["ops"], threads))
                figures["rows"][threads] = samples
            direct.dispose()
            pooled.dispose()
    finally:
        upstream.drop_database()
    return figures


def _pooler_version() -> str:
    import subprocess

    found = pooler.binary()
    if not found:
        return "not installed"
    out = subprocess.run([found, "--version"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else "?"


def _spreads(samples: list[tuple[float, float]]) -> tuple[Spread, Spread]:
    return Spread.of([s[0] for s in samples]), Spread.of([s[1] for s in samples])


def targets(figures: dict[str, Any]) -> list[Target]:
    out = []
    for threads, samples in figures["rows"].items():
        direct_ms, _ = _spreads(samples["direct"])
        pooled_ms, pooled_forks = _spreads(samples["pooled"])
        ratio = pooled_ms.median / direct_ms.median
        out.append(
            Target(
                "pooler",
                f"Dagster storage calls, {threads} thread(s)",
                "PostgreSQL backends forked per storage call through PgBouncer",
                f"<= {SESSIONS_TARGET}",
                f"{pooled_forks.median:.3f}",
                pooled_forks.median <= SESSIONS_TARGET,
                f"{pooled_forks.median / SESSIONS_TARGET:.1f}x the target",
            )
        )
        out.append(
            Target(
                "pooler",
                f"Dagster storage calls, {threads} thread(s)",
                "time per op through PgBouncer / directly",
                "<= 1.0",
                f"{ratio:.2f}",
                ratio <= 1.0,
                f"{ratio:.2f}x",
            )
        )
    return out


def markdown(figures: dict[str, Any]) -> str:
    plan = figures["plan"]
    rows = []
    for threads, samples in figures["rows"].items():
        direct_ms, direct_forks = _spreads(samples["direct"])
        pooled_ms, pooled_forks = _spreads(samples["pooled"])
        rows.append(
            (
                str(threads),
                direct_ms.fmt(2),
                pooled_ms.fmt(2),
                f"{pooled_ms.median / direct_ms.median:.2f}",
                f"{direct_forks.median:.2f}",
                f"{pooled_forks.median:.3f}",
            )
        )
    return "\n".join(
        [
            "## PgBouncer in front of Dagster's storage",
            "",
            "A real DagsterInstance on this machine's PostgreSQL; one op is a run-queue read, an "
            "asset event write and a latest-materialization read (3 storage calls, each opening "
            "one or more new connections: dagster-postgres uses SQLAlchemy's NullPool). "
            f"{plan['rounds']} alternating rounds of {plan['ops']} ops each, directly and "
            f"through PgBouncer ({figures['version']}, session pooling, the topology's own "
            "configuration from `robotrace_assets/topology/pooler.py`). Backends forked: "
            "PostgreSQL's `pg_stat_database.sessions` for the database.",
            "",
            md_table(
                [
                    "threads",
                    "ms per op, directly",
                    "ms per op, through PgBouncer",
                    "ratio",
                    "backends forked per call, directly",
                    "through PgBouncer",
                ],
                rows,
            ),
            "",
            "Every direct connection forks a PostgreSQL backend (about 105 a second under a "
            "500-segment burst, section 12, measured without PgBouncer); through PgBouncer the "
            "forks are the pool's few server connections, opened once and reused.",
        ]
    )
