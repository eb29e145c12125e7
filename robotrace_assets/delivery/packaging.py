"""Packaging a buyer delivery: the artifacts of each format, delivery by the buyer's method,
the manifest rows and the exclusions document. Plain functions over a bucket store; the delivery
asset decides what is eligible and signs the manifest."""

import hashlib
import io
import json
import tempfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from robotrace_assets import catalog, layout
from robotrace_assets.delivery.buyers import Buyer
from robotrace_assets.delivery.eligibility import Selection
from robotrace_assets.delivery.methods import (
    LINEAGE_FIELDS,
    Artifact,
    DeliveryError,
    copy_into,
    lineage_of,
    link_headers,
    links_document,
    mint_links,
    proven_depth_source,
    verify_copies,
    verify_links,
)
from robotrace_assets.objectstore.client import ObjectChanged, get_pinned
from robotrace_assets.records.proofs import ProofRecord
from robotrace_assets.records.store import BucketStore


def pinned_bytes(store: BucketStore, key: str, etag: str | None) -> bytes:
    """An object's bytes, pinned to the ETag its proof (or derivative record) read."""
    if not etag:
        raise DeliveryError(f"{key} has no proven ETag to pin the read to: re-prove it")
    try:
        return get_pinned(store.client(), store.bucket_name, key, etag)
    except ObjectChanged as error:
        raise DeliveryError(str(error)) from None


def _depth_record(store: BucketStore, segment_id: str) -> dict[str, Any] | None:
    """The depth derivative's record of the segment's stream (one row), if it has one."""
    rows = store.read_record(catalog.DEPTH_STREAMS, segment_id) or []
    return rows[0] if rows else None


def lerobot_artifacts(
    store: BucketStore,
    clips: list[dict[str, Any]],
    rows: dict[str, dict],
    records: dict[str, dict],
    derivatives: dict[str, list[dict]],
    prefix: str,
    include_depth: bool = False,
) -> list[Artifact]:
    """Export the clips as a LeRobot v3.0 dataset (from the H.264 proxies, the sensor logs and
    the label tracks: per-frame task from their task steps), validate it as LeRobot's loader
    would, and upload it into the delivery prefix. Reviewer tags come from the current review
    state of each clip, not from the label track (which keeps the tags known at derivation).
    With ``include_depth`` each clip's depth maps come from its segment's depth object, read
    pinned to the proven ETag; a clip whose segment has none fails the delivery, named."""
    from robotrace_assets.delivery.lerobot.export import export_lerobot
    from robotrace_assets.delivery.lerobot.model import EpisodeSource, LeRobotExportError
    from robotrace_assets.delivery.lerobot.validate import validate_lerobot
    from robotrace_assets.derivatives.labels import (
        LabelError,
        clip_tags_from_reviews,
        read_label_track,
    )

    tracks: dict[str, Any] = {}

    def labels_of(segment_id: str) -> Any:
        if segment_id not in tracks:
            found = [d for d in derivatives[segment_id] if d["kind"] == "labels"]
            # Derivatives made before the label track existed: one task per episode, as before.
            try:
                tracks[segment_id] = (
                    read_label_track(pinned_bytes(store, found[0]["key"], found[0].get("etag")))
                    if found
                    else None
                )
            except LabelError as error:
                raise DeliveryError(f"label track of {segment_id}: {error}") from None
        return tracks[segment_id]

    with tempfile.TemporaryDirectory(prefix="robotrace-lerobot-") as temp:
        work = Path(temp)
        episodes = []
        for clip in sorted(clips, key=lambda c: (c["segment_id"], c["clip_index"])):
            segment_id = clip["segment_id"]
            video = work / f"{segment_id}.mp4"
            if not video.exists():
                proxy = next(d for d in derivatives[segment_id] if d["kind"] == "proxy")
                video.write_bytes(pinned_bytes(store, proxy["key"], proxy.get("etag")))
            sensors = ProofRecord(records[segment_id]).proven_object("sensors") or {}
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
                    metadata=lineage_of(clip, records[segment_id])
                    | {
                        "segment_id": segment_id,
                        "reviewer_tags": list(clip_tags_from_reviews([clip])[0].tags),
                    },
                    labels=labels_of(segment_id),
                    depth=(
                        proven_depth_source(
                            store.client(),
                            store.bucket_name,
                            records[segment_id],
                            _depth_record(store, segment_id),
                        )
                        if include_depth
                        else None
                    ),
                )
            )
        out = work / "dataset"
        try:
            export = export_lerobot(
                episodes, out, fps=round(clips[0]["video_fps"]), include_depth=include_depth
            )
        except LeRobotExportError as error:
            raise DeliveryError(f"LeRobot export: {error}") from None
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


def mcap_artifacts(store: BucketStore, clips: list[dict[str, Any]], prefix: str) -> list[Artifact]:
    """One telemetry MCAP per media session (trajectory, clip boundaries, safety signals,
    machine scores and review decisions of the delivered clips only, Foxglove schemas), written
    into the delivery prefix; the proxies travel beside them."""
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
    store: BucketStore, buyer: Buyer, artifacts: list[Artifact], prefix: str
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
