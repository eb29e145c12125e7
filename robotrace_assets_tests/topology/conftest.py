"""The topology under test: a private PostgreSQL server and every process of
`robotrace deploy local`, started once per test module on free loopback ports."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from robotrace_assets.objectstore.local import find_free_port_block
from robotrace_assets.topology import pooler
from robotrace_assets.topology.config import TopologyConfig
from robotrace_assets.topology.topology import Topology
from robotrace_assets_tests.topology import postgres

# Production values (deploy/dagster.yaml) poll every 60 s and retry a failed launch after 60 s;
# the faults are the same at shorter intervals, and the test takes minutes instead of a quarter
# hour. The launch retries (3) must still outlast a code server restart under load (up to ~30 s
# here), so their delay stays 20 s.
FAST = {
    "run_coordinator": {"config": {"user_code_failure_retry_delay": 20}},
    "run_monitoring": {"poll_interval_seconds": 3, "start_timeout_seconds": 90},
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def private_pg() -> Iterator[postgres.PrivatePostgres]:
    if not postgres.available():
        if os.environ.get("CI"):
            raise RuntimeError("initdb/pg_ctl are needed for the topology tests")
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found")
    # Not under pytest's tmp dir: PostgreSQL runs as the postgres user, which must reach it.
    root = Path(tempfile.mkdtemp(prefix="robotrace-pg-"))
    root.chmod(0o755)
    server = postgres.PrivatePostgres(root / "cluster", free_port())
    server.init()
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def topology_config(root: Path, pg: postgres.PrivatePostgres, **extra: object) -> TopologyConfig:
    if not pooler.binary() and os.environ.get("CI"):
        raise RuntimeError(pooler.INSTALL_HINT + ": the topology runs behind it in CI")
    changes: dict = {
        "root": root,
        "store_port": find_free_port_block(),
        "api_port": free_port(),
        "code_port": free_port(),
        "webserver_port": free_port(),
        "pooler_port": free_port() if pooler.binary() else None,
        "postgres": pg.target(f"robotrace_topology_{uuid.uuid4().hex[:8]}"),
        "bucket": "robotrace-topology",
        "access_key_id": "robotrace-topology",
        "secret_access_key": "topology-" + uuid.uuid4().hex[:16],
        "sensor_interval_s": 2,
        "overrides": FAST,
    }
    changes.update(extra)
    return TopologyConfig(**changes)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def topology(
    private_pg: postgres.PrivatePostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Topology]:
    config = topology_config(tmp_path_factory.mktemp("topology"), private_pg)
    with Topology(config) as running:
        yield running
