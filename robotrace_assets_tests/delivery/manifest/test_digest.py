"""Canonical digests: the bundle and rows recipes of the package doc, by hand."""

from __future__ import annotations

import hashlib
import json
import random

import pyarrow as pa

from robotrace_assets.delivery.manifest.digest import bundle_sha256
from robotrace_assets.delivery.manifest.read import read_manifest_json
from robotrace_assets.delivery.manifest.write import manifest_json_bytes
from robotrace_assets_tests.delivery.manifest.samples import build, python_rows_digest, row, rows


def test_bundle_digest_matches_a_hand_computed_example() -> None:
    a, b = "a" * 64, "0123456789abcdef" * 4
    table = pa.Table.from_pylist(
        [
            {"artifact_key": "z/last.jpg", "size_bytes": 0, "sha256": a},
            {"artifact_key": "a/first.mp4", "size_bytes": 1234, "sha256": b},
        ]
    )
    lines = f"a/first.mp4\t1234\t{b}\nz/last.jpg\t0\t{a}\n"
    assert bundle_sha256(table) == hashlib.sha256(lines.encode()).hexdigest()
    assert bundle_sha256(table.slice(0, 0)) == hashlib.sha256(b"").hexdigest()


def test_bundle_digest_ignores_row_order_and_sorts_by_utf8_bytes() -> None:
    data = [row(k) for k in ("é.mp4", "z.mp4", "Z.mp4", "zz.mp4")]
    shuffled = data[:]
    random.Random(3).shuffle(shuffled)
    first, second = build(data), build(shuffled)
    assert first.header.bundle_sha256 == second.header.bundle_sha256
    assert first.header.rows_sha256 == second.header.rows_sha256
    assert first.header.signature == second.header.signature
    ordered = sorted(data, key=lambda r: r["artifact_key"].encode())  # Z < z < zz < é
    lines = "".join(f"{r['artifact_key']}\t{r['size_bytes']}\t{r['sha256']}\n" for r in ordered)
    assert first.header.bundle_sha256 == hashlib.sha256(lines.encode()).hexdigest()
    keys = read_manifest_json(manifest_json_bytes(second)).table["artifact_key"].to_pylist()
    assert keys == [r["artifact_key"] for r in ordered]


def test_rows_digest_and_json_lines_are_the_python_json_recipe() -> None:
    manifest = build()
    data = manifest_json_bytes(manifest)
    doc = json.loads(data)
    artifacts = doc["artifacts"]
    assert {r["artifact_key"] for r in artifacts} == {r["artifact_key"] for r in rows()}
    assert manifest.header.rows_sha256 == python_rows_digest(artifacts)
    # One artifact per line, each exactly its canonical (JCS) spelling.
    lines = data.split(b"\n")[1:-2]
    assert len(lines) == len(artifacts)
    for line, artifact in zip(lines, artifacts, strict=True):
        canonical = json.dumps(artifact, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert line.removesuffix(b",") == canonical.encode()
    original = {r["artifact_key"]: r for r in rows()}
    assert all(original[a["artifact_key"]] == a for a in artifacts)
