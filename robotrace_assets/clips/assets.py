"""The clip asset: each proven segment cut into clips that carry the seed's clip object, their
safety signals, machine scores under the versioned rules, and full provenance."""

import base64
import hashlib
import json
from collections.abc import Iterator

import pyarrow as pa
from dagster import (
    AssetExecutionContext,
    AssetKey,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from robotrace_assets import catalog, layout
from robotrace_assets.batching import SEGMENT_BACKFILL_POLICY, materialize_each
from robotrace_assets.clips.metadata import clip_view_metadata
from robotrace_assets.clips.plots import clip_signal_png
from robotrace_assets.clips.rows import clip_rows
from robotrace_assets.clips.rules import UnknownRulesVersion
from robotrace_assets.derivatives.assets import DEPTH, MEDIA_PROBE
from robotrace_assets.derivatives.depths import declared_depth
from robotrace_assets.envelopes import MediaSessionEnvelope
from robotrace_assets.failures import failing_on_record_errors
from robotrace_assets.objectstore.client import ObjectChanged, get_pinned
from robotrace_assets.partitions import segment_partitions
from robotrace_assets.proof.assets import PROVIDER_PROOF
from robotrace_assets.proof.guard import confirm_unchanged, require_proven
from robotrace_assets.records.proofs import ProofRecord
from robotrace_assets.records.segments import SegmentRecord, load_segment
from robotrace_assets.records.sessions import load_session_envelope
from robotrace_assets.resources import AlertsResource, ObjectStoreResource
from robotrace_assets.robotlogs import RobotLogError, read_segment_log
from robotrace_assets.ui_metadata import OWNERS, catalog_table

CLIPS = AssetKey(["clips", "clip"])


# A trajectory with no samples: what clips are scored on when the robot log cannot be read.
EMPTY_TRAJECTORY = pa.table(
    {
        "host_time_ns": pa.array([], pa.int64()),
        "device_time_ns": pa.array([], pa.int64()),
        **{axis: pa.array([], pa.float64()) for axis in ("ee_x", "ee_y", "ee_z")},
    }
)


def load_sensor_log(
    store: ObjectStoreResource,
    alerts: AlertsResource,
    segment: SegmentRecord,
    proof: ProofRecord,
    session: MediaSessionEnvelope,
) -> tuple[pa.Table, str | None]:
    """The segment's trajectory, read from exactly the bytes its proof read (If-Match on the
    proven ETag, SHA-256 compared with the proven one), in whatever format the robot wrote it
    (Parquet, MCAP, ROS 1 or ROS 2 bag, through the topic map). A log that cannot be read (a
    topic missing, stamps going backwards) leaves the segment reviewable without signals: an
    empty trajectory and the reason."""
    segment_id = segment.segment_id
    if not segment.sensors_key:
        return EMPTY_TRAJECTORY, "the segment declares no sensor log"
    proven = proof.proven_object("sensors")
    if proven is None or not proven.get("etag"):
        raise Failure(f"segment {segment_id}: sensor log was not proven; re-prove the segment")
    try:
        data = get_pinned(store.client(), store.bucket_name, segment.sensors_key, proven["etag"])
    except ObjectChanged as error:
        confirm_unchanged(store, alerts, proof)  # records the proof as stale and alerts
        raise Failure(f"segment {segment_id}: sensor log: {error}", allow_retries=False) from None
    if hashlib.sha256(data).hexdigest() != proven["read_sha256"]:
        raise Failure(f"segment {segment_id}: sensor log bytes differ from the proven ones")
    fmt = segment.sensors_format
    try:
        table = read_segment_log(
            data, fmt, tenant_id=segment.tenant_id, device_model=session.device_model
        )
    except RobotLogError as error:
        return EMPTY_TRAJECTORY, f"sensor log ({fmt}) unreadable: {error}"
    return table, None


@asset(
    key=CLIPS,
    backfill_policy=SEGMENT_BACKFILL_POLICY,
    partitions_def=segment_partitions,
    deps=[PROVIDER_PROOF, MEDIA_PROBE, DEPTH],
    group_name="clips",
    kinds={"s3", "parquet"},
    owners=OWNERS,
    metadata=catalog_table(catalog.CLIPS),
    description="Clips of a proven segment (task-step boundaries, else fixed windows) with the "
    "seed's clip object, safety signals, machine scores under the session's safety rules "
    "version, and provenance back to the segment and its proof.",
)
def clip(
    context: AssetExecutionContext, object_store: ObjectStoreResource, alerts: AlertsResource
) -> Iterator[MaterializeResult]:
    yield from materialize_each(context, lambda s: cut_segment(context, object_store, alerts, s))


def cut_segment(
    context: AssetExecutionContext,
    object_store: ObjectStoreResource,
    alerts: AlertsResource,
    segment_id: str,
) -> MaterializeResult:
    proof = require_proven(context.instance, object_store, alerts, segment_id)
    with failing_on_record_errors():
        row = load_segment(object_store, segment_id)
        session = load_session_envelope(
            object_store, row.media_session_id, object_store.known_tenants
        )
    if session.tenant_id != row.tenant_id or segment_id not in session.segment_ids:
        # The proof's session check refuses this; never take another tenant's consent/license.
        raise Failure(f"segment {segment_id}: media session does not own it", allow_retries=False)
    probes = object_store.read_record(catalog.MEDIA_PROBES, segment_id)
    if not probes:
        raise Failure(f"segment {segment_id} has no media probe: materialize its derivatives")
    depth = object_store.read_record(catalog.DEPTH_STREAMS, segment_id)
    if not depth and declared_depth(row.envelope) is not None:
        # Derived before the depth derivative existed: a clip must never claim "no depth".
        raise Failure(f"segment {segment_id} has no depth record: materialize its derivatives")
    table, log_problem = load_sensor_log(object_store, alerts, row, proof, session)
    if log_problem:
        context.log.warning(f"segment {segment_id}: reviewable without signals: {log_problem}")
    try:
        rows, traces, jerk_limit = clip_rows(
            row, session, probes[0], proof, table, log_problem, depth[0] if depth else None
        )
    except UnknownRulesVersion as error:
        raise Failure(f"segment {segment_id}: {error}", allow_retries=False) from None
    key = object_store.write_record(catalog.CLIPS, segment_id, rows)
    for clip_row in rows:  # lets a reviewer's decision find its segment from the clip id alone
        object_store.put_bytes(
            layout.clip_index_key(clip_row["clip_id"]),
            json.dumps(
                {
                    "segment_id": segment_id,
                    "media_session_id": row.media_session_id,
                    # Decisions name the bytes they judged; they never carry over to others.
                    "source_sha256": proof.sha256,
                }
            ).encode(),
            layout.JSON_CONTENT_TYPE,
        )
    png = base64.b64encode(clip_signal_png(traces, jerk_limit)).decode()
    statuses = [r["machine_status"] for r in rows]
    return MaterializeResult(
        metadata={
            "clips": len(rows),
            "approved": statuses.count("approved"),
            "needs_review": statuses.count("needs_review"),
            "rejected": statuses.count("rejected"),
            "rules_version": session.safety_rules_version,
            "signals": "unavailable: " + log_problem if log_problem else "computed",
            **clip_view_metadata(rows, traces, jerk_limit),  # shown inline in the UI
            "signal_plots": MetadataValue.md(
                f"![per-clip jerk and frame gaps](data:image/png;base64,{png})"
            ),
            "catalog_key": MetadataValue.path(key),
        }
    )
