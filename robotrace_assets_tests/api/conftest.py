"""The ingest service under test: real uvicorn on a free loopback port, real SeaweedFS, and its
database in SQLite or in a fresh PostgreSQL database on 127.0.0.1:5432 (dropped afterwards)."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg2
import pytest
import uvicorn

from robotrace_assets.api import admin
from robotrace_assets.api.app import create_app
from robotrace_assets.api.config import ApiConfig
from robotrace_assets.api.db.session import make_engine, make_sessionmaker
from robotrace_assets.ingest import keys
from robotrace_assets.objectstore.client import S3Client
from robotrace_assets.objectstore.local import LocalObjectStore
from robotrace_assets.settings import Settings

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Service:
    url: str
    config: ApiConfig
    server: uvicorn.Server
    thread: threading.Thread
    bucket: str
    s3: S3Client
    _factory: object = field(repr=False, default=None)

    def db(self):
        return self._factory()  # type: ignore[operator]

    def tenant(self, name: str = "acme", terms: admin.TenantTerms | None = None) -> str:
        with self.db() as db, db.begin():
            return admin.create_tenant(db, name, terms).id

    def key(self, tenant_id: str, scopes: tuple[str, ...] = keys.DEFAULT_SCOPES) -> str:
        with self.db() as db, db.begin():
            return admin.create_key(db, tenant_id, scopes)[1]

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_service(config: ApiConfig, bucket: str, s3: S3Client) -> Service:
    app = create_app(config)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the ingest service did not start")
        time.sleep(0.02)
    factory = make_sessionmaker(make_engine(config.database_url))
    return Service(f"http://127.0.0.1:{port}", config, server, thread, bucket, s3, factory)


@pytest.fixture(scope="session")
def api_bucket(local_store: LocalObjectStore) -> str:
    name = f"api-{uuid.uuid4().hex[:12]}"
    local_store.client().create_bucket(Bucket=name)
    return name


def _store_settings(bucket: str) -> Settings:
    return Settings.from_env({**os.environ, "ROBOTRACE_BUCKET": bucket})


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    try:
        admin_conn = psycopg2.connect(dbname="postgres", connect_timeout=5, **PG)
    except psycopg2.OperationalError as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL is not running on 127.0.0.1:5432: {error}")
    admin_conn.autocommit = True
    name = f"robotrace_ingest_{uuid.uuid4().hex[:10]}"
    with admin_conn.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin_conn.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin_conn.close()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def service(
    request: pytest.FixtureRequest,
    local_store: LocalObjectStore,
    api_bucket: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Service]:
    """One service per database backend for the whole session (each test makes its own tenant)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('ingest') / 'ingest.sqlite3'}"
    else:
        url = request.getfixturevalue("pg_url")
    config = ApiConfig(
        database_url=url,
        settings=_store_settings(api_bucket),
        rate_per_s=1000.0,
        rate_burst=1000,
    )
    running = start_service(config, api_bucket, local_store.client())
    yield running
    running.stop()


@pytest.fixture(scope="session")
def sqlite_service(
    local_store: LocalObjectStore, api_bucket: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """SQLite only: for the end-to-end tests that run the Dagster graph (the backend is tested
    by the parametrized raw-HTTP tests)."""
    path: Path = tmp_path_factory.mktemp("ingest-e2e") / "ingest.sqlite3"
    config = ApiConfig(database_url=f"sqlite:///{path}", settings=_store_settings(api_bucket))
    running = start_service(config, api_bucket, local_store.client())
    yield running
    running.stop()


@pytest.fixture
def tenant_key(service: Service) -> tuple[str, str]:
    tenant = service.tenant()
    return tenant, service.key(tenant)
