"""RoboTrace's ingest endpoints (wire-compatible) and the upload-URL regeneration beyond them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body
from pydantic import BaseModel

from robotrace_assets.api import episodes
from robotrace_assets.api.routes.common import Db, Ingest, Store, errors
from robotrace_assets.ingest.wire import (
    EpisodeCreate,
    EpisodeCreated,
    EpisodeFinalize,
    EpisodeFinalized,
    UploadUrl,
    UploadUrlsRequest,
)

router = APIRouter(tags=["ingest"])


class UploadUrls(BaseModel):
    episode_id: str
    status: str
    storage: str
    upload_urls: list[UploadUrl]


@router.post(
    "/api/ingest/episode",
    status_code=201,
    response_model=EpisodeCreated,
    responses=errors(400, 403, 413),
    summary="Open a run (RoboTrace step 1)",
)
def open_episode(
    principal: Ingest, db: Db, bucket: Store, body: Annotated[EpisodeCreate | None, Body()] = None
) -> dict:
    return episodes.open_episode(db, bucket, principal.tenant_id, body or EpisodeCreate())


@router.post(
    "/api/ingest/episode/{episode_id}/finalize",
    response_model=EpisodeFinalized,
    responses=errors(400, 403, 404, 409, 413),
    summary="Finalize a run (RoboTrace step 3), verified",
)
def finalize_episode(
    episode_id: str,
    principal: Ingest,
    db: Db,
    bucket: Store,
    body: Annotated[EpisodeFinalize | None, Body()] = None,
) -> dict:
    return episodes.finalize(db, bucket, principal.tenant_id, episode_id, body or EpisodeFinalize())


@router.post(
    "/api/ingest/episode/{episode_id}/upload-urls",
    response_model=UploadUrls,
    responses=errors(400, 403, 404, 409, 413),
    summary="Fresh signed PUT URLs for the same episode and keys (beyond RoboTrace)",
)
def regenerate_upload_urls(
    episode_id: str,
    principal: Ingest,
    db: Db,
    bucket: Store,
    body: Annotated[UploadUrlsRequest | None, Body()] = None,
) -> dict:
    kinds = list(body.kinds) if body and body.kinds is not None else None
    return episodes.regenerate_urls(db, bucket, principal.tenant_id, episode_id, kinds)
