"""Publishing derivatives: each object uploaded with its own SHA-256, lifecycle tags and a link
to its source segment, then verified by reading it back. All or nothing per segment: if any
object fails, every object this attempt wrote is deleted. No Dagster here.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from botocore.exceptions import BotoCoreError, ClientError

from robotrace_assets.objectstore.client import S3Client


class PublishError(RuntimeError):
    pass


@dataclass(frozen=True)
class DerivativeFile:
    kind: str  # proxy | thumbnail | contact_sheet | labels[_vtt] | transcript[_vtt]
    path: Path
    key: str
    content_type: str


@dataclass(frozen=True)
class PublishedDerivative:
    kind: str
    key: str
    size_bytes: int
    sha256: str
    etag: str


def _sha256(path: Path) -> bytes:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.digest()


def publish(
    client: S3Client,
    bucket: str,
    files: list[DerivativeFile],
    *,
    source_segment_id: str,
    source_key: str,
    source_sha256: str,
    profile_version: str,
    profile_fingerprint: str,
    expiry_days: int,
    tagging: bool = True,
) -> list[PublishedDerivative]:
    """Upload and verify every file, or leave none of them behind."""
    metadata = {
        "robotrace-lifecycle": "regenerable",
        "robotrace-expires-after-days": str(expiry_days),
        "robotrace-source-segment": source_segment_id,
        "robotrace-source-key": source_key,
        "robotrace-source-sha256": source_sha256,
        "robotrace-profile": f"{profile_version}:{profile_fingerprint}",
    }
    tags = urlencode(
        {
            "lifecycle": "regenerable",
            "expires-after-days": str(expiry_days),
            "profile": profile_version,
        }
    )
    written: list[str] = []
    published: list[PublishedDerivative] = []
    try:
        for item in files:
            digest = _sha256(item.path)
            extra: dict[str, Any] = {"Tagging": tags} if tagging else {}
            with open(item.path, "rb") as body:
                response = client.put_object(
                    Bucket=bucket,
                    Key=item.key,
                    Body=body,
                    ContentType=item.content_type,
                    ChecksumSHA256=base64.b64encode(digest).decode(),  # the store verifies it
                    Metadata=metadata,
                    **extra,
                )
            written.append(item.key)
            size = item.path.stat().st_size
            published.append(
                PublishedDerivative(
                    item.kind, item.key, size, digest.hex(), response["ETag"].strip('"')
                )
            )
        for entry in published:
            verify(client, bucket, entry.key, entry.size_bytes, entry.sha256)
    except (ClientError, BotoCoreError, OSError, PublishError) as error:
        for key in written:
            client.delete_object(Bucket=bucket, Key=key)
        raise PublishError(f"derivatives not published, nothing left behind: {error}") from None
    return published


def verify(client: S3Client, bucket: str, key: str, size: int, sha256_hex: str) -> None:
    """The derivative's own proof: the stored bytes read back have its size and SHA-256."""
    data = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    if len(data) != size:
        raise PublishError(f"{key}: stored {len(data)} bytes, expected {size}")
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256_hex:
        raise PublishError(f"{key}: stored SHA-256 {actual} differs from {sha256_hex}")
