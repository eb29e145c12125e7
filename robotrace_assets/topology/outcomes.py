"""The end state of a batch of segments, read from the instance (run storage, event log): each
segment proven or failed with a reason, none twice, none missing.

A segment is covered by a run of segment_pipeline_job when the run's partition is the segment
or its partition range spans it (batched intake runs). Retries of a run cover what it covered.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dagster import AssetRecordsFilter, DagsterInstance, DagsterRunStatus, RunsFilter

from robotrace_assets.intake.batches import WILL_RETRY_TAG
from robotrace_assets.proof.assets import PROVIDER_PROOF
from robotrace_assets.proof.metadata import PASSED, PROOF_STATE_TAG

JOB = "segment_pipeline_job"
INTAKE_SENSOR = "capture_intake_sensor"
SENSOR_NAME_TAG = "dagster/sensor_name"  # Dagster's tag on every run a sensor created
IN_FLIGHT = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]


@dataclass
class SegmentOutcome:
    segment_id: str
    runs: list[str] = field(default_factory=list)  # run ids covering it, oldest first
    successful_runs: int = 0
    in_flight: int = 0
    # Runs the intake sensor itself created for it (not retries, not split re-runs of a failed
    # batch): 1 means discovered exactly once.
    intake_runs: int = 0
    proof_states: list[str] = field(default_factory=list)  # one per proof materialization
    failure: str | None = None  # why its last run failed

    @property
    def state(self) -> str:
        if self.in_flight:
            return "running"
        if not self.runs:
            return "missing"
        if self.successful_runs and self.proof_states and self.proof_states[-1] == PASSED:
            return "proven"
        if self.proof_states and self.proof_states[-1] != PASSED:
            return "failed: proof " + self.proof_states[-1]
        if self.failure:
            return "failed: " + self.failure[:200]
        return "unexplained"


def covered_segments(tags: dict[str, str], order: dict[str, int], keys: list[str]) -> list[str]:
    if "dagster/partition" in tags:
        return [tags["dagster/partition"]]
    start = tags.get("dagster/asset_partition_range_start")
    end = tags.get("dagster/asset_partition_range_end")
    if start in order and end in order:
        return keys[order[start] : order[end] + 1]
    return []


def run_failure_message(instance: DagsterInstance, run_id: str) -> str:
    """The step failure or the run failure message: the reason a segment failed."""
    from dagster import DagsterEventType

    for kind in (DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE):
        records = instance.all_logs(run_id, of_type=kind)
        for record in reversed(records):
            event = record.dagster_event
            data: Any = event.event_specific_data if event else None
            error = getattr(data, "error", None)
            if error is not None and getattr(error, "message", None):
                return str(error.message).strip()
            if record.message or (event and event.message):
                return str((event and event.message) or record.message).strip()
    return ""


def proof_state(materialization: Any) -> str:
    """passed or failed, from the tag (one-segment runs) or the leading metadata line, which a
    ranged run attaches per partition."""
    tag = (materialization.tags or {}).get(PROOF_STATE_TAG)
    if tag:
        return tag
    line = materialization.metadata.get("proof_state")
    text = str(getattr(line, "value", line or ""))
    return PASSED if text.startswith("PASSED") else "failed" if text else "unknown"


def _retry_pending(run: Any, retried: set[str | None]) -> bool:
    """A failed run that run retries will launch again, whose retry does not exist yet: the
    segment is not settled (the retry daemon may take seconds to notice the failure)."""
    return (
        run.status == DagsterRunStatus.FAILURE
        and run.tags.get(WILL_RETRY_TAG) == "true"
        and run.run_id not in retried
    )


def outcomes(
    instance: DagsterInstance, segment_ids: Iterable[str], with_proofs: bool = True
) -> dict[str, SegmentOutcome]:
    """Each segment's runs and, ``with_proofs``, its proof verdicts (one query per segment:
    pollers leave them out until the runs settle, so watching does not load the system)."""
    wanted = {s: SegmentOutcome(s) for s in segment_ids}
    keys = list(instance.get_dynamic_partitions("segment"))
    order = {k: i for i, k in enumerate(keys)}
    records = instance.get_run_records(RunsFilter(job_name=JOB), ascending=True)
    retried = {r.dagster_run.parent_run_id for r in records}
    for record in records:
        run = record.dagster_run
        for segment_id in covered_segments(dict(run.tags), order, keys):
            outcome = wanted.get(segment_id)
            if outcome is None:
                continue
            outcome.runs.append(run.run_id)
            if run.parent_run_id is None and run.tags.get(SENSOR_NAME_TAG) == INTAKE_SENSOR:
                outcome.intake_runs += 1
            if run.status == DagsterRunStatus.SUCCESS:
                outcome.successful_runs += 1
                outcome.failure = None
            elif run.status in IN_FLIGHT or _retry_pending(run, retried):
                outcome.in_flight += 1
            elif run.status == DagsterRunStatus.FAILURE and not outcome.successful_runs:
                outcome.failure = run_failure_message(instance, run.run_id) or "run failed"
    for segment_id, outcome in wanted.items() if with_proofs else ():
        result = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=PROVIDER_PROOF, asset_partitions=[segment_id]),
            limit=100,
            ascending=True,
        )
        outcome.proof_states = [
            proof_state(r.asset_materialization)
            for r in result.records
            if r.asset_materialization is not None
        ]
    return wanted


def summary(found: dict[str, SegmentOutcome]) -> Counter[str]:
    return Counter(o.state.split(":")[0] for o in found.values())


def problems(found: dict[str, SegmentOutcome]) -> dict[str, str]:
    """Segments not in an acceptable end state, and why: the test's failure message."""
    bad: dict[str, str] = {}
    for segment_id, o in found.items():
        if o.state in ("missing", "running", "unexplained"):
            bad[segment_id] = f"{o.state} (runs {o.runs})"
        elif o.successful_runs > 1:
            bad[segment_id] = f"proven twice: {o.successful_runs} successful runs"
        elif o.state == "proven" and any(s != PASSED for s in o.proof_states):
            bad[segment_id] = f"contradicting proofs {o.proof_states}"
    return bad


def wait_settled(
    instance: DagsterInstance,
    segment_ids: list[str],
    timeout_s: float,
    quiet_s: float = 5.0,
) -> dict[str, SegmentOutcome]:
    """Wait until every segment has a run and none is in flight, stable for `quiet_s` (a run
    retry is launched a moment after its parent fails); the outcomes then."""
    deadline = time.monotonic() + timeout_s
    settled_since: float | None = None
    while time.monotonic() < deadline:
        runs = outcomes(instance, segment_ids, with_proofs=False)
        done = all(o.runs and not o.in_flight for o in runs.values())
        if done:
            settled_since = settled_since or time.monotonic()
            if time.monotonic() - settled_since >= quiet_s:
                break
        else:
            settled_since = None
        time.sleep(2.0)
    return outcomes(instance, segment_ids)


def by_state(found: dict[str, SegmentOutcome]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for segment_id, o in found.items():
        groups[o.state].append(segment_id)
    return dict(groups)
