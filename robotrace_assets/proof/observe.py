"""Gather an Observation of a raw object: HEAD with ChecksumMode, then one full streaming read.

Metadata alone cannot prove bytes (a flipped byte on disk leaves HEAD answering with the stored
checksum), so the SHA-256 is always computed from the bytes themselves. The read is pinned to
the HEAD's ETag (If-Match) so that a replacement mid-read fails instead of mixing two objects.
A read cut off in transport (the store restarting) is read again from the start, a few times
with pauses, before the bytes count as unreadable: never a verdict on part of the bytes.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, replace
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from urllib3.exceptions import HTTPError as Urllib3Error

from robotrace_assets import layout
from robotrace_assets.envelopes import EnvelopeError, MediaSessionEnvelope
from robotrace_assets.objectstore.client import S3Client, error_code, head_object
from robotrace_assets.objectstore.multipart import PartRange
from robotrace_assets.proof.digest import CHUNK_SIZE, digest_chunks
from robotrace_assets.proof.rules import (
    Expectation,
    ObjectExpectation,
    ObjectObservation,
    Observation,
    PartRow,
    SessionFacts,
    key_is_safe,
    object_key_is_safe,
)
from robotrace_assets.segments.parts import completed_parts

T = TypeVar("T")
# Pauses before reading again after the read broke off in transport: about a minute in all,
# longer than a store restart takes (SeaweedFS answers again within seconds).
READ_BACKOFF_S = (2.0, 4.0, 8.0, 16.0, 30.0)


def head_observation(response: dict[str, Any] | None) -> Observation:
    if response is None:
        return Observation(exists=False)
    return Observation(
        exists=True,
        size=response["ContentLength"],
        etag=response["ETag"].strip('"'),
        content_type=response.get("ContentType"),
        last_modified=response["LastModified"].isoformat(),
        checksum_sha256=response.get("ChecksumSHA256"),
    )


def observe(
    client: S3Client,
    bucket: str,
    expect: Expectation,
    catalog_parts: Sequence[dict[str, Any]] = (),
) -> tuple[Observation, dict[str, Any]]:
    """The observation and extra provenance (request id, encryption, tags, timings)."""
    context = {
        "objects": tuple(observe_object(client, bucket, expect, o) for o in expect.objects),
        "session": session_facts(client, bucket, expect),
    }
    safe, why = key_is_safe(expect)
    if not safe:
        return Observation(exists=False, skipped=why, **context), {}
    response = head_object(client, bucket, expect.object_key)
    base = replace(head_observation(response), **context)
    if response is None:
        return base, {}
    extra: dict[str, Any] = {
        "request_id": response["ResponseMetadata"].get("RequestId")
        or response["ResponseMetadata"]["HTTPHeaders"].get("x-amz-request-id"),
        "checksum_type": response.get("ChecksumType"),
        "encryption": response.get("ServerSideEncryption"),
        "lifecycle_tags": object_tags(client, bucket, expect.object_key),
    }
    parts = [r for r in catalog_parts if r.get("status") == "complete"]
    if not parts or sum(r["size"] for r in parts) != base.size:
        records, _ = completed_parts(
            client,
            bucket,
            expect.object_key,
            expect.segment_id,
            response,
            expect.part_size_bytes,
            expect.part_count,
        )
        parts = [asdict(r) for r in records if r.status == "complete"]
    ranges = [PartRange(r["part_number"], r["offset"], r["size"]) for r in parts]
    started = time.perf_counter()
    digest, read_error, attempts = read_pinned(
        client,
        bucket,
        expect.object_key,
        base.etag or "",
        lambda chunks: digest_chunks(chunks, ranges),
    )
    elapsed = time.perf_counter() - started
    extra["read_seconds"] = round(elapsed, 3)
    extra["read_attempts"] = attempts
    if digest is None:
        rows = tuple(PartRow(r.number, r.offset, r.size) for r in ranges)
        return replace(base, read_error=read_error, parts=rows, parts_source=_source(parts)), extra
    md5s = list(digest.part_md5_hex) + [None] * max(0, len(ranges) - len(digest.part_md5_hex))
    rows = tuple(
        PartRow(r.number, r.offset, r.size, md5) for r, md5 in zip(ranges, md5s, strict=False)
    )
    extra["read_mb_per_s"] = round(digest.size / 1e6 / elapsed, 1) if elapsed else None
    observation = replace(
        base,
        read_size=digest.size,
        read_sha256=digest.sha256_hex,
        parts=rows,
        parts_source=_source(parts),
    )
    return observation, extra


def current_objects(client: S3Client, bucket: str, keys: Iterable[str]) -> dict[str, Observation]:
    """HEAD each proven object now: what check_unchanged compares with the proof's pins."""
    return {key: head_observation(head_object(client, bucket, key)) for key in keys}


def observe_object(
    client: S3Client, bucket: str, expect: Expectation, want: ObjectExpectation
) -> ObjectObservation:
    """HEAD one declared object, then read it in full (pinned to that HEAD) for its SHA-256."""
    safe, why = object_key_is_safe(expect, want.object_key)
    if not safe:
        return ObjectObservation(want.role, want.object_key, exists=False, skipped=why)
    seen = head_observation(head_object(client, bucket, want.object_key))
    found = ObjectObservation(
        want.role,
        want.object_key,
        exists=seen.exists,
        size=seen.size,
        etag=seen.etag,
        content_type=seen.content_type,
        last_modified=seen.last_modified,
    )
    if not seen.exists:
        return found
    sha, read_error, _ = read_pinned(
        client, bucket, want.object_key, seen.etag or "", _sha256_of, with_status=False
    )
    if sha is None:
        return replace(found, read_error=read_error)
    return replace(found, read_sha256=sha)


def _sha256_of(chunks: Iterable[bytes]) -> str:
    sha = hashlib.sha256()
    for chunk in chunks:
        sha.update(chunk)
    return sha.hexdigest()


def read_pinned(
    client: S3Client,
    bucket: str,
    key: str,
    etag: str,
    consume: Callable[[Iterable[bytes]], T],
    *,
    with_status: bool = True,
    backoff_s: Sequence[float] = READ_BACKOFF_S,
) -> tuple[T | None, str | None, int]:
    """Read the object pinned to `etag` through `consume`: (its result or None, why not,
    attempts). A read that breaks off in transport (the store restarting, a connection reset)
    is started again from byte 0 after a pause, so a digest only ever covers one whole, pinned
    read: partial bytes never reach a verdict. An HTTP error answer (412: replaced, 404, 500 on
    a damaged object) is a finding, not retried."""
    attempt, why = 0, None
    for attempt, pause in enumerate((0.0, *backoff_s), start=1):
        time.sleep(pause)
        try:
            body = client.get_object(Bucket=bucket, Key=key, IfMatch=f'"{etag}"')
            return consume(body["Body"].iter_chunks(CHUNK_SIZE)), None, attempt
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            suffix = f" (HTTP {status})" if with_status else ""
            return None, f"GET failed: {error_code(error)}{suffix}", attempt
        except (BotoCoreError, Urllib3Error, OSError) as error:
            why = f"GET broke off: {type(error).__name__}"
    if attempt > 1:
        why = f"{why} ({attempt} attempts)"
    return None, why, attempt


def session_facts(client: S3Client, bucket: str, expect: Expectation) -> SessionFacts:
    """What the segment's media session envelope says: its tenant and whether it lists us."""
    session_id = expect.media_session_id
    try:
        raw = client.get_object(Bucket=bucket, Key=layout.session_envelope_key(session_id))
        envelope = MediaSessionEnvelope.parse(raw["Body"].read())
    except ClientError as error:
        return SessionFacts(session_id, False, error=f"envelope unreadable: {error_code(error)}")
    except EnvelopeError as error:
        return SessionFacts(session_id, False, error=str(error)[:300])
    if envelope.media_session_id != session_id:
        return SessionFacts(session_id, False, error="envelope names another media session")
    return SessionFacts(
        session_id,
        True,
        tenant_id=envelope.tenant_id,
        lists_segment=expect.segment_id in envelope.segment_ids,
    )


def _source(parts: Sequence[dict[str, Any]]) -> str:
    return parts[0].get("source", "declared") if parts else "declared"


def object_tags(client: S3Client, bucket: str, key: str) -> dict[str, str]:
    """Object tags where the store supports them (R2 does not: an empty dict then)."""
    try:
        tags = client.get_object_tagging(Bucket=bucket, Key=key).get("TagSet", [])
    except (ClientError, BotoCoreError):
        return {}
    return {t["Key"]: t["Value"] for t in tags}
