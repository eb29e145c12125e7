"""PgBouncer between every Dagster process and PostgreSQL.

Why: dagster-postgres opens a new connection for every query outside the webserver
(SQLAlchemy's NullPool), and each one is a backend process forked on the database host: about
105 a second under a 500-segment burst. PgBouncer keeps a few server connections open and hands
them to those short-lived clients, so a client connect costs PgBouncer a socket, not PostgreSQL
a fork.

Session pooling, not transaction pooling: Dagster's run-event watcher holds LISTEN/NOTIFY
sessions and SQLAlchemy sessions set `statement_timeout` for the session. A server connection
goes back to the pool when its client disconnects, after `DISCARD ALL`.

The same files serve `robotrace deploy local` (a supervised process) and docker-compose (the
`pgbouncer` service runs `python -m robotrace_assets.topology.pooler`, which writes them from
DAGSTER_PG_* and PGBOUNCER_* and replaces itself with pgbouncer).
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from robotrace_assets.topology import health
from robotrace_assets.topology.config import PostgresTarget
from robotrace_assets.topology.process import Component, TopologyError

BINARY_CANDIDATES = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")
INSTALL_HINT = "PgBouncer is not installed: `apt-get install pgbouncer` (Debian/Ubuntu)"


@dataclass(frozen=True)
class PoolerSettings:
    """What the pool looks like; defaults sized for one Dagster deployment."""

    listen_host: str = "127.0.0.1"
    port: int = 6432
    # Server connections per database and user. Run workers, the daemon's threads and the code
    # server each hold a client only for one query, so a small pool serves a burst; the
    # webserver's event watchers hold theirs for as long as a UI page follows a run.
    pool_size: int = 40
    max_client_conn: int = 2000
    # A client waits this long for a free server connection before it gets an error.
    query_wait_timeout_s: int = 120
    # TLS to PostgreSQL: libpq's default, explicit because PgBouncer before 1.20 (Debian 12 ships
    # 1.18) disables it; `require` (or verify-full) for a managed server.
    server_tls_sslmode: str = "prefer"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> PoolerSettings:
        env = dict(os.environ) if env is None else env
        default = cls()
        return cls(
            listen_host=env.get("PGBOUNCER_LISTEN_HOST") or default.listen_host,
            port=int(env.get("PGBOUNCER_PORT") or default.port),
            pool_size=int(env.get("PGBOUNCER_POOL_SIZE") or default.pool_size),
            max_client_conn=int(env.get("PGBOUNCER_MAX_CLIENT_CONN") or default.max_client_conn),
            server_tls_sslmode=env.get("PGBOUNCER_SERVER_TLS_SSLMODE")
            or default.server_tls_sslmode,
        )


def render_ini(upstream: PostgresTarget, settings: PoolerSettings, auth_file: Path) -> str:
    """pgbouncer.ini: every database name is forwarded to the upstream server."""
    auth_type = "scram-sha-256" if upstream.password else "trust"
    lines = [
        "; Written by robotrace_assets.topology.pooler; regenerated on every start.",
        "[databases]",
        f"* = host={upstream.host} port={upstream.port}",
        "",
        "[pgbouncer]",
        f"listen_addr = {settings.listen_host}",
        f"listen_port = {settings.port}",
        "unix_socket_dir =",  # TCP only: no socket file shared with another PgBouncer
        f"auth_type = {auth_type}",
        f"auth_file = {auth_file}",
        "pool_mode = session",
        "server_reset_query = DISCARD ALL",
        f"server_tls_sslmode = {settings.server_tls_sslmode}",
        f"default_pool_size = {settings.pool_size}",
        f"max_client_conn = {settings.max_client_conn}",
        f"query_wait_timeout = {settings.query_wait_timeout_s}",
        # PgBouncer drops the server connections a restarting PostgreSQL closes at once; one that
        # vanished without a word (a crash, a failover) is caught by checking every pooled
        # connection (SELECT 1, one local round trip) before a client gets it. Log in again
        # after a second.
        "server_check_delay = 0",
        "server_login_retry = 1",
        "server_idle_timeout = 300",
        # One line per connection would be ~100 lines a second under a burst.
        "log_connections = 0",
        "log_disconnections = 0",
        "stats_period = 60",
        f"admin_users = {upstream.user}",
        f"stats_users = {upstream.user}",
        # Sent by some drivers, meaningless to a pool; anything else unknown is refused loudly.
        "ignore_startup_parameters = extra_float_digits",
        "",
    ]
    return "\n".join(lines)


def render_userlist(upstream: PostgresTarget) -> str:
    """The auth file: the one user, with its password (PgBouncer logs in to PostgreSQL with it
    and checks clients against it); empty for a trust-authenticated server."""

    def quoted(value: str) -> str:
        return '"' + value.replace('"', '""') + '"'

    return f"{quoted(upstream.user)} {quoted(upstream.password)}\n"


def write_files(upstream: PostgresTarget, settings: PoolerSettings, directory: Path) -> Path:
    """Write pgbouncer.ini and its auth file (mode 0600: it may hold the password); the ini."""
    directory.mkdir(parents=True, exist_ok=True)
    auth_file = directory / "userlist.txt"
    auth_file.touch(mode=0o600, exist_ok=True)
    auth_file.chmod(0o600)
    auth_file.write_text(render_userlist(upstream))
    ini = directory / "pgbouncer.ini"
    ini.write_text(render_ini(upstream, settings, auth_file))
    return ini


def binary() -> str | None:
    found = shutil.which("pgbouncer")
    if found:
        return found
    return next((path for path in BINARY_CANDIDATES if Path(path).exists()), None)


def command(ini: Path) -> list[str]:
    """PgBouncer in the foreground (a supervisor owns it), logging to stderr. PgBouncer refuses
    to run as root: as root it reads its files first, then switches to `nobody`."""
    found = binary()
    if found is None:
        raise TopologyError(INSTALL_HINT)
    as_user = ["-u", "nobody"] if os.geteuid() == 0 else []
    return [found, *as_user, str(ini)]


def clients_target(upstream: PostgresTarget, settings: PoolerSettings) -> PostgresTarget:
    """What clients connect to: the same database and user, at PgBouncer's address."""
    host = "127.0.0.1" if settings.listen_host in ("0.0.0.0", "*") else settings.listen_host
    return replace(upstream, host=host, port=settings.port)


def component(upstream: PostgresTarget, settings: PoolerSettings, directory: Path) -> Component:
    """PgBouncer as one supervised process (files written, log in `directory`), healthy when a
    connection through it answers; for tests and benchmarks that need it without a topology."""
    ini = write_files(upstream, settings, directory)
    return Component(
        name="pooler",
        command=command(ini),
        probe=health.postgres_ok(clients_target(upstream, settings)),
        log=directory / "pgbouncer.log",
        env=dict(os.environ),
        cwd=directory,
    )


def main() -> None:
    """Container entry point: files from the environment, then exec pgbouncer (PID 1 stays
    pgbouncer, so its signals and exit code are the container's)."""
    upstream = PostgresTarget.from_env()
    settings = PoolerSettings.from_env()
    directory = Path(os.environ.get("PGBOUNCER_CONFIG_DIR") or "/tmp/pgbouncer")
    ini = write_files(upstream, settings, directory)
    argv = command(ini)
    print(f"pgbouncer on {settings.listen_host}:{settings.port} -> {upstream.host}:{upstream.port}")
    sys.stdout.flush()
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main()
