"""Writing and reading manifests: JSON and Parquet round trips, the fast reader, big tables."""

from __future__ import annotations

import hashlib
import io
import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from robotrace_assets.delivery.manifest import read, steps, write
from robotrace_assets.delivery.manifest.read import read_manifest_json, read_manifest_parquet
from robotrace_assets.delivery.manifest.rows import table_from_rows
from robotrace_assets.delivery.manifest.verify import verify_manifest
from robotrace_assets.delivery.manifest.write import (
    manifest_json_bytes,
    manifest_parquet_bytes,
    write_manifest_json,
)
from robotrace_assets_tests.delivery.manifest.samples import KEY, PREFIX, build, row


def test_json_round_trip_verifies() -> None:
    manifest = build()
    data = manifest_json_bytes(manifest)
    streamed = io.BytesIO()
    write_manifest_json(manifest, streamed)
    assert streamed.getvalue() == data
    back = read_manifest_json(data)
    assert back.header == manifest.header
    assert back.order is None and back.table.equals(manifest.canonical_table())
    assert verify_manifest(back, hmac_key=KEY) == []
    assert verify_manifest(manifest, hmac_key=KEY) == []


def test_parquet_round_trip_verifies_and_carries_the_header() -> None:
    manifest = build()
    data = manifest_parquet_bytes(manifest)
    metadata = pq.read_schema(pa.BufferReader(data)).metadata
    assert json.loads(metadata[b"robotrace.manifest"]) == manifest.header.to_dict()
    back = read_manifest_parquet(data)
    assert back.header == manifest.header
    assert back.table.equals(manifest.canonical_table())
    assert verify_manifest(back, hmac_key=KEY) == []


def test_a_reformatted_json_manifest_still_reads_and_verifies() -> None:
    doc = json.loads(manifest_json_bytes(build()))
    doc["artifacts"].reverse()
    pretty = json.dumps(doc, indent=2, ensure_ascii=True).encode()  # \u escapes, other order
    back = read_manifest_json(pretty)
    assert verify_manifest(back, hmac_key=KEY) == []


def test_fast_json_reader_takes_only_byte_exact_canonical_files(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    manifest = build()
    data = manifest_json_bytes(manifest)
    monkeypatch.setattr(read, "_JSON_BLOCK_BYTES", 64)  # several blocks, in threads
    fast = read._read_canonical_json(data)
    assert fast is not None and fast.table.equals(manifest.canonical_table())
    # Same meaning, other spelling (a space; a duplicated key a parser may resolve either
    # way): not canonical, so the strict parser reads it and the digests judge the values.
    spaced = data.replace(b'"kind":', b'"kind": ', 1)
    twice = data.replace(b'{"allowed_use":', b'{"kind":"proxy","allowed_use":', 1)
    for variant in (spaced, twice):
        assert read._read_canonical_json(variant) is None
    assert verify_manifest(read_manifest_json(spaced), hmac_key=KEY) == []
    assert verify_manifest(read_manifest_json(twice), hmac_key=KEY) == []


def test_empty_manifest() -> None:
    manifest = build([])
    assert manifest.header.artifact_count == 0 and manifest.header.total_bytes == 0
    assert manifest.header.bundle_sha256 == hashlib.sha256(b"").hexdigest()
    for back in (
        read_manifest_json(manifest_json_bytes(manifest)),
        read_manifest_parquet(manifest_parquet_bytes(manifest)),
    ):
        assert back.table.num_rows == 0 and verify_manifest(back, hmac_key=KEY) == []


def test_many_small_steps_write_the_same_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """Steps of a few rows (taken from a multi-chunk table) give the very same bytes, and a
    duplicate key that straddles two steps is still found."""
    data = [row(f"seg_{i:03d}.mp4", i) for i in range(40)]
    random.Random(5).shuffle(data)
    whole = build(data)
    chunked = pa.concat_tables([table_from_rows(data[i : i + 7]) for i in range(0, len(data), 7)])
    monkeypatch.setattr(steps, "_STEP_BYTES", 1)
    monkeypatch.setattr(steps, "_MAX_STEP_ROWS", 3)
    monkeypatch.setattr(write, "_ROW_GROUP_ROWS", 5)
    small = build(chunked)
    assert small.header == whole.header
    assert manifest_json_bytes(small) == manifest_json_bytes(whole)
    back = read_manifest_parquet(manifest_parquet_bytes(small))
    assert back.table.equals(whole.canonical_table())
    assert verify_manifest(back, hmac_key=KEY) == []
    with pytest.raises(ValueError, match="duplicate artifact_key"):
        build([*data, row("seg_010.mp4", 99)])


def test_a_100k_row_manifest_builds_and_round_trips() -> None:
    count = 100_000
    keys = [f"{PREFIX}ten_x/msess_{i % 97:02d}/seg_{i:06d}.mp4" for i in range(count)]
    random.Random(11).shuffle(keys)
    digests = [hashlib.sha256(k.encode()).hexdigest() for k in keys]
    table = pa.table(
        {
            **{name: pa.array([value] * count) for name, value in row("x").items()},
            "artifact_key": keys,
            "size_bytes": pa.array(range(count), pa.int64()),
            "sha256": digests,
        }
    )
    manifest = build(pa.concat_tables([table.slice(0, 60_000), table.slice(60_000)]))
    ordered = sorted(zip(keys, range(count), digests, strict=True))
    lines = "".join(f"{k}\t{s}\t{d}\n" for k, s, d in ordered)
    assert manifest.header.bundle_sha256 == hashlib.sha256(lines.encode()).hexdigest()
    for back in (
        read_manifest_json(manifest_json_bytes(manifest)),
        read_manifest_parquet(manifest_parquet_bytes(manifest)),
    ):
        assert back.header == manifest.header and back.table.num_rows == count
        assert verify_manifest(back, hmac_key=KEY) == []
