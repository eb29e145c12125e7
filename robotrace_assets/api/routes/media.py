"""Large-media endpoints (beyond RoboTrace): media session > segment > part."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from robotrace_assets.api import media
from robotrace_assets.api.errors import not_found
from robotrace_assets.api.routes.common import Db, Media, Reader, Store, errors
from robotrace_assets.api.storage import Bucket
from robotrace_assets.ingest.media import MediaSessionCreate, SegmentOpen
from robotrace_assets.ingest.wire import Verification

router = APIRouter(tags=["large media"])


class SessionOpened(BaseModel):
    media_session_id: str
    status: str
    created_at: str


class PartUrl(BaseModel):
    part_number: int
    offset: int
    size_bytes: int
    sha256: str
    url: str
    expires_at: str


class SensorsUpload(BaseModel):
    object_key: str
    content_type: str
    url: str
    expires_at: str


class SegmentOpened(BaseModel):
    segment_id: str
    media_session_id: str
    object_key: str
    status: str
    parts: list[PartUrl]
    sensors_upload: SensorsUpload | None


class PartsListed(BaseModel):
    model_config = ConfigDict(extra="allow")

    segment_id: str
    status: str
    uploaded: list[int]
    parts: list[PartUrl]


class SegmentView(BaseModel):
    segment_id: str
    media_session_id: str
    segment_index: int
    status: str
    object_key: str
    size_bytes: int
    part_count: int
    verification: Verification


def _need(bucket: Bucket | None) -> Bucket:
    if bucket is None:
        raise not_found("Object storage")  # metadata-only deployment: nothing to upload to
    return bucket


@router.post(
    "/api/media/sessions",
    status_code=201,
    response_model=SessionOpened,
    responses=errors(400, 403, 413),
    summary="Open a media session",
)
def open_session(principal: Media, db: Db, body: MediaSessionCreate) -> dict[str, Any]:
    return media.open_session(db, principal.tenant_id, body)


@router.post(
    "/api/media/sessions/{media_session_id}/segments",
    status_code=201,
    response_model=SegmentOpened,
    responses=errors(400, 403, 404, 409, 413),
    summary="Open a segment as a multipart upload: one URL per part, bound to its SHA-256",
)
def open_segment(
    media_session_id: str, principal: Media, db: Db, bucket: Store, body: SegmentOpen
) -> dict[str, Any]:
    return media.open_segment(db, _need(bucket), principal.tenant_id, media_session_id, body)


@router.get(
    "/api/media/segments/{segment_id}/parts",
    response_model=PartsListed,
    responses=errors(403, 404),
    summary="Parts in the store, and fresh URLs for the rest (resume)",
)
def list_parts(segment_id: str, principal: Media, db: Db, bucket: Store) -> dict[str, Any]:
    return media.list_parts(db, _need(bucket), principal.tenant_id, segment_id)


@router.post(
    "/api/media/segments/{segment_id}/complete",
    response_model=SegmentView,
    responses=errors(403, 404, 409, 413),
    summary="Check every part, complete the upload and hand the segment to the graph",
)
def complete_segment(segment_id: str, principal: Media, db: Db, bucket: Store) -> dict[str, Any]:
    return media.complete_segment(db, _need(bucket), principal.tenant_id, segment_id)


@router.get(
    "/api/media/segments/{segment_id}",
    response_model=SegmentView,
    responses=errors(403, 404),
    summary="A segment with its verification state",
)
def read_segment(segment_id: str, principal: Reader, db: Db, bucket: Store) -> dict[str, Any]:
    return media.segment_body(db, _need(bucket), principal.tenant_id, segment_id)
