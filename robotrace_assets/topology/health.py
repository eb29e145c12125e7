"""Health probes, one per component: True when it serves, False (never an exception) when not
yet. Each asks the component itself, over its own protocol."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from botocore.exceptions import BotoCoreError, ClientError

from robotrace_assets.objectstore.client import S3Client, ensure_bucket
from robotrace_assets.topology.config import PostgresTarget


def http_ok(url: str) -> Callable[[], bool]:
    """GET answers 200 (webserver /server_info, ingest service /api/health)."""

    def probe() -> bool:
        try:
            return httpx.get(url, timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    return probe


def bucket_ok(client_factory: Callable[[], S3Client], bucket: str) -> Callable[[], bool]:
    """HEAD bucket succeeds; a store that answers without the bucket gets it created."""

    def probe() -> bool:
        try:
            ensure_bucket(client_factory(), bucket)
            client_factory().head_bucket(Bucket=bucket)
        except (BotoCoreError, ClientError):
            return False
        return True

    return probe


def grpc_serving(port: int, host: str = "127.0.0.1") -> Callable[[], bool]:
    """The code server answers a ping and lists its code location (loaded, not just bound)."""

    def probe() -> bool:
        from dagster._grpc.client import DagsterGrpcClient

        client = DagsterGrpcClient(port=port, host=host)
        try:
            client.ping("robotrace")
            client.list_repositories()
        except Exception:  # grpc raises many kinds while the server starts: all mean "not yet"
            return False
        return True

    return probe


def postgres_ok(target: PostgresTarget) -> Callable[[], bool]:
    """A connection opens and answers SELECT 1 (PgBouncer: a server connection behind it)."""

    def probe() -> bool:
        import psycopg2

        try:
            connection = target.connect()
        except psycopg2.Error:
            return False
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                return cursor.fetchone() == (1,)
        except psycopg2.Error:
            return False
        finally:
            connection.close()

    return probe


def daemon_heartbeats(instance_factory: Callable[[], object], since: Callable[[], float]):
    """Every daemon the instance requires has sent a heartbeat since the process started."""

    def probe() -> bool:
        try:
            instance = instance_factory()
            required = set(instance.get_required_daemon_types())  # type: ignore[attr-defined]
            beats = instance.get_daemon_heartbeats()  # type: ignore[attr-defined]
        except Exception:  # storage unreachable (PostgreSQL restarting): not healthy yet
            return False
        started = since()
        return all(t in beats and beats[t].timestamp >= started - 1.0 for t in required)

    return probe


def wait_for(probe: Callable[[], bool], timeout_s: float, interval_s: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if probe():
            return True
        time.sleep(interval_s)
    return False
