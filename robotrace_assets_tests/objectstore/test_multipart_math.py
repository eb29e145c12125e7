import base64
import hashlib
import os
from pathlib import Path

import pytest

from robotrace_assets.objectstore.multipart import (
    MIN_PART_SIZE,
    MultipartError,
    composite_sha256,
    digest_file,
    multipart_etag,
    plan_parts,
)


def test_plan_parts_equal_parts_and_a_short_last_one() -> None:
    parts = plan_parts(2 * MIN_PART_SIZE + 10, MIN_PART_SIZE)
    assert [p.size for p in parts] == [MIN_PART_SIZE, MIN_PART_SIZE, 10]
    assert [p.offset for p in parts] == [0, MIN_PART_SIZE, 2 * MIN_PART_SIZE]
    assert plan_parts(0, MIN_PART_SIZE)[0].size == 0


def test_plan_parts_enforces_r2_limits() -> None:
    with pytest.raises(MultipartError):
        plan_parts(100, MIN_PART_SIZE - 1)
    with pytest.raises(MultipartError, match="10000"):
        plan_parts(10_001 * MIN_PART_SIZE, MIN_PART_SIZE)


def test_etag_and_composite_checksum_follow_the_aws_formulas() -> None:
    parts = [b"a" * 10, b"b" * 7]
    md5s = [hashlib.md5(p).digest() for p in parts]
    assert multipart_etag(md5s) == hashlib.md5(md5s[0] + md5s[1]).hexdigest() + "-2"
    shas = [hashlib.sha256(p).digest() for p in parts]
    expected = base64.b64encode(hashlib.sha256(shas[0] + shas[1]).digest()).decode() + "-2"
    assert composite_sha256(shas) == expected


def test_digest_file_matches_hashlib(tmp_path: Path) -> None:
    data = os.urandom(MIN_PART_SIZE + 12345)
    path = tmp_path / "blob"
    path.write_bytes(data)
    digest = digest_file(path, MIN_PART_SIZE)
    assert digest.sha256_hex == hashlib.sha256(data).hexdigest()
    assert digest.part_md5s == (
        hashlib.md5(data[:MIN_PART_SIZE]).digest(),
        hashlib.md5(data[MIN_PART_SIZE:]).digest(),
    )
