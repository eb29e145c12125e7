"""Large-media operations: media sessions, segments as multipart uploads, resume, complete.

Part bytes never pass through the service: each part goes straight to the bucket over an
UploadPart URL with the part's SHA-256 signed in. Completing checks the stored parts against
the declaration (ListParts) first, because CompleteMultipartUpload accepts any subset of parts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from random import SystemRandom
from typing import Any

from botocore.exceptions import ClientError
from sqlalchemy import select
from sqlalchemy.orm import Session

from robotrace_assets import catalog, ids, layout
from robotrace_assets.api.db.models import MediaSession, Segment, Tenant
from robotrace_assets.api.episodes import aware, tenant_defaults
from robotrace_assets.api.errors import ApiError, not_found
from robotrace_assets.api.storage import Bucket, iso_ms
from robotrace_assets.ingest import episodes as episode_model
from robotrace_assets.ingest import media_envelopes as envelopes
from robotrace_assets.ingest.media import MediaSessionCreate, SegmentOpen, part_problems, plan
from robotrace_assets.intake.handoff import hand_off_segment, hand_off_session
from robotrace_assets.objectstore.client import (
    PUT_URL_TTL_S,
    error_code,
    presign_put,
    presign_upload_part,
)

_rng = SystemRandom()


def _now() -> datetime:
    return datetime.now(UTC)


def open_session(db: Session, tenant_id: str, body: MediaSessionCreate) -> dict[str, Any]:
    tenant = tenant_defaults(db.get(Tenant, tenant_id))  # type: ignore[arg-type]
    try:
        consent, license_ = episode_model.terms(
            body.model_dump(mode="json", include={"consent", "license"}), tenant
        )
    except episode_model.TermsError as error:
        raise ApiError(400, f"Invalid request: {error}".replace("metadata.", "")) from None
    at = _now()
    row = MediaSession(
        id=ids.new_id("msess", at, _rng),
        tenant_id=tenant_id,
        session_id=ids.new_id("sess", at, _rng),
        task_name=body.task_name,
        consent=consent,
        license=license_,
        provenance={**body.provenance, "task_steps": body.task_steps},
        status="open",
        created_at=at,
    )
    db.add(row)
    return {"media_session_id": row.id, "status": row.status, "created_at": iso_ms(at)}


def _session(db: Session, tenant_id: str, media_session_id: str) -> MediaSession:
    row = db.scalars(
        select(MediaSession).where(
            MediaSession.id == media_session_id, MediaSession.tenant_id == tenant_id
        )
    ).first()
    if row is None:
        raise not_found("Media session")
    return row


def _segment(db: Session, tenant_id: str, segment_id: str, *, lock: bool = False) -> Segment:
    query = select(Segment).where(Segment.id == segment_id, Segment.tenant_id == tenant_id)
    row = db.scalars(query.with_for_update() if lock else query).first()
    if row is None:
        raise not_found("Segment")
    return row


def _part_urls(bucket: Bucket, row: Segment, numbers: list[int]) -> list[dict[str, Any]]:
    planned = {p.number: p for p in plan(row.size_bytes, row.part_size_bytes)}
    expires = iso_ms(_now() + timedelta(seconds=PUT_URL_TTL_S))
    urls = []
    for number in numbers:
        part = planned[number]
        sha = row.part_sha256s[number - 1]
        url = presign_upload_part(
            bucket.client, bucket.name, row.object_key, row.upload_id, number, sha
        )
        urls.append(
            {
                "part_number": number,
                "offset": part.offset,
                "size_bytes": part.size,
                "sha256": sha,
                "url": url,
                "expires_at": expires,
            }
        )
    return urls


def _sensors_upload(bucket: Bucket, row: Segment) -> dict[str, Any] | None:
    sensors = row.extra.get("declared", {}).get("sensors")
    if not sensors:
        return None
    key = envelopes.sensors_key(row.tenant_id, row.media_session_id, row.id, sensors["format"])
    content_type = envelopes.sensors_content_type(sensors["format"])
    return {
        "object_key": key,
        "content_type": content_type,
        "url": presign_put(bucket.client, bucket.name, key, content_type, PUT_URL_TTL_S),
        "expires_at": iso_ms(_now() + timedelta(seconds=PUT_URL_TTL_S)),
    }


def open_segment(
    db: Session, bucket: Bucket, tenant_id: str, media_session_id: str, body: SegmentOpen
) -> dict[str, Any]:
    session = _session(db, tenant_id, media_session_id)
    taken = db.scalars(
        select(Segment.id).where(
            Segment.media_session_id == session.id, Segment.segment_index == body.segment_index
        )
    ).first()
    if taken:
        raise ApiError(409, f"segment_index {body.segment_index} is already open as {taken}.")
    at = _now()
    segment_id = ids.new_id("seg", at, _rng)
    key = layout.raw_video_key(tenant_id, session.id, segment_id)
    upload = bucket.client.create_multipart_upload(
        Bucket=bucket.name, Key=key, ContentType=body.content_type, ChecksumAlgorithm="SHA256"
    )
    row = Segment(
        id=segment_id,
        media_session_id=session.id,
        tenant_id=tenant_id,
        segment_index=body.segment_index,
        capture_id=ids.derived_id("cap", segment_id, "capture"),
        object_key=key,
        content_type=body.content_type,
        size_bytes=body.size_bytes,
        sha256=body.sha256,
        part_size_bytes=body.part_size_bytes,
        part_sha256s=list(body.part_sha256),
        upload_id=upload["UploadId"],
        status="uploading",
        started_at=body.started_at,
        ended_at=body.ended_at,
        extra={"declared": body.model_dump(mode="json")},
        created_at=at,
    )
    db.add(row)
    numbers = list(range(1, len(body.part_sha256) + 1))
    return {
        "segment_id": segment_id,
        "media_session_id": session.id,
        "object_key": key,
        "status": "uploading",
        "parts": _part_urls(bucket, row, numbers),
        "sensors_upload": _sensors_upload(bucket, row),
    }


def stored_parts(bucket: Bucket, row: Segment) -> dict[int, dict[str, Any]]:
    parts: dict[int, dict[str, Any]] = {}
    marker = 0
    while True:
        page = bucket.client.list_parts(
            Bucket=bucket.name, Key=row.object_key, UploadId=row.upload_id, PartNumberMarker=marker
        )
        for part in page.get("Parts", []):
            parts[int(part["PartNumber"])] = dict(part)
        if not page.get("IsTruncated"):
            return parts
        marker = int(page["NextPartNumberMarker"])


def list_parts(db: Session, bucket: Bucket, tenant_id: str, segment_id: str) -> dict[str, Any]:
    """The parts the store holds, and fresh URLs for every part still to upload (resume)."""
    row = _segment(db, tenant_id, segment_id)
    if row.status != "uploading":
        return {"segment_id": row.id, "status": row.status, "uploaded": [], "parts": []}
    stored = stored_parts(bucket, row)
    planned = plan(row.size_bytes, row.part_size_bytes)
    good = [
        p.number
        for p, sha in zip(planned, row.part_sha256s, strict=True)
        if p.number in stored and not part_problems([p], [sha], {p.number: stored[p.number]})
    ]
    todo = [p.number for p in planned if p.number not in good]
    return {
        "segment_id": row.id,
        "status": row.status,
        "uploaded": good,
        "parts": _part_urls(bucket, row, todo),
        "sensors_upload": _sensors_upload(bucket, row),
    }


def complete_segment(
    db: Session, bucket: Bucket, tenant_id: str, segment_id: str
) -> dict[str, Any]:
    row = _segment(db, tenant_id, segment_id, lock=True)
    if row.status == "uploading":
        _complete_upload(bucket, row)
        _hand_off(db, bucket, row)
        row.status = "completed"
    return segment_body(db, bucket, tenant_id, segment_id)


def completed_before(bucket: Bucket, row: Segment, planned_parts: int) -> bool:
    """A complete request the service did not live to record: the store already joined the
    upload (it is gone), and the object there has the declared size and part count. The client
    retrying its complete must then get the hand-off, not an error. The provider proof still
    reads every byte against the declared SHA-256."""
    seen = bucket.head(row.object_key)
    return (
        seen is not None and seen.size == row.size_bytes and seen.etag.endswith(f"-{planned_parts}")
    )


def _complete_upload(bucket: Bucket, row: Segment) -> None:
    planned = plan(row.size_bytes, row.part_size_bytes)
    try:
        stored = stored_parts(bucket, row)
    except ClientError as error:
        if error_code(error) == "NoSuchUpload" and completed_before(bucket, row, len(planned)):
            return
        raise
    problems = part_problems(planned, list(row.part_sha256s), stored)
    if problems:
        raise ApiError(409, "Cannot complete: " + "; ".join(problems[:10]) + ".")
    sensors = row.extra.get("declared", {}).get("sensors")
    if sensors:
        key = envelopes.sensors_key(row.tenant_id, row.media_session_id, row.id, sensors["format"])
        seen = bucket.head(key)
        if seen is None or seen.size != sensors["size_bytes"]:
            raise ApiError(
                409, "Cannot complete: the declared sensors log is missing or its size differs."
            )
    bucket.client.complete_multipart_upload(
        Bucket=bucket.name,
        Key=row.object_key,
        UploadId=row.upload_id,
        MultipartUpload={
            "Parts": [
                {
                    "PartNumber": p.number,
                    "ETag": stored[p.number]["ETag"],
                    "ChecksumSHA256": row.part_sha256s[p.number - 1],
                }
                for p in planned
            ]
        },
    )


def _hand_off(db: Session, bucket: Bucket, row: Segment) -> None:
    session = db.get(MediaSession, row.media_session_id)
    assert session is not None
    tenant = tenant_defaults(db.get(Tenant, row.tenant_id))  # type: ignore[arg-type]
    segment_ids = list(
        db.scalars(
            select(Segment.id)
            .where(Segment.media_session_id == session.id)
            .order_by(Segment.segment_index)
        )
    )
    provenance = dict(session.provenance or {})
    steps = provenance.pop("task_steps", [])
    hand_off_session(
        bucket.client,
        bucket.name,
        envelopes.session_envelope(
            media_session_id=session.id,
            session_id=session.session_id,
            tenant=tenant,
            created_at=aware(session.created_at),
            task_name=session.task_name,
            task_steps=steps,
            consent=session.consent,
            license_=session.license,
            provenance=provenance,
            segment_ids=segment_ids,
        ),
    )
    declared = SegmentOpen.model_validate(row.extra["declared"])
    hand_off_segment(
        bucket.client,
        bucket.name,
        envelopes.segment_envelope(
            tenant_id=row.tenant_id,
            media_session_id=session.id,
            segment_id=row.id,
            object_key=row.object_key,
            declared=declared,
        ),
    )


def segment_body(db: Session, bucket: Bucket, tenant_id: str, segment_id: str) -> dict[str, Any]:
    row = _segment(db, tenant_id, segment_id)
    state = "not_applicable"
    checks: list[dict[str, Any]] = []
    if row.status == "completed":
        state = "pending"
        records = bucket.record(catalog.PROOFS, row.id)
        if records:
            failed = list(records[0].get("failed_checks") or [])
            verified = records[0].get("integrity_status") == "verified" and not failed
            state = "verified" if verified else "failed"
            checks = [
                {"name": n, "passed": False, "reason": "failed in the provider proof"}
                for n in failed
            ]
    return {
        "segment_id": row.id,
        "media_session_id": row.media_session_id,
        "segment_index": row.segment_index,
        "status": row.status,
        "object_key": row.object_key,
        "size_bytes": row.size_bytes,
        "part_count": len(row.part_sha256s),
        "verification": {
            "state": state,
            "checks": checks,
            "sha256_declared_by_client": row.sha256 is not None,
            "media_session_id": row.media_session_id,
            "segment_id": row.id,
        },
    }
