"""Delivery mechanics (no Dagster): which objects a delivery consists of, getting them to the
buyer (server-side copy into the delivery prefix, or one-hour signed GET links), and checking
afterwards that what the buyer can fetch has exactly the manifest's size and SHA-256.

Signed links are credentials: they are written only to the private delivery prefix
(links.json) and never to logs, metadata or exceptions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
from botocore.exceptions import ClientError

from robotrace_assets import layout
from robotrace_assets.delivery.lerobot.model import DepthSource
from robotrace_assets.delivery.manifest.schema import SEGMENT_LINEAGE_COLUMNS
from robotrace_assets.depth import ROLE as DEPTH_ROLE
from robotrace_assets.derivatives.depths import depth_stream_of
from robotrace_assets.objectstore.client import (
    GET_URL_TTL_S,
    S3Client,
    error_code,
    head_object,
    pin_headers,
    presign_get,
    quoted,
)
from robotrace_assets.records.proofs import ProofRecord

CHUNK = 4 * 1024 * 1024
# What every manifest row says about where an artifact came from and what rights attach:
# the manifest's lineage columns (the artifact carries its own segment id).
LINEAGE_FIELDS = (
    *(c for c in SEGMENT_LINEAGE_COLUMNS if c != "segment_id"),
    "reviewed_by",
    "review_rationale",
)


class DeliveryError(RuntimeError):
    pass


@dataclass(frozen=True)
class Artifact:
    """One object of a delivery, with what the manifest says about it."""

    kind: str
    source_key: str
    size_bytes: int
    sha256: str
    segment_id: str
    clip_ids: tuple[str, ...]
    lineage: dict[str, Any] = field(default_factory=dict)
    etag: str | None = None  # the proven ETag every read of the source is pinned to

    def delivered_key(self, prefix: str) -> str:
        # Keep the source's path below the tenant so artifacts of a delivery never collide.
        relative = (
            self.source_key.split("/", 2)[-1]
            if self.source_key.startswith(layout.ROOT + "/")
            else self.source_key
        )
        return f"{prefix}artifacts/{relative}"


def plan_raw_artifacts(
    clips: Sequence[Mapping[str, Any]],
    segments: Mapping[str, Mapping[str, Any]],
    proofs: Mapping[str, Mapping[str, Any]],
    derivatives: Mapping[str, Sequence[Mapping[str, Any]]],
) -> list[Artifact]:
    """Raw video, every declared object (sensor log, actions...) and the review derivatives of
    each segment with an eligible clip, each with the size, SHA-256 and ETag its proof read."""
    by_segment: dict[str, list[Mapping[str, Any]]] = {}
    for clip in clips:
        by_segment.setdefault(clip["segment_id"], []).append(clip)
    artifacts: list[Artifact] = []
    for segment_id, segment_clips in sorted(by_segment.items()):
        segment, proof = segments[segment_id], proofs[segment_id]
        clip_ids = tuple(sorted(c["clip_id"] for c in segment_clips))
        lineage = lineage_of(segment_clips[0], proof)
        # (kind, key, size, sha256, etag) of everything this segment contributes
        objects = [("raw_video", segment["raw_key"], proof["byte_size"], proof["sha256"])]
        etags = [proof["etag"]]
        for proven in json.loads(proof.get("objects") or "[]"):
            kind = "sensor_log" if proven["role"] == "sensors" else "declared_object"
            objects.append((kind, proven["object_key"], proven["size"], proven["read_sha256"]))
            etags.append(proven["etag"])
        for item in derivatives.get(segment_id, []):
            objects.append((item["kind"], item["key"], item["size_bytes"], item["sha256"]))
            etags.append(item.get("etag"))
        artifacts += [
            Artifact(kind, key, size, sha, segment_id, clip_ids, lineage, etag)
            for (kind, key, size, sha), etag in zip(objects, etags, strict=True)
        ]
    return artifacts


# A depth read mints its own link: one decode of a segment's stream takes seconds.
DEPTH_LINK_TTL_S = 15 * 60


def proven_depth_source(
    client: S3Client,
    bucket: str,
    proof: Mapping[str, Any],
    measured: Mapping[str, Any] | None = None,
) -> DepthSource | None:
    """The segment's depth stream exactly as its provider proof read it, or None when the
    segment declared none. Every read gets a fresh signed GET with If-Match on the proven ETag
    (and sends it as a header), so a depth object replaced since the proof answers 412 and the
    export fails instead of reading other bytes."""
    proven = ProofRecord(dict(proof)).proven_object(DEPTH_ROLE)
    if proven is None:
        return None
    key, etag = proven["object_key"], proven.get("etag")
    if not etag or proven.get("read_sha256") is None:
        raise DeliveryError(f"{key}: the depth object has no proven read to pin to: re-prove it")

    def locate() -> tuple[str, dict[str, str]]:
        return presign_get(client, bucket, key, DEPTH_LINK_TTL_S, etag), pin_headers(etag)

    return DepthSource(key, locate, depth_stream_of(measured, proven["read_sha256"]))


def lineage_of(clip: Mapping[str, Any], proof: Mapping[str, Any]) -> dict[str, Any]:
    lineage = {
        "media_session_id": clip.get("media_session_id"),
        "tenant_id": clip.get("tenant_id"),
        "raw_sha256": proof.get("sha256"),
        "proof_status": proof.get("integrity_status"),
        "proof_verified_at": proof.get("verified_at"),
        "consent_receipt_id": clip.get("consent_receipt_id"),
        "license_scope_id": clip.get("license_scope_id"),
        "allowed_use": list(clip.get("allowed_use") or []),
        "safety_rules_version": clip.get("safety_rules_version"),
        "review_status": clip.get("final_status"),
        "reviewed_by": clip.get("decided_by"),
        "review_rationale": clip.get("decision_rationale"),
    }
    assert set(lineage) == set(LINEAGE_FIELDS)
    return lineage


def stream_sha256(chunks: Iterable[bytes]) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def object_digest(client: S3Client, bucket: str, key: str) -> tuple[int, str]:
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    return stream_sha256(body.iter_chunks(CHUNK))


def copy_into(client: S3Client, bucket: str, artifact: Artifact, key: str) -> bool:
    """Server-side copy, skipped when the destination already holds these exact bytes (so a
    delivery materialized again does no work twice). True if a copy was made."""
    head = head_object(client, bucket, key, checksum=False)
    if (
        head is not None
        and head["ContentLength"] == artifact.size_bytes
        and head.get("Metadata", {}).get("robotrace-sha256") == artifact.sha256
    ):
        return False
    extra: dict[str, Any] = {
        "MetadataDirective": "REPLACE",
        "Metadata": {"robotrace-sha256": artifact.sha256, "robotrace-kind": artifact.kind},
    }
    if artifact.etag:  # the store refuses the copy if the source is no longer the proven object
        extra["CopySourceIfMatch"] = quoted(artifact.etag)
    try:
        client.copy({"Bucket": bucket, "Key": artifact.source_key}, bucket, key, ExtraArgs=extra)
    except ClientError as error:
        if error_code(error) in ("PreconditionFailed", "412", "404", "NoSuchKey"):
            raise DeliveryError(
                f"{artifact.source_key} is no longer the proven object: not delivered"
            ) from None
        raise
    return True


def verify_copies(
    client: S3Client, bucket: str, pairs: Sequence[tuple[Artifact, str]]
) -> list[str]:
    problems = []
    for artifact, key in pairs:
        try:
            size, sha = object_digest(client, bucket, key)
        except ClientError as error:
            problems.append(f"{key}: cannot be read back ({error_code(error)})")
            continue
        if (size, sha) != (artifact.size_bytes, artifact.sha256):
            problems.append(
                f"{key}: delivered {size} bytes / {sha[:12]}…, manifest says "
                f"{artifact.size_bytes} / {artifact.sha256[:12]}…"
            )
    return problems


def mint_links(
    client: S3Client,
    bucket: str,
    pins: Mapping[str, str | None],
    ttl_s: int = GET_URL_TTL_S,
) -> dict[str, str]:
    """One signed GET per key; a key with a proven ETag gets If-Match signed into its link, so
    the link serves the proven bytes or answers 412, never a replacement."""
    return {key: presign_get(client, bucket, key, ttl_s, etag) for key, etag in pins.items()}


def link_headers(pins: Mapping[str, str | None]) -> dict[str, dict[str, str]]:
    """The headers a buyer sends with each pinned link."""
    return {key: pin_headers(etag) for key, etag in pins.items() if etag}


def verify_links(
    links: Mapping[str, str],
    expected: Mapping[str, tuple[int, str]],
    headers: Mapping[str, Mapping[str, str]] | None = None,
) -> list[str]:
    """Fetch every link as a buyer would and compare size and SHA-256. Messages name the
    object key, never the link."""
    problems = []
    headers = headers or {}
    with requests.Session() as http:
        for key, url in links.items():
            try:
                with http.get(url, headers=headers.get(key), stream=True, timeout=60) as response:
                    if response.status_code != 200:
                        problems.append(f"{key}: link answered HTTP {response.status_code}")
                        continue
                    size, sha = stream_sha256(response.iter_content(CHUNK))
            except requests.RequestException as error:
                problems.append(f"{key}: link failed ({type(error).__name__})")
                continue
            if (size, sha) != expected[key]:
                problems.append(
                    f"{key}: link serves {size} bytes / {sha[:12]}…, manifest "
                    f"says {expected[key][0]} / {expected[key][1][:12]}…"
                )
    return problems


def links_document(
    links: Mapping[str, str], ttl_s: int, headers: Mapping[str, Mapping[str, str]] | None = None
) -> bytes:
    document = {
        "expires_in_s": ttl_s,
        "links": dict(links),
        # Send these with each GET: the links are pinned to the proven bytes (If-Match).
        "required_headers": dict(headers or {}),
    }
    return json.dumps(document, indent=2).encode()
