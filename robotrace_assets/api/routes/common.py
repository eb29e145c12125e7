"""Dependencies and OpenAPI error declarations shared by the routers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from robotrace_assets.api.auth import Principal, require
from robotrace_assets.api.db.session import DbSession
from robotrace_assets.api.storage import Bucket
from robotrace_assets.ingest.keys import SCOPE_INGEST, SCOPE_MEDIA, SCOPE_READ
from robotrace_assets.ingest.wire import ErrorBody


def bucket_or_none(request: Request) -> Bucket | None:
    """The bucket, or None when storage is unconfigured (RoboTrace's metadata-only mode)."""
    config = request.app.state.config
    if not config.storage_enabled:
        return None
    return Bucket(request.app.state.s3, request.app.state.bucket, config.public_artifact_base_url)


Db = DbSession
Store = Annotated[Bucket | None, Depends(bucket_or_none)]
Ingest = Annotated[Principal, Depends(require(SCOPE_INGEST))]
Reader = Annotated[Principal, Depends(require(SCOPE_READ))]
Media = Annotated[Principal, Depends(require(SCOPE_MEDIA))]


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses for error codes: all share the `{"error": ...}` body."""
    text = {
        400: "Body is not JSON or fails validation",
        401: "Missing, unknown or revoked API key",
        403: "The key lacks the scope",
        404: "Unknown id, or another tenant's",
        409: "Archived, or already final",
        413: "Body too large",
        429: "Rate limit; see Retry-After",
        500: "Internal error",
    }
    every = sorted({401, 429, 500, *codes})
    return {c: {"model": ErrorBody, "description": text.get(c, "Error")} for c in every}
