"""Sensors that summarize (media-session rollups, review sets) wait for their own runs.

Each run is a process that loads the whole code location (seconds of CPU) before it reads a few
records. Under a burst, new proofs and reviews land on every tick, and launching a summary run
per tick and partition made the summaries cost more CPU than the segments they summarize (57
summary runs beside 31 intake runs in 28 minutes of a 500-segment burst). A summary sensor
therefore launches nothing while its previous runs are queued or running and leaves its cursor
where it is: the next wave covers everything that arrived meanwhile, in one run per partition.
"""

from __future__ import annotations

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

__all__ = ["IN_FLIGHT", "runs_in_flight"]

IN_FLIGHT = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]


def runs_in_flight(instance: DagsterInstance, sensor_name: str) -> int:
    """How many runs the named sensor launched are queued or running (at most 100 counted)."""
    records = instance.get_run_records(
        RunsFilter(statuses=IN_FLIGHT, tags={"dagster/sensor_name": sensor_name}), limit=100
    )
    return len(records)
