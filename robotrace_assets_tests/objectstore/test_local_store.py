"""The embedded SeaweedFS store and the S3 behaviour the pipeline relies on (no mocks)."""

import hashlib
import os
from pathlib import Path

import pytest
import requests
from botocore.exceptions import ClientError

from robotrace_assets.objectstore.client import make_client, presign_put
from robotrace_assets.objectstore.local import LocalObjectStore, _pid_alive, find_free_port_block
from robotrace_assets.objectstore.multipart import (
    MIN_PART_SIZE,
    PresignedMultipartUploader,
    UploadInterrupted,
    digest_file,
)
from robotrace_assets.settings import Settings


def test_store_starts_reuses_and_stops_without_stray_processes(tmp_path: Path) -> None:
    store = LocalObjectStore(
        tmp_path, find_free_port_block(), "probe-bucket", "key-id", "secret-value"
    )
    first = store.start()
    try:
        assert first["running"]
        pid = store.pid()
        assert pid is not None
        # A second start finds the running server and reuses it.
        assert store.start()["pid"] == pid
        identities = tmp_path / "s3-identities.json"
        assert oct(identities.stat().st_mode & 0o777) == "0o600"
        store.client().head_bucket(Bucket="probe-bucket")
    finally:
        assert store.stop()
    assert not _pid_alive(pid)
    # Nothing of that process group is left behind.
    leftovers = [p for p in os.listdir("/proc") if p.isdigit() and _in_group(int(p), pid)]
    assert leftovers == []
    assert store.status()["running"] is False
    assert not store.stop()


def _in_group(pid: int, group: int) -> bool:
    try:
        return os.getpgid(pid) == group and _pid_alive(pid)
    except ProcessLookupError:
        return False


def test_store_listens_on_loopback_only(local_store: LocalObjectStore) -> None:
    with open("/proc/net/tcp") as tcp:
        rows = [line.split() for line in tcp.readlines()[1:]]
    port_hex = f"{local_store.s3_port:04X}"
    listening = [r[1] for r in rows if r[1].endswith(f":{port_hex}") and r[3] == "0A"]
    assert listening == ["0100007F:" + port_hex]  # 127.0.0.1


def test_presigned_put_binds_content_type(s3, bucket: str) -> None:
    url = presign_put(s3, bucket, "robotics/x.json", "application/json")
    wrong = requests.put(url, data=b"{}", headers={"Content-Type": "text/plain"}, timeout=30)
    assert wrong.status_code == 403
    right = requests.put(url, data=b"{}", headers={"Content-Type": "application/json"}, timeout=30)
    assert right.status_code == 200


def test_anonymous_access_is_refused(s3, bucket: str, local_store: LocalObjectStore) -> None:
    s3.put_object(Bucket=bucket, Key="robotics/secret.bin", Body=b"x")
    anonymous = make_client(local_store.settings(), anonymous=True)
    with pytest.raises(ClientError) as listing:
        anonymous.list_objects_v2(Bucket=bucket)
    assert listing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    direct = requests.get(f"{local_store.endpoint_url}/{bucket}/robotics/secret.bin", timeout=30)
    assert direct.status_code == 403


def test_wrong_credentials_are_refused(local_store: LocalObjectStore, bucket: str) -> None:
    settings = local_store.settings()
    forged = make_client(Settings(**{**settings.__dict__, "secret_access_key": "not-the-secret"}))
    with pytest.raises(ClientError):
        forged.list_objects_v2(Bucket=bucket)


def test_multipart_upload_resumes_after_interruption(s3, bucket: str, tmp_path: Path) -> None:
    path = tmp_path / "video.mp4"
    path.write_bytes(os.urandom(3 * MIN_PART_SIZE + 4321))
    digest = digest_file(path, MIN_PART_SIZE)
    uploader = PresignedMultipartUploader(s3, bucket, part_size=MIN_PART_SIZE)
    key = "robotics/raw/ten_A/m/seg.mp4"
    with pytest.raises(UploadInterrupted):
        uploader.upload(path, key, "video/mp4", stop_after_parts=2)
    assert s3.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount", 0) == 0
    report = uploader.upload(path, key, "video/mp4")
    assert report.parts_resumed == [1, 2]
    assert report.parts_uploaded == [3, 4]
    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head["ContentLength"] == digest.size
    assert head["ETag"].strip('"') == digest.etag == report.etag
    assert head["ChecksumSHA256"] == digest.composite_sha256
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == digest.sha256_hex


def test_failed_part_is_retried_without_restarting(s3, bucket: str, tmp_path: Path) -> None:
    path = tmp_path / "video.mp4"
    path.write_bytes(os.urandom(2 * MIN_PART_SIZE + 1))
    uploader = PresignedMultipartUploader(s3, bucket, part_size=MIN_PART_SIZE, backoff_s=0.01)
    attempts: list[tuple[int, int]] = []

    def flaky(part: int, attempt: int) -> None:
        attempts.append((part, attempt))
        if part == 2 and attempt < 3:
            raise ConnectionError("link dropped")

    report = uploader.upload(path, "robotics/raw/ten_A/m/flaky.mp4", "video/mp4", fault=flaky)
    assert report.retries == 2
    assert [a for a in attempts if a[0] != 2] == [(1, 1), (3, 1)]
    assert report.parts_uploaded == [1, 2, 3]


def test_part_with_wrong_bytes_is_refused_by_the_store(s3, bucket: str) -> None:
    """The presigned part URL binds the part's SHA-256: other bytes cannot land under it."""
    from robotrace_assets.objectstore.client import presign_upload_part
    from robotrace_assets.objectstore.multipart import b64

    key = "robotics/raw/ten_A/m/bound.mp4"
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256")
    declared = b64(hashlib.sha256(b"declared bytes").digest())
    url = presign_upload_part(s3, bucket, key, upload["UploadId"], 1, declared)
    response = requests.put(
        url, data=b"other bytes", headers={"x-amz-checksum-sha256": declared}, timeout=30
    )
    assert response.status_code in (400, 403)
