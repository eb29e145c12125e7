"""PgBouncer in front of PostgreSQL: the files the topology writes, and a real PgBouncer in front of
a private PostgreSQL serving Dagster's storage, sharing server connections among Dagster's
one-connection-per-query clients, and surviving a PostgreSQL restart."""

from __future__ import annotations

import os
import stat
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.pool import NullPool

from robotrace_assets.topology import pooler
from robotrace_assets.topology.config import DEPLOY_DIR, PostgresTarget
from robotrace_assets_tests.topology import postgres
from robotrace_assets_tests.topology.conftest import free_port

UPSTREAM = PostgresTarget(host="10.0.0.5", port=5433, user="dagster", db="dagster")


def test_every_database_is_forwarded_in_session_mode(tmp_path: Path) -> None:
    ini = pooler.write_files(UPSTREAM, pooler.PoolerSettings(port=7432), tmp_path).read_text()
    assert "* = host=10.0.0.5 port=5433" in ini
    assert "pool_mode = session" in ini  # LISTEN/NOTIFY and session settings survive
    assert "listen_port = 7432" in ini
    assert "auth_type = trust" in ini  # the upstream has no password: nothing to check
    assert (tmp_path / "userlist.txt").read_text() == '"dagster" ""\n'


def test_a_password_means_scram_and_a_private_auth_file(tmp_path: Path) -> None:
    secret = replace(UPSTREAM, password='pa"ss word')
    ini = pooler.write_files(secret, pooler.PoolerSettings(), tmp_path).read_text()
    assert "auth_type = scram-sha-256" in ini
    assert "pa" not in ini.split("auth_type")[0] and 'pa"' not in ini  # never in the ini
    auth = tmp_path / "userlist.txt"
    assert auth.read_text() == '"dagster" "pa""ss word"\n'
    assert stat.S_IMODE(auth.stat().st_mode) == 0o600


def test_settings_come_from_the_environment() -> None:
    settings = pooler.PoolerSettings.from_env(
        {"PGBOUNCER_PORT": "7000", "PGBOUNCER_POOL_SIZE": "9"}
    )
    assert (settings.port, settings.pool_size) == (7000, 9)
    assert pooler.PoolerSettings.from_env({}) == pooler.PoolerSettings()


needs_pgbouncer = pytest.mark.skipif(
    not pooler.binary() and not os.environ.get("CI"), reason=pooler.INSTALL_HINT
)


@pytest.fixture
def bounced(
    private_pg: postgres.PrivatePostgres, tmp_path: Path
) -> Iterator[tuple[PostgresTarget, PostgresTarget]]:
    """(upstream, through PgBouncer) for a fresh database on the private server."""
    upstream = private_pg.target(f"robotrace_pooler_{uuid.uuid4().hex[:8]}")
    upstream.ensure_database()
    settings = pooler.PoolerSettings(port=free_port(), pool_size=4)
    component = pooler.component(upstream, settings, tmp_path / "pgbouncer")
    component.start()
    try:
        component.wait_healthy(30)
        yield upstream, pooler.clients_target(upstream, settings)
    finally:
        component.stop()
        upstream.drop_database()


def backend_pids(target: PostgresTarget, queries: int) -> set[int]:
    """Backend pids that `queries` one-connection-per-query clients landed on (Dagster's
    storage connects like this: SQLAlchemy's NullPool)."""
    url = f"postgresql+psycopg2://{target.user}@{target.host}:{target.port}/{target.db}"
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        pids = set()
        for _ in range(queries):
            with engine.connect() as connection:
                pids.add(connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())
        return pids
    finally:
        engine.dispose()


@pytest.mark.slow
@needs_pgbouncer
def test_short_lived_clients_share_server_connections(bounced) -> None:
    upstream, through = bounced
    assert len(backend_pids(upstream, 20)) == 20  # directly: a backend forked per connection
    assert len(backend_pids(through, 20)) <= 4  # through PgBouncer: at most the pool


@pytest.mark.slow
@needs_pgbouncer
def test_dagster_storage_works_through_pgbouncer(bounced, tmp_path: Path) -> None:
    from dagster import AssetKey, AssetMaterialization, DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    _, through = bounced
    home = tmp_path / "dagster_home"
    home.mkdir()
    db = {"hostname": through.host, "port": through.port, "username": through.user}
    # As deploy/dagster.yaml: psycopg2 named (SQLAlchemy 2.1 maps a bare URL to psycopg 3).
    db["scheme"] = "postgresql+psycopg2"
    storage = {"postgres": {"postgres_db": {**db, "db_name": through.db}}}
    (home / "dagster.yaml").write_text(
        yaml.safe_dump({"storage": storage, "telemetry": {"enabled": False}})
    )
    instance = DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
    try:
        for n in range(5):
            instance.report_runless_asset_event(AssetMaterialization("pooled", metadata={"n": n}))
        latest = instance.get_latest_materialization_event(AssetKey("pooled"))
        assert latest is not None and latest.asset_materialization is not None
        assert latest.asset_materialization.metadata["n"].value == 4
    finally:
        instance.dispose()


@pytest.mark.slow
@needs_pgbouncer
def test_clients_reconnect_after_postgresql_restarts(
    bounced, private_pg: postgres.PrivatePostgres
) -> None:
    _, through = bounced
    before = backend_pids(through, 3)
    private_pg.restart()  # every server connection behind PgBouncer is cut
    # PgBouncer drops the connections PostgreSQL closed (and checks a pooled one before a
    # client gets it): the first client after the restart gets a fresh one, never a dead one.
    after = backend_pids(through, 3)
    assert after and not after & before


def test_deploy_files_route_every_dagster_role_through_pgbouncer() -> None:
    """docker-compose: only the pgbouncer service names PostgreSQL itself; Kubernetes: the
    chart's storage points at the PgBouncer Service of deploy/k8s/pgbouncer.yaml."""
    compose = yaml.safe_load((DEPLOY_DIR / "docker" / "docker-compose.yaml").read_text())
    services = compose["services"]
    for name, service in services.items():
        host = (service.get("environment") or {}).get("DAGSTER_PG_HOST")
        if host is None or name == "pgbouncer":
            continue
        assert host.startswith("${PGBOUNCER_HOST:-pgbouncer}"), name
        assert "pgbouncer" in service.get("depends_on", {}) or name == "robotrace_bucket", name
    assert services["pgbouncer"]["environment"]["DAGSTER_PG_HOST"] == "${DAGSTER_PG_HOST:-postgres}"
    assert services["pgbouncer"]["command"][-1] == "robotrace_assets.topology.pooler"

    k8s = list(yaml.safe_load_all((DEPLOY_DIR / "k8s" / "pgbouncer.yaml").read_text()))
    service = next(doc for doc in k8s if doc["kind"] == "Service")
    values = yaml.safe_load((DEPLOY_DIR / "k8s" / "values.yaml").read_text())["postgresql"]
    assert values["postgresqlHost"] == service["metadata"]["name"]
    assert values["service"]["port"] == service["spec"]["ports"][0]["port"]
