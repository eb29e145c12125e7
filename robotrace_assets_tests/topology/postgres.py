"""A private PostgreSQL server for the topology tests (initdb + pg_ctl on a free port).

The fault test restarts PostgreSQL under load. Restarting the machine's server would also cut
every other client of it (other test runs, other engineers' sessions), so the test restarts a
server of its own: the same PostgreSQL binaries, a fresh cluster per test session.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from robotrace_assets.topology.config import PostgresTarget

PG_BIN_DIRS = ("/usr/local/bin", "/usr/lib/postgresql/15/bin")


def pg_binary(name: str) -> str | None:
    for folder in PG_BIN_DIRS:
        candidate = Path(folder) / name
        if candidate.exists():
            return str(candidate)
    return shutil.which(name)


@dataclass
class PrivatePostgres:
    root: Path
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def target(self, db: str) -> PostgresTarget:
        return PostgresTarget(host="127.0.0.1", port=self.port, user="postgres", db=db)

    def _run(self, *command: str) -> None:
        # PostgreSQL refuses to run as root: as root, run its tools as the postgres user.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
        initdb = pg_binary("initdb")
        assert initdb, "initdb not found"
        self._run(initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def _ctl(self, action: str, *extra: str) -> None:
        pg_ctl = pg_binary("pg_ctl")
        assert pg_ctl, "pg_ctl not found"
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        options += " -c max_connections=300"  # every run worker holds a few connections
        data, log = str(self.data), str(self.log)
        self._run(pg_ctl, "-D", data, "-l", log, "-o", options, "-w", action, *extra)

    def start(self) -> None:
        self._ctl("start")

    def stop(self) -> None:
        self._ctl("stop", "-m", "fast")

    def restart(self) -> None:
        """A fast restart: every connection is cut, as a failover or a crash-restart does."""
        self._ctl("restart", "-m", "fast")


def available() -> bool:
    return bool(pg_binary("initdb") and pg_binary("pg_ctl")) and (
        os.geteuid() != 0 or _has_postgres_user()
    )


def _has_postgres_user() -> bool:
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return False
    return True
