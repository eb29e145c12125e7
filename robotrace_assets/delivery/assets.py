"""The buyer delivery asset: one partition per (buyer, delivery), materialized on demand.

It selects clips by the rules in delivery/eligibility.py, proves every segment in scope through
the shared proof gate (and re-verifies its derivatives), delivers by the buyer's method, checks
what was delivered, and writes a signed export manifest (JSON and Parquet) beside it.
Materializing the same delivery again delivers the same bytes and keeps the same manifest.
"""

import hashlib
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from dagster import (
    AllPartitionMapping,
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from robotrace_assets import catalog, layout
from robotrace_assets.delivery import manifest as manifests
from robotrace_assets.delivery.buyers import (
    Buyer,
    BuyerConfigError,
    load_buyers,
    parse_delivery_partition,
)
from robotrace_assets.delivery.eligibility import ProofState, Selection, select
from robotrace_assets.delivery.methods import (
    LINEAGE_FIELDS,
    Artifact,
    DeliveryError,
    copy_into,
    link_headers,
    links_document,
    mint_links,
    plan_raw_artifacts,
    verify_copies,
    verify_links,
)
from robotrace_assets.derivatives.assets import PROXY
from robotrace_assets.derivatives.publish import PublishError, verify
from robotrace_assets.objectstore.client import ObjectChanged, get_pinned
from robotrace_assets.partitions import delivery_partitions
from robotrace_assets.proof.assets import proven_object
from robotrace_assets.proof.guard import proof_gate
from robotrace_assets.resources import ObjectStoreResource
from robotrace_assets.review.assets import ALL, REVIEW_COMPLETE
from robotrace_assets.segments.assets import load_segment_row
from robotrace_assets.settings import Settings

BUYER_DELIVERY = AssetKey(["delivery", "buyer_delivery"])
LOCAL_DEV_KEY = b"robotrace-local-dev-manifest-key"


def signer(settings: Settings) -> Any:
    if settings.manifest_ed25519_key:
        pem = Path(settings.manifest_ed25519_key).read_bytes()
        return manifests.Ed25519Signer(pem, settings.manifest_key_id)
    if settings.manifest_hmac_key:
        return manifests.HmacSigner(settings.manifest_hmac_key.encode(), settings.manifest_key_id)
    return manifests.HmacSigner(LOCAL_DEV_KEY, "local-dev")  # the demo only: say so in metadata


def proof_states(
    context: AssetExecutionContext, store: ObjectStoreResource, segment_ids: set[str]
) -> tuple[dict[str, ProofState], dict[str, dict], dict[str, dict], dict[str, list[dict]]]:
    """The proof of every segment in scope: the shared gate (checks current and passed, record
    verified) plus a fresh read-back of each of its derivatives."""
    states, records, rows, derivatives = {}, {}, {}, {}
    client, bucket = store.client(), store.bucket_name
    for segment_id in sorted(segment_ids):
        gate = proof_gate(context.instance, store, segment_id)
        reasons = list(gate.reasons)
        items = store.read_record(catalog.DERIVATIVES, segment_id) or []
        derivatives_ok = bool(items)
        if not items:
            reasons.append("no derivatives recorded")
        for item in items:
            try:
                verify(client, bucket, item["key"], item["size_bytes"], item["sha256"])
            except (PublishError, ClientError, BotoCoreError) as error:  # missing counts too
                derivatives_ok = False
                reasons.append(f"derivative {item['kind']}: {str(error)[:200]}")
        declared = (gate.record or {}).get("sha256_declared", True)
        states[segment_id] = ProofState(gate.passed, derivatives_ok, tuple(reasons), declared)
        records[segment_id] = gate.record or {}
        rows[segment_id] = load_segment_row(store, segment_id)
        derivatives[segment_id] = items
    return states, records, rows, derivatives


def pinned_bytes(store: ObjectStoreResource, key: str, etag: str | None) -> bytes:
    """An object's bytes, pinned to the ETag its proof (or derivative record) read."""
    if not etag:
        raise DeliveryError(f"{key} has no proven ETag to pin the read to: re-prove it")
    try:
        return get_pinned(store.client(), store.bucket_name, key, etag)
    except ObjectChanged as error:
        raise DeliveryError(str(error)) from None


def lerobot_artifacts(
    store: ObjectStoreResource,
    clips: list[dict[str, Any]],
    rows: dict[str, dict],
    records: dict[str, dict],
    derivatives: dict[str, list[dict]],
    prefix: str,
) -> list[Artifact]:
    """Export the clips as a LeRobot v3.0 dataset (from the H.264 proxies and the sensor logs),
    validate it as LeRobot's loader would, and upload it into the delivery prefix."""
    import io

    import pyarrow.parquet as pq

    from robotrace_assets.delivery.lerobot import EpisodeSource, export_lerobot, validate_lerobot
    from robotrace_assets.delivery.methods import lineage_of

    with tempfile.TemporaryDirectory(prefix="robotrace-lerobot-") as temp:
        work = Path(temp)
        episodes = []
        for clip in sorted(clips, key=lambda c: (c["segment_id"], c["clip_index"])):
            segment_id = clip["segment_id"]
            video = work / f"{segment_id}.mp4"
            if not video.exists():
                proxy = next(d for d in derivatives[segment_id] if d["kind"] == "proxy")
                video.write_bytes(pinned_bytes(store, proxy["key"], proxy.get("etag")))
            sensors = proven_object(records[segment_id], "sensors") or {}
            data = pinned_bytes(store, rows[segment_id]["sensors_key"], sensors.get("etag"))
            table = pq.read_table(io.BytesIO(data))
            episodes.append(
                EpisodeSource(
                    clip_id=clip["clip_id"],
                    task=f"{clip.get('label') or 'clip'}",
                    video_path=video,
                    start_s=clip["start_s"],
                    end_s=clip["end_s"],
                    trajectory=table,
                    metadata=lineage_of(clip, records[segment_id]) | {"segment_id": segment_id},
                )
            )
        out = work / "dataset"
        export = export_lerobot(episodes, out, fps=round(clips[0]["video_fps"]))
        problems = validate_lerobot(out)
        if problems:
            raise DeliveryError("LeRobot export does not validate: " + "; ".join(problems[:5]))
        clip_ids = tuple(sorted(c["clip_id"] for c in clips))
        artifacts = []
        for path in sorted(p for p in out.rglob("*") if p.is_file()):
            key = f"{prefix}lerobot/{path.relative_to(out).as_posix()}"
            data = path.read_bytes()
            store.put_bytes(key, data, "application/octet-stream")
            artifacts.append(
                Artifact(
                    "lerobot_file",
                    key,
                    len(data),
                    hashlib.sha256(data).hexdigest(),
                    "",
                    clip_ids,
                    {"episodes": export.episodes},
                )
            )
        return artifacts


def mcap_artifacts(
    store: ObjectStoreResource, clips: list[dict[str, Any]], prefix: str
) -> list[Artifact]:
    """One telemetry MCAP per media session (trajectory, clip boundaries, safety signals,
    machine scores and review decisions of the delivered clips only, Foxglove schemas), written
    into the delivery prefix; the proxies travel beside them."""
    import io

    from robotrace_assets.robotlogs import RobotLogError
    from robotrace_assets.telemetry.collect import TelemetryError, collect_session, select_clips
    from robotrace_assets.telemetry.export import write_session_mcap

    by_session: dict[str, list[str]] = {}
    for clip in clips:
        by_session.setdefault(clip["media_session_id"], []).append(clip["clip_id"])
    artifacts = []
    for media_session_id, clip_ids in sorted(by_session.items()):
        try:
            session = select_clips(collect_session(store, media_session_id), clip_ids)
        except (RobotLogError, TelemetryError) as error:
            raise DeliveryError(f"telemetry of {media_session_id}: {error}") from None
        stream = io.BytesIO()
        write_session_mcap(session, stream)
        data, key = stream.getvalue(), f"{prefix}mcap/{media_session_id}.mcap"
        store.put_bytes(key, data, "application/x-mcap")
        sha = hashlib.sha256(data).hexdigest()
        lineage = {"media_session_id": media_session_id, "clips": len(clip_ids)}
        artifacts.append(
            Artifact("telemetry_mcap", key, len(data), sha, "", tuple(sorted(clip_ids)), lineage)
        )
    return artifacts


def deliver(
    store: ObjectStoreResource, buyer: Buyer, artifacts: list[Artifact], prefix: str
) -> tuple[list[str], dict[str, Any]]:
    """Deliver by the buyer's method; return the keys the buyer fetches and what was done."""
    client, bucket = store.client(), store.bucket_name
    if buyer.method == "copy":
        pairs = [
            (a, a.source_key if a.source_key.startswith(prefix) else a.delivered_key(prefix))
            for a in artifacts
        ]
        copied = sum(copy_into(client, bucket, a, key) for a, key in pairs if a.source_key != key)
        problems = verify_copies(client, bucket, pairs)
        if problems:
            raise DeliveryError("copies do not match the manifest: " + "; ".join(problems[:5]))
        return [key for _, key in pairs], {"copied": copied, "verified": len(pairs)}
    keys = [a.source_key for a in artifacts]
    pins = {a.source_key: a.etag for a in artifacts}
    links, headers = mint_links(client, bucket, pins), link_headers(pins)
    expected = {a.source_key: (a.size_bytes, a.sha256) for a in artifacts}
    problems = verify_links(links, expected, headers)
    if problems:
        raise DeliveryError("links do not serve the manifest's bytes: " + "; ".join(problems[:5]))
    document = links_document(links, 3600, headers)
    store.put_bytes(f"{prefix}links.json", document, layout.JSON_CONTENT_TYPE)
    return keys, {"links": len(links), "verified": len(links), "links_expire_in_s": 3600}


def manifest_rows(artifacts: list[Artifact], delivered_keys: list[str]) -> list[dict[str, Any]]:
    rows = []
    for artifact, key in zip(artifacts, delivered_keys, strict=True):
        lineage = artifact.lineage
        rows.append(
            {
                "artifact_key": key,
                "source_key": artifact.source_key,
                "kind": artifact.kind,
                "size_bytes": artifact.size_bytes,
                "sha256": artifact.sha256,
                "clip_ids": list(artifact.clip_ids),
                "segment_id": artifact.segment_id or None,
                **{k: lineage.get(k) for k in LINEAGE_FIELDS},
            }
        )
    return rows


def exclusions_document(selection: Selection) -> bytes:
    def entries(items: list) -> list[dict[str, Any]]:
        return [
            {"clip_id": e.clip_id, "segment_id": e.segment_id, "reasons": list(e.reasons)}
            for e in items
        ]

    return json.dumps(
        {
            "excluded": entries(selection.excluded),
            "excluded_for_proof": entries(selection.proof_blocked),
        },
        indent=2,
    ).encode()


@asset(
    key=BUYER_DELIVERY,
    partitions_def=delivery_partitions,
    deps=[REVIEW_COMPLETE, AssetDep(PROXY, partition_mapping=AllPartitionMapping())],
    group_name="delivery",
    kinds={"s3", "parquet", "json"},
    op_tags={"robotrace/io": "heavy"},
    description="A buyer delivery: eligible clips only, every segment proven, delivered by "
    "the buyer's method and verified, with a signed export manifest.",
)
def buyer_delivery(
    context: AssetExecutionContext, object_store: ObjectStoreResource
) -> MaterializeResult:
    try:
        buyer_id, delivery_id = parse_delivery_partition(context.partition_key)
        buyer = load_buyers().get(buyer_id)
    except BuyerConfigError as error:
        raise Failure(str(error), allow_retries=False) from None
    if buyer is None:
        raise Failure(f"unknown buyer {buyer_id}: add it to ROBOTRACE_BUYERS_FILE")
    pool = object_store.read_record(catalog.REVIEW_COMPLETE, ALL) or []
    # With no proof states yet, every clip that passes the business rules lands in
    # proof_blocked: exactly the segments that must be proven for this buyer.
    scope = select(pool, buyer, {})
    in_scope = {e.segment_id for e in scope.proof_blocked}
    states, records, rows, derivatives = proof_states(context, object_store, in_scope)
    selection = select(pool, buyer, states)
    if selection.blocked:
        lines = sorted({f"{e.segment_id}: {'; '.join(e.reasons)}" for e in selection.proof_blocked})
        raise Failure(
            f"strict proof policy: {len(selection.proof_blocked)} clips in scope of {buyer_id} "
            "fail provider proof; nothing delivered: " + " | ".join(lines[:10]),
            metadata={"proof_failures": MetadataValue.json(lines)},
            allow_retries=False,
        )
    if not selection.eligible:
        raise Failure(
            f"nothing eligible for {buyer_id}: {len(selection.excluded)} excluded, "
            f"{len(selection.proof_blocked)} excluded for proof",
            metadata={"excluded": MetadataValue.json(json.loads(exclusions_document(selection)))},
        )
    prefix = layout.delivery_prefix(buyer_id, delivery_id)
    try:
        if buyer.format == "lerobot":
            artifacts = lerobot_artifacts(
                object_store, selection.eligible, rows, records, derivatives, prefix
            )
        elif buyer.format == "mcap":
            raw = plan_raw_artifacts(selection.eligible, rows, records, derivatives)
            artifacts = [a for a in raw if a.kind == "proxy"]
            artifacts += mcap_artifacts(object_store, selection.eligible, prefix)
        else:
            artifacts = plan_raw_artifacts(selection.eligible, rows, records, derivatives)
        delivered_keys, done = deliver(object_store, buyer, artifacts, prefix)
    except DeliveryError as error:
        raise Failure(f"delivery {context.partition_key}: {error}", allow_retries=False) from None

    settings = object_store.settings
    key_json, key_parquet = f"{prefix}manifest.json", f"{prefix}manifest.parquet"
    manifest = manifests.build_manifest(
        manifest_rows(artifacts, delivered_keys),
        manifest_id=f"man_{hashlib.sha256(context.partition_key.encode()).hexdigest()[:24]}",
        buyer_id=buyer_id,
        delivery_id=delivery_id,
        created_at=datetime.now(UTC).isoformat(),
        signer=signer(settings),
    )
    unchanged = False
    try:
        existing = manifests.read_manifest_json(object_store.get_bytes(key_json))
        # Same bytes AND the same lineage, consent, license and review facts per row.
        unchanged = (existing.header.bundle_sha256, existing.header.rows_sha256) == (
            manifest.header.bundle_sha256,
            manifest.header.rows_sha256,
        )
    except Exception:  # no manifest yet, or an unreadable one: write a fresh one
        existing = None
    if unchanged and existing is not None:
        manifest = existing  # same artifacts, same bytes: keep the manifest the buyer has
    else:
        object_store.put_bytes(
            key_json, manifests.manifest_json_bytes(manifest), layout.JSON_CONTENT_TYPE
        )
        object_store.put_bytes(
            key_parquet, manifests.manifest_parquet_bytes(manifest), layout.PARQUET_CONTENT_TYPE
        )
    object_store.put_bytes(
        f"{prefix}exclusions.json", exclusions_document(selection), layout.JSON_CONTENT_TYPE
    )
    header = manifest.header
    return MaterializeResult(
        metadata={
            "buyer_id": buyer_id,
            "proof_policy": buyer.proof_policy,
            "format": buyer.format,
            "method": buyer.method,
            "clips": len(selection.eligible),
            "excluded": len(selection.excluded),
            "excluded_for_proof": len(selection.proof_blocked),
            "artifacts": header.artifact_count,
            "total_bytes": header.total_bytes,
            "manifest_id": header.manifest_id,
            "bundle_sha256": header.bundle_sha256,
            "signature": f"{header.signature_algorithm} by key {header.key_id}",
            "manifest_unchanged": unchanged,
            **done,
            "manifest_key": MetadataValue.path(key_json),
        }
    )
