"""Reads pinned to proven bytes (If-Match on the proven ETag) against the real store: a plain
GET, every request ffmpeg makes, a server-side copy and a buyer's signed link."""

from pathlib import Path

import pytest
import requests

from robotrace_assets.capture.media import VideoSpec, encode_synthetic_video
from robotrace_assets.delivery.methods import (
    Artifact,
    DeliveryError,
    copy_into,
    link_headers,
    mint_links,
    verify_links,
)
from robotrace_assets.derivatives.media import DerivativeError, make_derivatives
from robotrace_assets.derivatives.profiles import CURRENT_PROFILE
from robotrace_assets.objectstore.client import (
    ObjectChanged,
    get_pinned,
    pin_headers,
    presign_get,
)

KEY = "robotics/raw/ten_01KT9WNH809PJX8W9XC34AE1HS/msess_x/seg.mp4"


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("pinned") / "clip.mp4"
    encode_synthetic_video(path, VideoSpec(seconds=2.0, codec="h264"))
    return path.read_bytes()


def _put(s3, bucket: str, data: bytes) -> str:
    return s3.put_object(Bucket=bucket, Key=KEY, Body=data, ContentType="video/mp4")["ETag"]


def test_get_pinned_refuses_replaced_and_deleted_objects(s3, bucket) -> None:
    proven = _put(s3, bucket, b"proven bytes")
    assert get_pinned(s3, bucket, KEY, proven) == b"proven bytes"
    _put(s3, bucket, b"other bytes!")
    with pytest.raises(ObjectChanged, match="replaced"):
        get_pinned(s3, bucket, KEY, proven)
    s3.delete_object(Bucket=bucket, Key=KEY)
    with pytest.raises(ObjectChanged, match="deleted"):
        get_pinned(s3, bucket, KEY, proven)


def test_every_ffmpeg_request_carries_the_pin(s3, bucket, video: bytes, tmp_path: Path) -> None:
    proven = _put(s3, bucket, video)
    url = presign_get(s3, bucket, KEY, 600, if_match=proven)
    made = make_derivatives(url, tmp_path / "ok", CURRENT_PROFILE, headers=pin_headers(proven))
    assert made.proxy.stat().st_size > 0
    # Same size, other bytes: the store answers 412 to ffmpeg's requests, nothing is made.
    _put(s3, bucket, video[:-64] + bytes(64))
    with pytest.raises(DerivativeError) as refused:
        make_derivatives(url, tmp_path / "no", CURRENT_PROFILE, headers=pin_headers(proven))
    assert "X-Amz-Signature" not in str(refused.value)  # the signed URL never leaks
    assert not (tmp_path / "no" / "proxy.mp4").exists()


def _artifact(etag: str, size: int) -> Artifact:
    return Artifact("raw_video", KEY, size, "0" * 64, "seg_x", ("clip_x",), {}, etag)


def test_copy_and_links_deliver_only_the_proven_object(s3, bucket) -> None:
    proven = _put(s3, bucket, b"proven bytes")
    assert copy_into(s3, bucket, _artifact(proven, 12), "robotics/deliveries/b/d/artifacts/1")
    pins = {KEY: proven.strip('"')}
    links, headers = mint_links(s3, bucket, pins), link_headers(pins)
    ok = requests.get(links[KEY], headers=headers[KEY], timeout=30)
    assert ok.status_code == 200 and ok.content == b"proven bytes"

    _put(s3, bucket, b"other bytes!")
    with pytest.raises(DeliveryError, match="no longer the proven object"):
        copy_into(s3, bucket, _artifact(proven, 12), "robotics/deliveries/b/d/artifacts/2")
    problems = verify_links(links, {KEY: (12, "0" * 64)}, headers)
    assert problems == [f"{KEY}: link answered HTTP 412"]
