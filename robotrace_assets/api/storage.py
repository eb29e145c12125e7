"""The bucket, as the HTTP layer needs it: signed PUT/GET URLs, HEADs, catalog reads.

Signed URLs are credentials: they go into response bodies and Location headers only, never into
a log line or an error message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from robotrace_assets import catalog, layout
from robotrace_assets.ingest.verify import Observed
from robotrace_assets.objectstore.client import (
    GET_URL_TTL_S,
    PUT_URL_TTL_S,
    S3Client,
    error_code,
    head_object,
    presign_get,
    presign_put,
)

NOT_FOUND = {"404", "NoSuchKey", "NotFound"}


def iso_ms(at: datetime) -> str:
    """RoboTrace's timestamp shape: `2026-05-02T15:30:00.000Z`."""
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Bucket:
    client: S3Client
    name: str
    public_base_url: str | None = None

    def upload_url(self, kind: str, key: str, content_type: str, now: datetime) -> dict[str, Any]:
        """One `upload_urls` entry: a 30-minute PUT URL with the Content-Type signed in."""
        return {
            "kind": kind,
            "url": presign_put(self.client, self.name, key, content_type, PUT_URL_TTL_S),
            "expires_at": iso_ms(now + timedelta(seconds=PUT_URL_TTL_S)),
            "public_url": f"{self.public_base_url}/{key}" if self.public_base_url else None,
        }

    def read_url(self, key: str) -> str:
        return presign_get(self.client, self.name, key, GET_URL_TTL_S)

    def head(self, key: str) -> Observed | None:
        response = head_object(self.client, self.name, key, checksum=False)
        if response is None:
            return None
        return Observed(
            size=int(response["ContentLength"]),
            content_type=str(response.get("ContentType", "")),
            etag=str(response.get("ETag", "")).strip('"'),
        )

    def read_range(self, key: str, offset: int, length: int, etag: str) -> bytes:
        """Bytes [offset, offset + length) of the object, pinned to the ETag that was HEADed."""
        response = self.client.get_object(
            Bucket=self.name, Key=key, Range=f"bytes={offset}-{offset + length - 1}", IfMatch=etag
        )
        return response["Body"].read()

    def record(self, table: str, partition: str) -> list[dict[str, Any]] | None:
        """A catalog record (Parquet) the pipeline wrote, or None before it exists."""
        try:
            body = self.client.get_object(
                Bucket=self.name, Key=layout.catalog_key(table, partition)
            )["Body"].read()
        except self.client.exceptions.ClientError as error:
            if error_code(error) in NOT_FOUND:
                return None
            raise
        return catalog.from_parquet(body)
