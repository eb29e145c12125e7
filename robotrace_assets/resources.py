"""Dagster resources, in one place.

Credentials never enter resource config (the UI displays config): the object store reads them
from the environment through Settings when it builds its client. The config fields below only
override where to look, so tests and deployments can point one code location at another bucket.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from typing import Any

from dagster import ConfigurableResource
from pydantic import PrivateAttr

from robotrace_assets import catalog, layout
from robotrace_assets.objectstore.client import (
    GET_URL_TTL_S,
    S3Client,
    error_code,
    make_client,
    presign_get,
)
from robotrace_assets.settings import Settings

NOT_FOUND = {"404", "NoSuchKey", "NotFound"}


class ObjectNotFound(LookupError):
    pass


class ObjectStoreResource(ConfigurableResource):
    """The capture bucket (SeaweedFS locally, R2 in production) and the catalog inside it."""

    bucket: str | None = None

    _client: S3Client | None = PrivateAttr(default=None)

    @property
    def settings(self) -> Settings:
        return Settings.from_env()

    @property
    def bucket_name(self) -> str:
        return self.bucket or self.settings.bucket

    def client(self) -> S3Client:
        if self._client is None:
            self._client = make_client(self.settings)
        return self._client

    def head(self, key: str, *, part_number: int | None = None) -> dict[str, Any] | None:
        """HEAD with ChecksumMode=ENABLED; None when the object does not exist."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket_name, "Key": key, "ChecksumMode": "ENABLED"}
        if part_number is not None:
            kwargs["PartNumber"] = part_number
        try:
            return self.client().head_object(**kwargs)
        except self.client().exceptions.ClientError as error:
            if error_code(error) in NOT_FOUND:
                return None
            raise

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.client().get_object(Bucket=self.bucket_name, Key=key)["Body"].read()
        except self.client().exceptions.ClientError as error:
            if error_code(error) in NOT_FOUND:
                raise ObjectNotFound(f"s3://{self.bucket_name}/{key} does not exist") from None
            raise

    def put_bytes(self, key: str, data: bytes, content_type: str) -> dict[str, Any]:
        # An explicit SHA-256: the store refuses the PUT if the bytes arrive altered.
        checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
        return self.client().put_object(
            Bucket=self.bucket_name,
            Key=key,
            Body=data,
            ContentType=content_type,
            ChecksumSHA256=checksum,
        )

    def write_record(self, table: str, partition: str, rows: Sequence[dict[str, Any]]) -> str:
        key = layout.catalog_key(table, partition)
        self.put_bytes(key, catalog.to_parquet(rows), layout.PARQUET_CONTENT_TYPE)
        return key

    def read_record(self, table: str, partition: str) -> list[dict[str, Any]] | None:
        try:
            return catalog.from_parquet(self.get_bytes(layout.catalog_key(table, partition)))
        except ObjectNotFound:
            return None

    def presigned_get(
        self, key: str, ttl_s: int = GET_URL_TTL_S, if_match: str | None = None
    ) -> str:
        """A short-lived GET URL, pinned to an ETag when given. A credential: never log it."""
        return presign_get(self.client(), self.bucket_name, key, ttl_s, if_match)
