"""The multipart part table of a segment's raw object (plain functions over an S3 client).

While an upload is in progress the parts come from ListParts; once it is complete, from HEAD
with PartNumber (S3 and R2) or GetObjectAttributes (SeaweedFS, AWS), and failing both from the
declared part size. The table says where each part's bytes lie, so the proof can digest them.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from robotrace_assets.objectstore.client import (
    ObjectNotFound,
    S3Client,
    error_code,
    head_object,
)
from robotrace_assets.proof.rules import declared_parts as declared_part_rows
from robotrace_assets.proof.rules import etag_part_count

_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
UNSUPPORTED = {"NotImplemented", "InvalidArgument", "InvalidRequest", "501", "400"}
MISSING_PART = {"416", "InvalidPartNumber", "InvalidRange"}


@dataclass(frozen=True)
class PartRecord:
    segment_id: str
    part_number: int
    offset: int | None
    size: int
    etag: str | None
    checksum_sha256: str | None
    status: str  # "complete" (in the completed object), "uploaded" (in progress), "missing"
    source: str


def completed_parts(
    client: S3Client,
    bucket: str,
    key: str,
    segment_id: str,
    head: dict[str, Any],
    part_size: int,
    declared_parts: int,
) -> tuple[list[PartRecord], str]:
    """Part records of a completed object. A part number the store does not have (416: a part
    left out of CompleteMultipartUpload keeps its gap) is recorded as missing."""
    count = head.get("PartsCount") or etag_part_count(head.get("ETag")) or 1
    records: list[PartRecord] = []
    found, number = 0, 0
    try:
        while found < count and number < max(count, declared_parts) + count:
            number += 1
            try:
                part = head_object(client, bucket, key, part_number=number, checksum=False)
            except client.exceptions.ClientError as error:
                if error_code(error) not in MISSING_PART:
                    raise
                records.append(
                    PartRecord(
                        segment_id, number, None, 0, None, None, "missing", "head_part_number"
                    )
                )
                continue
            if part is None:
                raise ObjectNotFound(f"{key} disappeared while its parts were read")
            match = _RANGE.match(part.get("ContentRange", ""))
            if not match:
                raise ValueError("no Content-Range on a part HEAD")
            found += 1
            records.append(
                PartRecord(
                    segment_id,
                    number,
                    int(match.group(1)),
                    part["ContentLength"],
                    None,
                    None,
                    "complete",
                    "head_part_number",
                )
            )
        return records, "head_part_number"
    except (client.exceptions.ClientError, ValueError) as error:
        if (
            isinstance(error, client.exceptions.ClientError)
            and error_code(error) not in UNSUPPORTED
        ):
            raise
    # The store cannot say where parts lie: fall back to the declared equal part size.
    rows = declared_part_rows(head["ContentLength"], part_size, count if count > 1 else None)
    return [
        PartRecord(segment_id, r.part_number, r.offset, r.size, None, None, "complete", "declared")
        for r in rows
    ], "declared"


def in_progress_parts(
    client: S3Client, bucket: str, key: str, segment_id: str, part_count: int
) -> list[PartRecord] | None:
    """Parts of the newest unfinished upload of `key`, with missing ones listed; None if none."""
    uploads = client.list_multipart_uploads(Bucket=bucket, Prefix=key).get("Uploads", [])
    uploads = [u for u in uploads if u["Key"] == key]
    if not uploads:
        return None
    upload_id = max(uploads, key=lambda u: u["Initiated"])["UploadId"]
    seen: dict[int, dict[str, Any]] = {}
    marker = 0
    while True:
        page = client.list_parts(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumberMarker=marker
        )
        seen.update({p["PartNumber"]: dict(p) for p in page.get("Parts", [])})
        if not page.get("IsTruncated"):
            break
        marker = page["NextPartNumberMarker"]
    records = []
    for number in range(1, max(part_count, max(seen, default=0)) + 1):
        part = seen.get(number)
        records.append(
            PartRecord(
                segment_id,
                number,
                None,
                part["Size"] if part else 0,
                part["ETag"].strip('"') if part else None,
                part.get("ChecksumSHA256") if part else None,
                "uploaded" if part else "missing",
                "list_parts",
            )
        )
    return records


def as_rows(records: list[PartRecord]) -> list[dict[str, Any]]:
    return [asdict(r) for r in records]
