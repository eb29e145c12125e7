"""The run launcher of the local topology: Dagster's DefaultRunLauncher (the code server starts
each run in a process of its own) plus the run-worker health check it lacks.

Without a health check, run monitoring only times out runs stuck STARTING; a run whose worker
died with it (kill -9, a code server stopped with its process group, a host reboot) stays
STARTED until `max_runtime_seconds` (6 h). Every process of this topology is on one host, so the
worker's pid, which the worker itself records in the event log ("Started process for run"), is
enough to tell whether it still runs. Run monitoring then fails a dead run and run retries
(deploy/dagster.yaml) re-execute it from the failed step, as the Docker launcher's container
check does in production.
"""

from __future__ import annotations

from pathlib import Path

from dagster import DagsterEventType, DagsterRun, DefaultRunLauncher
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus

STARTED_PROCESS = "Started process for run"


def worker_pid(instance: object, run_id: str) -> int | None:
    """The pid the run's worker reported when it started, or None if it has not yet."""
    records = instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT)  # type: ignore[attr-defined]
    for record in records:
        event = record.dagster_event
        if event is None or not (event.message or "").startswith(STARTED_PROCESS):
            continue
        metadata = event.engine_event_data.metadata or {}
        pid = metadata.get("pid")
        if pid is not None:
            return int(str(pid.value))
    return None


def process_state(pid: int) -> str | None:
    """The state letter of a live process (R, S, Z...), or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[0]


def looks_like_run_worker(pid: int) -> bool:
    """A reused pid must not pass for the worker: run workers are multiprocessing spawn
    children of the code server (`python -c 'from multiprocessing.spawn import ...'`)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return b"multiprocessing" in cmdline or b"dagster" in cmdline


class LocalProcessRunLauncher(DefaultRunLauncher):
    """DefaultRunLauncher whose run workers run monitoring can check (same host only)."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        pid = worker_pid(self._instance, run.run_id)
        if pid is None:  # launched, worker not reporting yet: start_timeout_seconds covers it
            return CheckRunHealthResult(WorkerStatus.UNKNOWN, "no worker pid recorded yet")
        state = process_state(pid)
        if state is None or state in ("Z", "X") or not looks_like_run_worker(pid):
            return CheckRunHealthResult(
                WorkerStatus.FAILED, f"run worker process {pid} is gone (killed or crashed)"
            )
        return CheckRunHealthResult(WorkerStatus.RUNNING, f"run worker process {pid} is alive")
