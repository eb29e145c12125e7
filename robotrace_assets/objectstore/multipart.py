"""Multipart maths (pure) and a capture-client uploader that sends parts through presigned URLs.

The formulas are the AWS/R2 ones: the multipart ETag is md5(concat(md5(part_i)))-N and the
composite SHA-256 is b64(sha256(concat(sha256(part_i))))-N. Neither equals the whole-object
SHA-256 a client declares, which is why provider proof reads the bytes.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import requests

from robotrace_assets.objectstore.client import S3Client, presign_upload_part

MIN_PART_SIZE = 5 * 1024 * 1024  # S3 and R2: every part but the last
MAX_PART_SIZE = 5 * 1024**3
MAX_PARTS = 10_000
HASH_CHUNK = 1024 * 1024


class MultipartError(RuntimeError):
    pass


class UploadInterrupted(MultipartError):
    """Raised on purpose (stop_after_parts) to simulate a client that dies mid-upload."""


@dataclass(frozen=True)
class PartRange:
    number: int  # 1-based, as S3 numbers parts
    offset: int
    size: int

    @property
    def end(self) -> int:  # exclusive
        return self.offset + self.size


def plan_parts(size: int, part_size: int) -> list[PartRange]:
    """Equal parts of `part_size` and a shorter last one, as R2 requires."""
    if size < 0:
        raise MultipartError("size must be >= 0")
    if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
        raise MultipartError(f"part size must be within 5 MiB..5 GiB, got {part_size}")
    count = max(1, -(-size // part_size))
    if count > MAX_PARTS:
        raise MultipartError(f"{count} parts exceed the limit of {MAX_PARTS}; raise the part size")
    return [
        PartRange(number=i + 1, offset=i * part_size, size=min(part_size, size - i * part_size))
        for i in range(count)
    ]


def multipart_etag(part_md5s: Sequence[bytes]) -> str:
    """The ETag S3/R2 give a completed multipart object (unquoted)."""
    if not part_md5s:
        raise MultipartError("no parts")
    return f"{hashlib.md5(b''.join(part_md5s)).hexdigest()}-{len(part_md5s)}"


def composite_sha256(part_sha256s: Sequence[bytes]) -> str:
    """The COMPOSITE x-amz-checksum-sha256 of a multipart object."""
    digest = hashlib.sha256(b"".join(part_sha256s)).digest()
    return f"{base64.b64encode(digest).decode()}-{len(part_sha256s)}"


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


@dataclass(frozen=True)
class FileDigest:
    """Whole-file SHA-256 and per-part MD5/SHA-256, computed in one read of the file."""

    size: int
    sha256_hex: str
    parts: tuple[PartRange, ...]
    part_md5s: tuple[bytes, ...]
    part_sha256s: tuple[bytes, ...]

    @property
    def etag(self) -> str:
        return multipart_etag(self.part_md5s)

    @property
    def composite_sha256(self) -> str:
        return composite_sha256(self.part_sha256s)


def digest_file(path: Path, part_size: int) -> FileDigest:
    size = path.stat().st_size
    parts = plan_parts(size, part_size)
    whole = hashlib.sha256()
    md5s: list[bytes] = []
    shas: list[bytes] = []
    with open(path, "rb") as handle:
        for part in parts:
            md5, sha = hashlib.md5(), hashlib.sha256()
            for chunk in _read_range(handle, part.offset, part.size):
                whole.update(chunk)
                md5.update(chunk)
                sha.update(chunk)
            md5s.append(md5.digest())
            shas.append(sha.digest())
    return FileDigest(size, whole.hexdigest(), tuple(parts), tuple(md5s), tuple(shas))


def _read_range(handle: BinaryIO, offset: int, size: int) -> Iterator[bytes]:
    handle.seek(offset)
    remaining = size
    while remaining:
        chunk = handle.read(min(HASH_CHUNK, remaining))
        if not chunk:
            raise MultipartError("file shrank while it was being read")
        remaining -= len(chunk)
        yield chunk


class _RangeBody:
    """A file range that requests streams with an exact Content-Length (no chunked encoding)."""

    def __init__(self, path: Path, offset: int, size: int) -> None:
        self._handle = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._handle.seek(offset)
        self._remaining = size
        self._size = size

    def __len__(self) -> int:
        return self._size

    def read(self, amount: int = -1) -> bytes:
        if self._remaining <= 0:
            return b""
        amount = self._remaining if amount is None or amount < 0 else min(amount, self._remaining)
        data = self._handle.read(amount)
        self._remaining -= len(data)
        return data

    def close(self) -> None:
        self._handle.close()


@dataclass
class UploadReport:
    key: str
    upload_id: str
    etag: str
    size: int
    parts_uploaded: list[int] = field(default_factory=list)  # this call, after resume
    parts_resumed: list[int] = field(default_factory=list)  # already in the store
    retries: int = 0


# (part_number, attempt) -> None; raise to simulate a transport failure on that attempt.
FaultHook = Callable[[int, int], None]


@dataclass
class PresignedMultipartUploader:
    """Uploads one file the way a capture client does: parts go straight to the bucket over
    presigned UploadPart URLs, each bound to its SHA-256, so the store rejects corrupted parts.

    `client` plays the ingest server's role (create / list / complete, minting URLs); the part
    bytes never pass through it. A failed part is retried on its own; an interrupted upload is
    resumed by listing the parts already in the store.
    """

    client: S3Client
    bucket: str
    part_size: int = 64 * 1024 * 1024
    max_attempts: int = 4
    backoff_s: float = 0.2
    session: requests.Session = field(default_factory=requests.Session)

    def find_upload(self, key: str) -> str | None:
        """The newest in-progress multipart upload for exactly this key."""
        response = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=key)
        uploads = [u for u in response.get("Uploads", []) if u["Key"] == key]
        if not uploads:
            return None
        return max(uploads, key=lambda u: u["Initiated"])["UploadId"]

    def uploaded_parts(self, key: str, upload_id: str) -> dict[int, dict]:
        parts: dict[int, dict] = {}
        marker = 0
        while True:
            page = self.client.list_parts(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumberMarker=marker
            )
            for part in page.get("Parts", []):
                parts[part["PartNumber"]] = dict(part)
            if not page.get("IsTruncated"):
                return parts
            marker = page["NextPartNumberMarker"]

    def upload(
        self,
        path: Path,
        key: str,
        content_type: str,
        *,
        digest: FileDigest | None = None,
        complete_parts: Sequence[int] | None = None,
        stop_after_parts: int | None = None,
        fault: FaultHook | None = None,
        on_bytes: Callable[[int], None] | None = None,
    ) -> UploadReport:
        """Upload `path` to `key`, resuming an earlier attempt at the same key if there is one.

        `complete_parts` completes with only those part numbers (to reproduce a client that
        drops a part); `stop_after_parts` raises UploadInterrupted after that many new parts.
        """
        digest = digest or digest_file(path, self.part_size)
        upload_id = self.find_upload(key)
        existing: dict[int, dict] = {}
        if upload_id:
            existing = self.uploaded_parts(key, upload_id)
        else:
            upload_id = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=key, ContentType=content_type, ChecksumAlgorithm="SHA256"
            )["UploadId"]
        report = UploadReport(key=key, upload_id=upload_id, etag="", size=digest.size)
        etags: dict[int, str] = {}
        for part, md5, sha in zip(digest.parts, digest.part_md5s, digest.part_sha256s, strict=True):
            have = existing.get(part.number)
            if have and have["Size"] == part.size and have["ETag"].strip('"') == md5.hex():
                etags[part.number] = have["ETag"]
                report.parts_resumed.append(part.number)
                if on_bytes:
                    on_bytes(part.size)
                continue
            if stop_after_parts is not None and len(report.parts_uploaded) >= stop_after_parts:
                raise UploadInterrupted(f"stopped after {stop_after_parts} parts of {key}")
            etags[part.number] = self._put_part(path, key, upload_id, part, sha, fault, report)
            report.parts_uploaded.append(part.number)
            if on_bytes:
                on_bytes(part.size)
        chosen = complete_parts if complete_parts is not None else sorted(etags)
        shas = dict(zip((p.number for p in digest.parts), digest.part_sha256s, strict=True))
        result = self.client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={
                "Parts": [
                    {"PartNumber": n, "ETag": etags[n], "ChecksumSHA256": b64(shas[n])}
                    for n in chosen
                ]
            },
        )
        report.etag = result["ETag"].strip('"')
        return report

    def _put_part(
        self,
        path: Path,
        key: str,
        upload_id: str,
        part: PartRange,
        sha: bytes,
        fault: FaultHook | None,
        report: UploadReport,
    ) -> str:
        last_error: Exception | None = None
        for attempt in range(1, self.max_attempts + 1):
            # A fresh URL per attempt: a retry after a long stall must not reuse an expired one.
            url = presign_upload_part(
                self.client, self.bucket, key, upload_id, part.number, b64(sha)
            )
            body = _RangeBody(path, part.offset, part.size)
            try:
                if fault:
                    fault(part.number, attempt)
                response = self.session.put(
                    url, data=body, headers={"x-amz-checksum-sha256": b64(sha)}, timeout=300
                )
                if response.status_code == 200:
                    return response.headers["ETag"]
                # 4xx other than throttling will not get better by retrying.
                if response.status_code < 500 and response.status_code != 429:
                    raise MultipartError(
                        f"part {part.number} of {key} refused: HTTP {response.status_code}"
                    )
                last_error = MultipartError(f"HTTP {response.status_code}")
            except (requests.ConnectionError, requests.Timeout, ConnectionError) as error:
                last_error = error
            finally:
                body.close()
            report.retries += 1
            time.sleep(self.backoff_s * 2 ** (attempt - 1))
        raise MultipartError(
            f"part {part.number} of {key} failed after {self.max_attempts} attempts: "
            f"{type(last_error).__name__}"
        )
