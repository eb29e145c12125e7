"""What the local topology is made of: ports, directories, PostgreSQL, and the instance
configuration derived from deploy/dagster.yaml.

The instance file every process reads is deploy/dagster.yaml with the run launcher swapped:
Docker is replaced by a launcher that starts each run as its own local process
(robotrace_assets.topology.launcher). Storage, the run queue and its tag limits, run
monitoring and retries are the production ones. Tests may shorten intervals (`overrides`), and
the header of the written file lists every such change.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from robotrace_assets.settings import PROJECT_ROOT, Settings
from robotrace_assets.topology.priority import NICENESS_ENV

DEPLOY_DIR = PROJECT_ROOT / "deploy"
PRODUCTION_INSTANCE = DEPLOY_DIR / "dagster.yaml"
LOCAL_WORKSPACE = DEPLOY_DIR / "local" / "workspace.yaml"
LOCATION_NAME = "robotrace_assets"
CODE_PORT_ENV = "ROBOTRACE_CODE_SERVER_PORT"  # deploy/local/workspace.yaml reads it
# Dagster's opt-in (dagster PR 29288): a ranged run's planned events carry its partition subset.
PLANNED_EVENTS_ENV = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"

LOCAL_RUN_LAUNCHER = {
    "module": "robotrace_assets.topology.launcher",
    "class": "LocalProcessRunLauncher",
}


@dataclass(frozen=True)
class PostgresTarget:
    """The DAGSTER_PG_* variables deploy/dagster.yaml reads, with local defaults."""

    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"
    password: str = field(default="", repr=False)
    db: str = "robotrace_dagster"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PostgresTarget:
        env = os.environ if env is None else env
        default = cls()
        return cls(
            host=env.get("DAGSTER_PG_HOST") or default.host,
            port=int(env.get("DAGSTER_PG_PORT") or default.port),
            user=env.get("DAGSTER_PG_USER") or default.user,
            password=env.get("DAGSTER_PG_PASSWORD") or "",
            db=env.get("DAGSTER_PG_DB") or default.db,
        )

    def env(self) -> dict[str, str]:
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USER": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": self.db,
        }

    def connect(self, db: str | None = None) -> Any:
        import psycopg2

        return psycopg2.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=db or self.db,
            connect_timeout=5,
        )

    def ensure_database(self) -> bool:
        """Create the database if it is missing (Dagster creates its tables itself); True if
        it was created."""
        admin = self.connect("postgres")
        admin.autocommit = True
        try:
            with admin.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.db,))
                if cursor.fetchone():
                    return False
                cursor.execute(f'CREATE DATABASE "{self.db}"')
                return True
        finally:
            admin.close()

    def drop_database(self) -> None:
        """Drop the database (benchmarks clean up after themselves); connections are cut."""
        admin = self.connect("postgres")
        admin.autocommit = True
        try:
            with admin.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')
        finally:
            admin.close()


@dataclass(frozen=True)
class TopologyConfig:
    root: Path  # logs, Dagster home, the store's data, the ingest database
    store_port: int  # first of the object store's block of ports (objectstore.local)
    api_port: int
    code_port: int
    webserver_port: int
    postgres: PostgresTarget
    bucket: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    sensor_interval_s: int = 30
    # PgBouncer's port in front of `postgres` for every Dagster process; None: connect directly.
    pooler_port: int | None = None
    # Shorter intervals for tests (run monitoring poll, retry delays); empty for production.
    overrides: Mapping[str, Any] = field(default_factory=dict)
    extra_env: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, root: Path | None = None, **changes: Any) -> TopologyConfig:
        settings = Settings.from_env()
        env = os.environ
        config = cls(
            root=(root or settings.data_dir / "topology").resolve(),
            store_port=settings.local_s3_port,
            api_port=int(env.get("ROBOTRACE_API_PORT") or 8780),
            code_port=int(env.get(CODE_PORT_ENV) or 4000),
            webserver_port=3000,
            postgres=PostgresTarget.from_env(),
            bucket=settings.bucket,
            access_key_id=settings.access_key_id,
            secret_access_key=settings.secret_access_key,
            sensor_interval_s=int(env.get("ROBOTRACE_SENSOR_INTERVAL_S") or 30),
            pooler_port=int(env.get("PGBOUNCER_PORT") or 6432),
        )
        return _replace(config, **changes)

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster_home"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def dagster_postgres(self) -> PostgresTarget:
        """Where Dagster's processes (and their run workers) reach instance storage: PgBouncer
        when it is on, else PostgreSQL itself. Database creation and observers in tests use
        `postgres` directly."""
        if self.pooler_port is None:
            return self.postgres
        return replace(self.postgres, host="127.0.0.1", port=self.pooler_port)

    @property
    def store_url(self) -> str:
        return f"http://127.0.0.1:{self.store_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def webserver_url(self) -> str:
        return f"http://127.0.0.1:{self.webserver_port}"

    def environment(self) -> dict[str, str]:
        """The environment of every process: instance storage, object store, ports."""
        env = {
            **os.environ,
            **self.dagster_postgres.env(),
            "DAGSTER_HOME": str(self.dagster_home),
            CODE_PORT_ENV: str(self.code_port),
            "ROBOTRACE_S3_ENDPOINT_URL": self.store_url,
            "ROBOTRACE_BUCKET": self.bucket,
            "ROBOTRACE_S3_ACCESS_KEY_ID": self.access_key_id,
            "ROBOTRACE_S3_SECRET_ACCESS_KEY": self.secret_access_key,
            "ROBOTRACE_LOCAL_S3_PORT": str(self.store_port),
            "ROBOTRACE_DATA_DIR": str(self.root / "data"),
            "ROBOTRACE_API_PORT": str(self.api_port),
            "ROBOTRACE_SENSOR_INTERVAL_S": str(self.sensor_interval_s),
            # As deploy/ sets it: one planned event per asset for a batched run, not one per
            # asset and segment (run creation ~5x cheaper under a burst).
            PLANNED_EVENTS_ENV: "1",
            # Run workers yield the shared cores to the daemon and the code server.
            NICENESS_ENV: "10",
            **self.extra_env,
        }
        env.pop("ROBOTRACE_R2_ACCOUNT_ID", None)  # the local store, never R2, whatever is set
        return env

    def instance_config(self) -> dict[str, Any]:
        return derive_instance_config(PRODUCTION_INSTANCE, self.overrides)

    def write_instance(self) -> Path:
        self.dagster_home.mkdir(parents=True, exist_ok=True)
        path = self.dagster_home / "dagster.yaml"
        changes = ["run_launcher: each run is a local process (LocalProcessRunLauncher)"]
        changes += [f"{key}: {value!r}" for key, value in _flatten(self.overrides)]
        header = (
            f"# Written by `robotrace deploy local` from {PRODUCTION_INSTANCE.name} in deploy/.\n"
            "# Changed from it:\n" + "".join(f"#   {line}\n" for line in changes)
        )
        path.write_text(header + yaml.safe_dump(self.instance_config(), sort_keys=False))
        return path


def derive_instance_config(source: Path, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """deploy/dagster.yaml with the local run launcher and any `overrides` merged in."""
    config = yaml.safe_load(source.read_text())
    config["run_launcher"] = dict(LOCAL_RUN_LAUNCHER)
    return _merge(config, overrides)


def _merge(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _flatten(changes: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in changes.items():
        if isinstance(value, Mapping):
            out += _flatten(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value))
    return out


def _replace(config: TopologyConfig, **changes: Any) -> TopologyConfig:
    return replace(config, **changes) if changes else config
