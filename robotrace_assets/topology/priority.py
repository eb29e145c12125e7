"""On one host, run workers yield the CPU to the control plane.

`robotrace deploy local` runs the daemon, the code server (every sensor tick is evaluated
there), the webserver, PostgreSQL and up to four heavy runs on the same cores. Under a full
queue the runs' steps and their ffmpeg children starved the control plane: sensor ticks passed
Dagster's 60 s gRPC timeout and runs waited 30-100 s to start. A run worker (a multiprocessing
child of the code server under DefaultRunLauncher) therefore lowers its own priority by
``ROBOTRACE_RUN_WORKER_NICENESS`` (the local topology sets 10); its ffmpeg children inherit it.
The control plane keeps normal priority. Containers (Docker, Kubernetes) isolate run workers by
CPU requests instead and leave the variable unset.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Mapping

__all__ = ["NICENESS_ENV", "run_worker_niceness", "yield_cpu_in_run_worker"]

NICENESS_ENV = "ROBOTRACE_RUN_WORKER_NICENESS"
_MAX_NICENESS = 19


def run_worker_niceness(env: Mapping[str, str]) -> int:
    """The configured increment, 0 (off) when unset or not a number, at most 19."""
    value = env.get(NICENESS_ENV, "").strip()
    return min(_MAX_NICENESS, int(value)) if value.isdigit() else 0


def yield_cpu_in_run_worker(env: Mapping[str, str] | None = None) -> int:
    """Lower this process's CPU priority if it is a spawned run worker; the niceness after."""
    increment = run_worker_niceness(os.environ if env is None else env)
    # The code server and every command-line entry point are main processes; only the run
    # workers DefaultRunLauncher starts (multiprocessing spawn) have a parent process.
    if increment == 0 or multiprocessing.parent_process() is None:
        return os.nice(0)
    return os.nice(increment)
