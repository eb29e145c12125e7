"""The local topology: six supervised processes started in dependency order.

pooler       pgbouncer (in front of PostgreSQL; left out when   connect + SELECT 1 through it
             the config has no pooler port)
store        weed mini (objectstore.local's command line)      HEAD bucket
api          robotrace api serve                                GET /api/health
code_server  dagster code-server start -m robotrace_assets...   gRPC ping + list repositories
webserver    dagster-webserver -w deploy/local/workspace.yaml   GET /server_info
daemon       dagster-daemon run -w deploy/local/workspace.yaml  heartbeats of every daemon

with Topology(TopologyConfig.from_env()) as topology:   # starts all, waits until healthy
    topology.kill("daemon"); topology.start_component("daemon")
    topology.restart("store")
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

from robotrace_assets.objectstore.client import S3Client, make_client
from robotrace_assets.objectstore.local import LocalObjectStore
from robotrace_assets.settings import PROJECT_ROOT
from robotrace_assets.topology import health
from robotrace_assets.topology import pooler as pgbouncer
from robotrace_assets.topology.config import LOCAL_WORKSPACE, LOCATION_NAME, TopologyConfig
from robotrace_assets.topology.process import Component, TopologyError, python_module, venv_script

ORDER = ("pooler", "store", "api", "code_server", "webserver", "daemon")


class Topology:
    def __init__(self, config: TopologyConfig) -> None:
        self.config = config
        self._instance: Any = None
        env = config.environment()
        self.components: dict[str, Component] = {
            name: Component(
                name=name,
                command=command,
                probe=probe,
                log=config.logs / f"{name}.log",
                env=env,
                cwd=PROJECT_ROOT,
            )
            for name, (command, probe) in self._definitions().items()
        }
        self.order = tuple(name for name in ORDER if name in self.components)

    # --- what each component is ------------------------------------------------------------
    def _definitions(self) -> dict[str, tuple[list[str], Callable[[], bool]]]:
        c = self.config
        workspace = str(LOCAL_WORKSPACE)
        dagster = venv_script("dagster")
        pooler = {}
        if c.pooler_port is not None:
            command = pgbouncer.command(self.pooler_dir / "pgbouncer.ini")
            pooler["pooler"] = (command, health.postgres_ok(c.dagster_postgres))
        return {
            **pooler,
            "store": (self._store_command(), health.bucket_ok(self.s3_client, c.bucket)),
            "api": (
                python_module("robotrace_assets.cli", "api", "serve", "--port", str(c.api_port)),
                health.http_ok(f"{c.api_url}/api/health"),
            ),
            "code_server": (
                [
                    dagster,
                    "code-server",
                    "start",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(c.code_port),
                    "-m",
                    "robotrace_assets.definitions",
                    "--location-name",
                    LOCATION_NAME,
                ],
                health.grpc_serving(c.code_port),
            ),
            "webserver": (
                [
                    venv_script("dagster-webserver"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(c.webserver_port),
                    "-w",
                    workspace,
                ],
                health.http_ok(f"{c.webserver_url}/server_info"),
            ),
            "daemon": (
                [venv_script("dagster-daemon"), "run", "-w", workspace],
                health.daemon_heartbeats(
                    self.instance, lambda: self.components["daemon"].started_at
                ),
            ),
        }

    @property
    def pooler_dir(self) -> Path:
        return self.config.root / "pgbouncer"

    def local_store(self) -> LocalObjectStore:
        c = self.config
        return LocalObjectStore(
            root=c.root / "objectstore",
            s3_port=c.store_port,
            bucket=c.bucket,
            access_key_id=c.access_key_id,
            secret_access_key=c.secret_access_key,
        )

    def _store_command(self) -> list[str]:
        store = self.local_store()
        (store.root / "weed").mkdir(parents=True, exist_ok=True)
        return store.command(store._write_identities())  # the same command line

    def s3_client(self) -> S3Client:
        return make_client(self.local_store().settings())

    def instance(self) -> Any:
        """The Dagster instance every process uses (PostgreSQL), opened in this process."""
        if self._instance is None:
            from dagster import DagsterInstance
            from dagster._core.instance.ref import InstanceRef

            os.environ.update(self.config.postgres.env())  # dagster.yaml reads them with env:
            ref = InstanceRef.from_dir(str(self.config.dagster_home))
            self._instance = DagsterInstance.from_ref(ref)
        return self._instance

    # --- lifecycle --------------------------------------------------------------------------
    def prepare(self) -> None:
        """Instance file, database, directories: everything a process needs before it starts."""
        self.config.logs.mkdir(parents=True, exist_ok=True)
        (self.config.root / "data").mkdir(parents=True, exist_ok=True)  # ingest database, alerts
        self.config.write_instance()
        self.config.postgres.ensure_database()
        if self.config.pooler_port is not None:
            # PGBOUNCER_* sizes the pool; address and port are the ones clients are given.
            settings = replace(
                pgbouncer.PoolerSettings.from_env(),
                listen_host="127.0.0.1",
                port=self.config.pooler_port,
            )
            pgbouncer.write_files(self.config.postgres, settings, self.pooler_dir)

    def start(self, only: tuple[str, ...] | None = None) -> dict[str, float]:
        """Start the components in order, each healthy before the next; seconds each took."""
        self.prepare()
        took: dict[str, float] = {}
        try:
            for name in only or self.order:
                took[name] = self.start_component(name)
        except BaseException:
            self.stop()
            raise
        return took

    def start_component(self, name: str, timeout_s: float | None = None) -> float:
        component = self.components[name]
        component.start()
        return component.wait_healthy(timeout_s)

    def stop(self) -> None:
        for name in reversed(self.order):
            self.components[name].stop()
        if self._instance is not None:
            self._instance.dispose()
            self._instance = None

    def kill(self, name: str) -> None:
        """kill -9 the component's main process, as a crash would."""
        self.components[name].kill()

    def stop_component(self, name: str) -> None:
        self.components[name].stop()

    def restart(self, name: str, timeout_s: float | None = None) -> float:
        self.stop_component(name)
        return self.start_component(name, timeout_s)

    def wait_healthy(self, names: tuple[str, ...] | None = None, timeout_s: float = 120.0) -> None:
        for name in names or self.order:
            self.components[name].wait_healthy(timeout_s)

    def crashed(self) -> dict[str, int | None]:
        """Components that exited without being told to: name -> exit code."""
        return {
            name: c.exit_code()
            for name, c in self.components.items()
            if c.process is not None and not c.expected_down and not c.running()
        }

    def supervise(self, poll_s: float = 1.0) -> Iterator[list[str]]:
        """Every `poll_s`, yield the components that crashed since the last yield (each crash
        once: a component started again and crashing again is reported again)."""
        reported: set[tuple[str, int]] = set()
        while True:
            fresh = []
            for name in self.crashed():
                pid = self.components[name].pid or 0
                if (name, pid) not in reported:
                    reported.add((name, pid))
                    fresh.append(name)
            yield fresh
            time.sleep(poll_s)

    def __enter__(self) -> Topology:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def interrupt_on_sigterm() -> None:
    """SIGTERM stops `robotrace deploy local` the way Ctrl+C does (raises KeyboardInterrupt)."""

    def handler(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


__all__ = ["ORDER", "Topology", "TopologyError", "interrupt_on_sigterm"]
