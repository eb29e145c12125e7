"""Reads: the episode with its verification state, and auth-gated artifact reads.

An artifact read authenticates, checks the tenant, mints a 1-hour signed GET and answers 302 to
it. The player follows the redirect to the bucket's own origin and sends its Range requests
there, so byte ranges work; the URL is in the Location header only (never logged), and the
response is marked no-store so no cache keeps the credential.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from robotrace_assets import catalog
from robotrace_assets.api import episodes
from robotrace_assets.api.db.models import Artifact, Episode, Segment
from robotrace_assets.api.errors import ApiError, not_found
from robotrace_assets.api.routes.common import Db, Reader, Store, errors
from robotrace_assets.api.storage import Bucket
from robotrace_assets.ingest.media_envelopes import sensors_key
from robotrace_assets.ingest.wire import Verification

router = APIRouter(tags=["reads"])
REDIRECT = {302: {"description": "Redirect to a 1-hour signed GET URL on the bucket's origin"}}


class ArtifactInfo(BaseModel):
    kind: str
    content_type: str
    size_bytes: int | None


class EpisodeView(BaseModel):
    model_config = ConfigDict(extra="allow")

    episode_id: str
    status: str
    storage: str
    metadata: dict[str, Any]
    request_uploads: list[str]
    artifacts: list[ArtifactInfo]
    created_at: str
    updated_at: str
    verification: Verification


def _redirect(bucket: Bucket, key: str) -> RedirectResponse:
    if bucket.head(key) is None:
        raise not_found("Artifact")
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    return RedirectResponse(bucket.read_url(key), status_code=302, headers=headers)


def _need(bucket: Bucket | None) -> Bucket:
    if bucket is None:
        raise not_found("Artifact")  # storage unconfigured: no artifact exists anywhere
    return bucket


@router.get(
    "/api/episodes/{episode_id}",
    response_model=EpisodeView,
    responses=errors(403, 404),
    summary="An episode with its metadata and verification state (beyond RoboTrace)",
)
def read_episode(episode_id: str, principal: Reader, db: Db, bucket: Store) -> dict:
    episode = episodes.load(db, principal.tenant_id, episode_id)
    return episodes.episode_body(db, bucket, episode)


@router.get(
    "/api/episodes/{episode_id}/artifact/{kind}",
    response_class=RedirectResponse,
    responses={**REDIRECT, **errors(403, 404)},
    summary="Auth-gated read of an episode artifact (video, sensors, actions)",
)
def read_episode_artifact(
    episode_id: str, kind: str, principal: Reader, db: Db, bucket: Store
) -> RedirectResponse:
    episode = episodes.load(db, principal.tenant_id, episode_id)
    artifact = db.get(Artifact, (episode.id, kind))
    if artifact is None:
        raise not_found("Artifact")
    return _redirect(_need(bucket), artifact.object_key)


def _segment_keys(db: Db, tenant_id: str, segment_id: str) -> dict[str, str]:
    """role -> object key of a segment of this tenant (an episode's, or a large-media one)."""
    episode = db.scalars(
        select(Episode).where(Episode.segment_id == segment_id, Episode.tenant_id == tenant_id)
    ).first()
    if episode is not None:
        rows = db.scalars(select(Artifact).where(Artifact.episode_id == episode.id))
        return {("raw" if a.kind == "video" else a.kind): a.object_key for a in rows}
    segment = db.scalars(
        select(Segment).where(Segment.id == segment_id, Segment.tenant_id == tenant_id)
    ).first()
    if segment is None:
        raise not_found("Segment")
    keys = {"raw": segment.object_key}
    sensors = (segment.extra or {}).get("declared", {}).get("sensors")
    if sensors:
        keys["sensors"] = sensors_key(
            tenant_id, segment.media_session_id, segment.id, sensors["format"]
        )
    return keys


@router.get(
    "/api/segments/{segment_id}/artifact/{role}",
    response_class=RedirectResponse,
    responses={**REDIRECT, **errors(403, 404)},
    summary="Auth-gated read of a segment's raw video (`raw`) or a declared object (by role)",
)
def read_segment_artifact(
    segment_id: str, role: str, principal: Reader, db: Db, bucket: Store
) -> RedirectResponse:
    key = _segment_keys(db, principal.tenant_id, segment_id).get(role)
    if key is None:
        raise not_found("Artifact")
    return _redirect(_need(bucket), key)


@router.get(
    "/api/segments/{segment_id}/derivatives/{kind}",
    response_class=RedirectResponse,
    responses={**REDIRECT, **errors(400, 403, 404)},
    summary="Auth-gated read of a derivative (proxy, contact_sheet, thumbnail?index=N)",
)
def read_derivative(
    segment_id: str, kind: str, principal: Reader, db: Db, bucket: Store, index: int = 0
) -> RedirectResponse:
    _segment_keys(db, principal.tenant_id, segment_id)  # the tenant check
    bucket = _need(bucket)
    rows = [r for r in bucket.record(catalog.DERIVATIVES, segment_id) or [] if r["kind"] == kind]
    if index < 0:
        raise ApiError(400, "Invalid request: index must be >= 0.")
    if index >= len(rows):
        raise not_found("Derivative")
    return _redirect(bucket, rows[index]["key"])
