"""One way to build an S3 client, for SeaweedFS and R2 alike.

- SigV4 always: boto3 still presigns with SigV2 unless told otherwise, and R2 accepts only v4.
- `request_checksum_calculation="when_required"`: botocore >= 1.36 otherwise adds CRC32
  trailers that R2 and other S3-compatible stores have rejected; we send explicit checksums
  where we rely on them instead.
- Path-style addressing: works for a loopback endpoint and for R2.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import boto3
from botocore.config import Config

from robotrace_assets.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
else:
    S3Client = Any

PUT_URL_TTL_S = 30 * 60  # signed PUT lifetime from the object-storage seed
GET_URL_TTL_S = 60 * 60  # signed GET lifetime from the object-storage seed


def client_config(max_pool_connections: int = 16) -> Config:
    return Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"max_attempts": 5, "mode": "standard"},
        max_pool_connections=max_pool_connections,
        connect_timeout=10,
        read_timeout=120,
    )


class Endpoint(Protocol):
    """Where and as whom to connect: Settings and the Dagster resource both carry these."""

    @property
    def endpoint_url(self) -> str: ...
    @property
    def region(self) -> str: ...
    @property
    def access_key_id(self) -> str: ...
    @property
    def secret_access_key(self) -> str: ...


def make_client(settings: Endpoint | None = None, *, anonymous: bool = False) -> S3Client:
    settings = settings or Settings.from_env()
    kwargs: dict[str, Any] = {}
    if anonymous:
        from botocore import UNSIGNED

        config = client_config().merge(Config(signature_version=UNSIGNED))
    else:
        config = client_config()
        kwargs = {
            "aws_access_key_id": settings.access_key_id,
            "aws_secret_access_key": settings.secret_access_key,
        }
    return boto3.session.Session().client(
        "s3",
        endpoint_url=settings.endpoint_url,
        region_name=settings.region,
        config=config,
        **kwargs,
    )


def ensure_bucket(client: S3Client, bucket: str) -> None:
    try:
        client.head_bucket(Bucket=bucket)
    except client.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
        client.create_bucket(Bucket=bucket)


def presign_put(
    client: S3Client, bucket: str, key: str, content_type: str, ttl_s: int = PUT_URL_TTL_S
) -> str:
    """A PUT URL with Content-Type bound into the signature (a mismatched PUT gets 403)."""
    return client.generate_presigned_url(
        "put_object",
        Params={"Bucket": bucket, "Key": key, "ContentType": content_type},
        ExpiresIn=ttl_s,
    )


def presign_upload_part(
    client: S3Client,
    bucket: str,
    key: str,
    upload_id: str,
    part_number: int,
    checksum_sha256_b64: str | None = None,
    ttl_s: int = PUT_URL_TTL_S,
) -> str:
    """An UploadPart URL; with a checksum, the part's SHA-256 is bound into the signature."""
    params = {"Bucket": bucket, "Key": key, "UploadId": upload_id, "PartNumber": part_number}
    if checksum_sha256_b64:
        params["ChecksumSHA256"] = checksum_sha256_b64
    return client.generate_presigned_url("upload_part", Params=params, ExpiresIn=ttl_s)


def presign_get(
    client: S3Client,
    bucket: str,
    key: str,
    ttl_s: int = GET_URL_TTL_S,
    if_match: str | None = None,
) -> str:
    """A GET URL. With `if_match` (an ETag) the If-Match header is signed into it: the reader
    must send `pin_headers(etag)`, and a replaced object answers 412 instead of other bytes."""
    params = {"Bucket": bucket, "Key": key}
    if if_match:
        params["IfMatch"] = quoted(if_match)
    return client.generate_presigned_url("get_object", Params=params, ExpiresIn=ttl_s)


class ObjectNotFound(LookupError):
    """The object does not exist (404, NoSuchKey)."""


NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


def head_object(
    client: S3Client,
    bucket: str,
    key: str,
    *,
    part_number: int | None = None,
    checksum: bool = True,
) -> dict[str, Any] | None:
    """HEAD (with ChecksumMode=ENABLED unless told otherwise); None when there is no object."""
    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if checksum:
        kwargs["ChecksumMode"] = "ENABLED"
    if part_number is not None:
        kwargs["PartNumber"] = part_number
    try:
        return dict(client.head_object(**kwargs))
    except client.exceptions.ClientError as error:
        if error_code(error) in NOT_FOUND_CODES:
            return None
        raise


class ObjectChanged(RuntimeError):
    """A pinned read found another object (or none) where the proven one was."""


def quoted(etag: str) -> str:
    return f'"{etag.strip(chr(34))}"'


def pin_headers(etag: str) -> dict[str, str]:
    """The headers a reader of a pinned URL sends."""
    return {"If-Match": quoted(etag)}


def get_pinned(client: S3Client, bucket: str, key: str, etag: str) -> bytes:
    """The object's bytes if it is still the one with `etag`; ObjectChanged otherwise."""
    try:
        return client.get_object(Bucket=bucket, Key=key, IfMatch=quoted(etag))["Body"].read()
    except client.exceptions.ClientError as error:
        code = error_code(error)
        if code in ("PreconditionFailed", "412"):
            raise ObjectChanged(f"{key} was replaced after its proof") from None
        if code in ("404", "NoSuchKey", "NotFound"):
            raise ObjectChanged(f"{key} was deleted after its proof") from None
        raise


def error_code(error: BaseException) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))
