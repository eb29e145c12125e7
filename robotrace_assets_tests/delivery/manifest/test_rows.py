"""Validation: rows and header values that are refused, and how they are named."""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from robotrace_assets.delivery.manifest.build import build_manifest
from robotrace_assets.delivery.manifest.read import read_manifest_json, read_manifest_parquet
from robotrace_assets.delivery.manifest.rows import table_from_rows
from robotrace_assets.delivery.manifest.schema import MANIFEST_COLUMNS
from robotrace_assets.delivery.manifest.signing import HmacSigner
from robotrace_assets.delivery.manifest.write import manifest_json_bytes
from robotrace_assets_tests.delivery.manifest.samples import KEY, PREFIX, build, row, rows, sha


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.pop("sha256"), "'sha256' has nulls"),
        (lambda r: r.update(sha256="abc"), "'sha256' is not 64 lowercase hex"),
        (lambda r: r.update(sha256="g" * 64), "'sha256' is not 64 lowercase hex"),
        (lambda r: r.update(raw_sha256="z" * 64), "'raw_sha256' is not 64 lowercase hex"),
        (lambda r: r.update(size_bytes=-1), "negative size_bytes"),
        (lambda r: r.update(size_bytes=2**53), "above 2\\*\\*53-1"),
        (lambda r: r.update(size_bytes="12"), "does not|expected int64|rows do not form"),
        (lambda r: r.update(kind="movie"), "kind not one of"),
        (lambda r: r.update(consent_receipt_id=None), "'consent_receipt_id' is null"),
        (lambda r: r.update(artifact_key=PREFIX + "a\tb.mp4"), "control characters"),
        (lambda r: r.update(artifact_key=""), "empty artifact_key"),
        (lambda r: r.update(clip_ids=["clip_1", None]), "null list elements"),
        (lambda r: r.update(source_key=None), "'source_key' has nulls"),
    ],
)
def test_invalid_rows_are_refused_with_a_clear_error(change: Any, message: str) -> None:
    data = rows()
    change(data[2])
    with pytest.raises(ValueError, match=message):
        build(data)
    with pytest.raises(ValueError, match=message):
        table_from_rows(data)


def test_a_missing_required_column_is_named() -> None:
    data = [{k: v for k, v in r.items() if k != "sha256"} for r in rows()]
    with pytest.raises(ValueError, match=r"lack required column.*sha256"):
        build(data)
    with pytest.raises(ValueError, match=r"lack required column.*sha256"):
        build(pa.Table.from_pylist(data))


def test_duplicate_keys_are_refused() -> None:
    data = [*rows(), row("seg_b.mp4", 1)]
    for candidate in (data, sorted(data, key=lambda r: r["artifact_key"])):
        with pytest.raises(ValueError, match=r"duplicate artifact_key.*seg_b\.mp4"):
            build(candidate)
        with pytest.raises(ValueError, match="duplicate artifact_key"):
            table_from_rows(candidate)


def test_missing_optional_columns_are_null_and_extra_columns_dropped() -> None:
    data = [
        {k: v for k, v in r.items() if k not in ("reviewed_by", "review_rationale")}
        for r in rows()[:2]
    ]
    data[0]["internal_note"] = "not for buyers"
    table = build(data).table
    assert table.schema.equals(MANIFEST_COLUMNS)
    assert table["reviewed_by"].null_count == 2


def test_upper_case_hex_is_normalized_on_build_but_refused_on_read() -> None:
    data = rows()
    data[0]["sha256"] = data[0]["sha256"].upper()
    manifest = build(data)
    assert sha("seg_b.mp4") in manifest.table["sha256"].to_pylist()
    text = manifest_json_bytes(manifest).replace(
        sha("seg_b.mp4").encode(), sha("seg_b.mp4").upper().encode()
    )
    with pytest.raises(ValueError, match="lowercase hex"):
        read_manifest_json(text)


def test_header_values_are_checked() -> None:
    with pytest.raises(ValueError, match="buyer_id must not contain"):
        build(buyer_id="acme\nsignature=forged")
    with pytest.raises(ValueError, match="UTC offset"):
        build_manifest(
            rows(),
            manifest_id="m",
            buyer_id="b",
            delivery_id="d",
            created_at="2026-06-04T18:00:00",
            signer=HmacSigner(KEY, "k"),
        )
    with pytest.raises(ValueError, match="not valid JSON"):
        read_manifest_json(b"{not json")
    with pytest.raises(ValueError, match="missing"):
        read_manifest_json(b'{"header": {"manifest_id": "m"}, "artifacts": []}')
    with pytest.raises(ValueError, match=r"robotrace\.manifest"):
        sink = io.BytesIO()
        pq.write_table(pa.table({"a": [1]}), sink)
        read_manifest_parquet(sink.getvalue())
