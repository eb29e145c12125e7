"""Helpers shared by the integration tests: upload captures, run assets, read outcomes."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    AssetsDefinition,
    DagsterInstance,
    ExecuteInProcessResult,
    materialize,
)

from robotrace_assets.capture.simulator import (
    CaptureSimulator,
    Defect,
    SimulatedSession,
    SimulationConfig,
)
from robotrace_assets.clips.assets import clip
from robotrace_assets.dagster_compat import PartitionKeyFilter
from robotrace_assets.derivatives.assets import review_derivatives
from robotrace_assets.objectstore.client import S3Client
from robotrace_assets.proof.assets import provider_proof
from robotrace_assets.proof.checks import provider_proof_checks
from robotrace_assets.proof.guard import PROOF_CHECK_KEYS
from robotrace_assets.resources import (
    AlertsResource,
    ManifestSigningResource,
    ObjectStoreResource,
)
from robotrace_assets.review.assets import clip_review
from robotrace_assets.segments.assets import segment, segment_parts
from robotrace_assets.sessions.assets import media_session


@dataclass
class TestStore:
    """Where this session's SeaweedFS listens and the current test keeps its files; conftest's
    fixtures fill it in, and resources are built from it directly (no environment)."""

    endpoint_url: str = ""
    access_key_id: str = ""
    secret_access_key: str = ""
    data_dir: Path = field(default_factory=Path)


TEST_STORE = TestStore()


def store_for(bucket: str, **config: Any) -> ObjectStoreResource:
    return ObjectStoreResource(
        endpoint_url=TEST_STORE.endpoint_url,
        bucket=bucket,
        access_key_id=TEST_STORE.access_key_id,
        secret_access_key=TEST_STORE.secret_access_key,
        **config,
    )


def alerts_for(webhook_url: str | None = None) -> AlertsResource:
    return AlertsResource(
        alerts_file=str(TEST_STORE.data_dir / "alerts.jsonl"), webhook_url=webhook_url
    )


def resources_for(bucket: str, **store_config: Any) -> dict[str, Any]:
    """The code location's resources, pointed at a test bucket (and configured as given)."""
    return {
        "object_store": store_for(bucket, **store_config),
        "alerts": alerts_for(),
        "manifest_signing": ManifestSigningResource(),
    }


# Big enough for three 5 MiB parts, small enough to stay quick: 4 s at 24 Mbit/s, CBR filler.
MULTIPART_BITRATE_KBPS = 24_000


def simulate(
    s3: S3Client,
    bucket: str,
    *defects: str,
    sessions: int = 1,
    segments: int = 1,
    seed: int = 0,
    multipart: bool = False,
    **config: object,
) -> list[SimulatedSession]:
    cfg = SimulationConfig(
        sessions=sessions,
        segments=segments,
        seed=seed,
        defects=tuple(Defect.parse(d) for d in defects),
        video_bitrate_kbps=MULTIPART_BITRATE_KBPS if multipart else None,
        **config,  # type: ignore[arg-type]
    )
    return CaptureSimulator(s3, bucket, cfg).run()


ASSETS: dict[AssetKey, AssetsDefinition] = {
    key: a
    for a in (
        media_session,
        segment,
        segment_parts,
        provider_proof,
        review_derivatives,
        clip,
        clip_review,
    )
    for key in a.keys
}


def asset_def(key: AssetKey) -> AssetsDefinition:
    return ASSETS[key]


def run_assets(
    instance: DagsterInstance,
    bucket: str,
    keys: Sequence[AssetKey],
    partition: str,
    *,
    with_checks: bool = True,
    resources: dict[str, Any] | None = None,
) -> ExecuteInProcessResult:
    """One run of `keys` (and the proof checks) for one segment partition, like the sensor's."""
    instance.add_dynamic_partitions("segment", [partition])
    assets: list = list({id(d): d for d in (asset_def(k) for k in keys)}.values())
    keys = [key for d in assets for key in d.keys]  # a multi-asset runs whole
    if with_checks:
        assets.append(provider_proof_checks)
    return materialize(
        assets,
        partition_key=partition,
        instance=instance,
        resources=resources or resources_for(bucket),
        raise_on_error=False,
        selection=list(keys),
    )


def materialized(instance: DagsterInstance, key: AssetKey, partition: str) -> bool:
    from dagster import AssetRecordsFilter

    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
    ).records
    return bool(records)


def latest_metadata(instance: DagsterInstance, key: AssetKey, partition: str) -> dict[str, Any]:
    """The metadata values of the asset partition's latest materialization."""
    record = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
    ).records[0]
    materialization = record.asset_materialization
    assert materialization is not None
    return {k: v.value for k, v in materialization.metadata.items()}


def published_bytes(s3: S3Client, bucket: str, key: str, sha256: str) -> bytes:
    """A published object's bytes, checked against the SHA-256 its record gives."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == sha256
    return body


def check_outcomes(instance: DagsterInstance, partition: str) -> dict[str, bool | None]:
    """Latest pass/fail per proof check for a segment (None: never ran)."""
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        PROOF_CHECK_KEYS, partition_filter=PartitionKeyFilter(key=partition)
    )
    out: dict[str, bool | None] = {}
    for key in PROOF_CHECK_KEYS:
        record = latest.get(key)
        if record is None or record.event is None:
            out[key.name] = None
            continue
        evaluation = record.event.dagster_event.event_specific_data
        out[key.name] = getattr(evaluation, "passed", None)
    return out


def run_checks(instance: DagsterInstance, bucket: str, partition: str) -> ExecuteInProcessResult:
    """The proof checks alone, through the recheck job users launch from the UI."""
    from robotrace_assets.definitions import defs

    job = defs.resolve_job_def("provider_proof_recheck")
    # A checks-only selection has no asset to take a partitions definition from, so
    # execute_in_process refuses partition_key; the partition tag is what the UI sets anyway.
    return job.execute_in_process(
        tags={"dagster/partition": partition},
        instance=instance,
        resources=resources_for(bucket),
        raise_on_error=False,
    )


def run_segment_pipeline(
    instance: DagsterInstance, bucket: str, segment_id: str
) -> ExecuteInProcessResult:
    """One segment through `segment_pipeline_job`, the named job the intake sensor launches."""
    from robotrace_assets.definitions import defs

    instance.add_dynamic_partitions("segment", [segment_id])
    return defs.resolve_job_def("segment_pipeline_job").execute_in_process(
        partition_key=segment_id,
        instance=instance,
        resources=resources_for(bucket),
        raise_on_error=False,
    )


def failure_messages(result: ExecuteInProcessResult) -> str:
    return "\n".join(
        str(event.step_failure_data.error.message)
        for event in result.all_events
        if event.is_step_failure and event.step_failure_data.error
    )


def trajectory_jerk_peak(table, hz: float) -> float:
    """Peak end-effector jerk of a whole trajectory table, with the production signal maths."""
    import numpy as np

    from robotrace_assets.clips.kinematics import jerk_series

    host = table.column("host_time_ns").to_numpy()
    t = (host - host[0]) / 1e9
    xyz = np.column_stack([table.column(c).to_numpy() for c in ("ee_x", "ee_y", "ee_z")])
    return float(jerk_series(t, xyz, hz).max())


def stop_process_group(process: subprocess.Popen) -> None:
    """Stop a Dagster process started in its own session (daemon, webserver) and its children:
    SIGTERM, then SIGKILL if it has not exited within 30 s."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
