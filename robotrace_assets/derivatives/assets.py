"""Derivative assets: review aids made only from segments whose provider proof passed."""

import json
import tempfile
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AutomationCondition,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from robotrace_assets import catalog, layout
from robotrace_assets.derivatives.proxy import PROXY_PROFILE, DerivativeError, encode_proxy
from robotrace_assets.partitions import segment_partitions
from robotrace_assets.proof.assets import PROVIDER_PROOF
from robotrace_assets.proof.guard import require_proven
from robotrace_assets.resources import ObjectStoreResource
from robotrace_assets.segments.assets import load_segment_row

PROXY = AssetKey(["derivatives", "proxy"])

# Blocking checks gate automation too; require_proven covers manual runs and backfills.
PROVEN_AND_EAGER = (
    AutomationCondition.eager() & AutomationCondition.all_deps_blocking_checks_passed()
)


def proxy_key(tenant_id: str, media_session_id: str, segment_id: str) -> str:
    return f"{layout.ROOT}/proxy/{tenant_id}/{media_session_id}/{segment_id}.mp4"


@asset(
    key=PROXY,
    partitions_def=segment_partitions,
    deps=[PROVIDER_PROOF],
    group_name="derivatives",
    kinds={"ffmpeg", "s3"},
    automation_condition=PROVEN_AND_EAGER,
    description="480p H.264 review proxy of a proven segment, streamed from a signed GET URL.",
)
def proxy(context: AssetExecutionContext, object_store: ObjectStoreResource) -> MaterializeResult:
    segment_id = context.partition_key
    require_proven(context.instance, object_store, segment_id)
    row = load_segment_row(object_store, segment_id)
    url = object_store.presigned_get(row["raw_key"], ttl_s=15 * 60)
    fps = float(json.loads(row["envelope"])["raw"].get("fps", 30))
    with tempfile.TemporaryDirectory(prefix="robotrace-proxy-") as temp:
        try:
            result = encode_proxy(url, Path(temp) / f"{segment_id}.mp4", fps_hint=fps)
        except DerivativeError as error:
            raise Failure(f"segment {segment_id}: {error}", allow_retries=False) from None
        key = proxy_key(row["tenant_id"], row["media_session_id"], segment_id)
        object_store.put_bytes(key, result.path.read_bytes(), layout.VIDEO_CONTENT_TYPE)
    record = {
        "segment_id": segment_id,
        "object_key": key,
        "size_bytes": result.size_bytes,
        "sha256": result.sha256,
        "profile_version": PROXY_PROFILE["version"],
        "source_key": row["raw_key"],
        "source_sha256": row["raw_sha256"],
    }
    object_store.write_record(catalog.PROXIES, segment_id, [record])
    return MaterializeResult(
        metadata={
            "object_key": key,
            "size_bytes": result.size_bytes,
            "sha256": result.sha256,
            "profile_version": PROXY_PROFILE["version"],
            "source_key": MetadataValue.path(row["raw_key"]),
        }
    )
