"""Moments to inject a fault at, read from the live instance and processes, and a capture
client that retries like a careful robotrace-dev integration (for the ingest-service fault)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from random import SystemRandom
from typing import Any

import httpx
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from robotrace_assets.capture.simulator import SimulationError
from robotrace_assets.capture.via_api import ApiClient
from robotrace_assets.topology.topology import Topology

JOB = "segment_pipeline_job"


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise TimeoutError(f"not within {timeout_s:.0f} s: {what}")


def runs_in(instance: DagsterInstance, *statuses: DagsterRunStatus) -> int:
    return len(instance.get_run_records(RunsFilter(job_name=JOB, statuses=list(statuses))))


def run_created(instance: DagsterInstance, before: int) -> Callable[[], bool]:
    return lambda: len(instance.get_run_records(RunsFilter(job_name=JOB))) > before


def proof_step_started(instance: DagsterInstance) -> str | None:
    """A run whose provider_proof step has started and not finished, or None."""
    for record in instance.get_run_records(
        RunsFilter(job_name=JOB, statuses=[DagsterRunStatus.STARTED])
    ):
        run_id = record.dagster_run.run_id
        steps = {
            (r.dagster_event.event_type, r.dagster_event.step_key)
            for r in instance.all_logs(
                run_id, of_type={DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS}
            )
            if r.dagster_event
        }
        key = "proof__provider_proof"
        if (DagsterEventType.STEP_START, key) in steps and (
            DagsterEventType.STEP_SUCCESS,
            key,
        ) not in steps:
            return run_id
    return None


def bytes_sent(pid: int) -> int:
    """Bytes a process has written to files and sockets (/proc/<pid>/io wchar): SeaweedFS's
    count grows by the object's size while it serves a GET."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    return 0


def api_key(topology: Topology) -> str:
    """A tenant with consent and license defaults, and a key for it, in the service's database."""
    from robotrace_assets import ids
    from robotrace_assets.api import admin
    from robotrace_assets.api.cli import session
    from robotrace_assets.api.config import ApiConfig
    from robotrace_assets.ingest import keys

    rng, at = SystemRandom(), datetime.now(UTC)
    terms = admin.TenantTerms(
        consent_receipt_id=ids.new_id("consent", at, rng),
        license_scope_id=ids.new_id("lic", at, rng),
        allowed_use=("robotics_training",),
    )
    with session(ApiConfig.from_env(topology.config.environment())) as db:
        tenant = admin.create_tenant(db, "topology", terms)
        _row, token = admin.create_key(db, tenant.id, keys.ALL_SCOPES, "topology")
    return token


class RetryingApiClient(ApiClient):
    """Retries a call the service could not answer (connection refused or cut, 502-504), with
    backoff, for up to `patience_s`: the retry a capture client needs across a service restart.
    Hooks let the test act between the parts of an upload and before its complete."""

    def __init__(self, base_url: str, api_key: str, patience_s: float = 90.0) -> None:
        super().__init__(base_url, api_key)
        self.patience_s = patience_s
        self.retries = 0
        self.after_first_part: Callable[[], None] | None = None
        self.before_complete: Callable[[str], None] | None = None
        self._parts = 0

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        if path.endswith("/complete") and self.before_complete:
            hook, self.before_complete = self.before_complete, None
            hook(path.split("/")[-2])
        deadline = time.monotonic() + self.patience_s
        pause = 0.5
        while True:
            try:
                return super().call(method, path, body)
            except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as error:
                failure: Exception = error
            except SimulationError as error:
                if not any(f"HTTP {code}" in str(error) for code in (502, 503, 504)):
                    raise
                failure = error
            if time.monotonic() > deadline:
                raise failure
            self.retries += 1
            time.sleep(pause)
            pause = min(pause * 2, 5.0)

    def put(self, url: str, data: bytes, headers: dict[str, str]) -> None:
        super().put(url, data, headers)
        self._parts += 1
        if self._parts == 1 and self.after_first_part:
            self.after_first_part()


def later(seconds: float, action: Callable[[], object]) -> threading.Thread:
    def run() -> None:
        time.sleep(seconds)
        action()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread
