"""Export manifests (pure): canonical digests, signatures, round trips, tampering, validation."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import io
import json
import random
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from robotrace_assets.delivery import manifest as manifests
from robotrace_assets.delivery.manifest import (
    Ed25519Signer,
    HmacSigner,
    Manifest,
    build_manifest,
    bundle_sha256,
    manifest_json_bytes,
    manifest_parquet_bytes,
    read_manifest_json,
    read_manifest_parquet,
    signing_message,
    table_from_rows,
    verify_delivered,
    verify_manifest,
    verify_signature,
)

KEY = b"test-manifest-signing-key-32-byt"
CREATED = "2026-06-04T18:00:00+00:00"
PREFIX = "robotics/deliveries/acme/d1/artifacts/"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def row(key: str, size: int = 100, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "artifact_key": PREFIX + key,
        "source_key": "robotics/raw/" + key,
        "kind": "raw_video",
        "size_bytes": size,
        "sha256": sha(key),
        "clip_ids": ["clip_01KT9WNH80AAAAAAAAAAAAAAAA", "clip_01KT9WNH80AAAAAAAAAAAAAAAB"],
        "segment_id": "seg_01KT9WNH80AAAAAAAAAAAAAAAA",
        "media_session_id": "msess_01KT9WNH80AAAAAAAAAAAAAAAA",
        "tenant_id": "ten_01KT9WNH80AAAAAAAAAAAAAAAA",
        "raw_sha256": sha("raw"),
        "proof_status": "verified",
        "proof_verified_at": "2026-06-04T17:00:00+00:00",
        "consent_receipt_id": "consent_01KT9WNH80AAAAAAAAAAAAAAAA",
        "license_scope_id": "lic_01KT9WNH80AAAAAAAAAAAAAAAA",
        "allowed_use": ["robotics_training"],
        "safety_rules_version": "v4.2",
        "review_status": "approved",
        "reviewed_by": None,
        "review_rationale": None,
    }
    return {**base, **overrides}


def rows() -> list[dict[str, Any]]:
    """A small delivery, deliberately out of order, with awkward text and a LeRobot file."""
    return [
        row("seg_b.mp4", 2_000),
        row("seg_a.sensors.parquet", 0, kind="sensor_log"),
        row("seg_a/v1/proxy.mp4", 512, kind="proxy"),
        row(
            "seg_a.mp4",
            7,
            reviewed_by="reviewer_07",
            review_rationale='slip "at 4.2 s"\\ ok\ttab\nline\x01\x7f\u2028 é 😀',
        ),
        row("seg_a/v1/thumb_01.jpg", 33, kind="thumbnail", clip_ids=[]),
        row(
            "lerobot/data/chunk-000/episode_000000.parquet",
            4_096,
            kind="lerobot_file",
            **{name: None for name in manifests.SEGMENT_LINEAGE_COLUMNS},
        ),
    ]


def build(data: Any = None, signer: Any = None, **header: Any) -> Manifest:
    fields = {"manifest_id": "man_1", "buyer_id": "acme", "delivery_id": "d1", **header}
    return build_manifest(
        rows() if data is None else data,
        created_at=CREATED,
        signer=signer or HmacSigner(KEY, "k1"),
        **fields,
    )


def python_rows_digest(artifacts: list[dict[str, Any]]) -> str:
    """The rows digest as the module doc tells a buyer to compute it, in plain Python."""
    ordered = sorted(artifacts, key=lambda r: r["artifact_key"].encode())
    canonical = (
        json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        for r in ordered
    )
    return hashlib.sha256(b"".join(canonical)).hexdigest()


# ---------------------------------------------------------------------- canonical digests


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


def test_signing_message_is_the_documented_lines() -> None:
    header = build().header
    expected = (
        "robotrace-export-manifest\n"
        "format_version=1\n"
        "manifest_id=man_1\n"
        "buyer_id=acme\n"
        "delivery_id=d1\n"
        f"created_at={CREATED}\n"
        "artifact_count=6\n"
        f"total_bytes={2_000 + 0 + 512 + 7 + 33 + 4_096}\n"
        f"bundle_sha256={header.bundle_sha256}\n"
        f"rows_sha256={header.rows_sha256}\n"
        "signature_algorithm=hmac-sha256\n"
        "key_id=k1\n"
    ).encode()
    assert signing_message(header.signing_fields()) == expected
    assert header.signature == hmac.new(KEY, expected, hashlib.sha256).hexdigest()


# ----------------------------------------------------------------------------- round trips


def test_json_round_trip_verifies() -> None:
    manifest = build()
    data = manifest_json_bytes(manifest)
    streamed = io.BytesIO()
    manifests.write_manifest_json(manifest, streamed)
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
    monkeypatch.setattr(manifests, "_JSON_BLOCK_BYTES", 64)  # several blocks, in threads
    fast = manifests._read_canonical_json(data)
    assert fast is not None and fast.table.equals(manifest.canonical_table())
    # Same meaning, other spelling (a space; a duplicated key a parser may resolve either
    # way): not canonical, so the strict parser reads it and the digests judge the values.
    spaced = data.replace(b'"kind":', b'"kind": ', 1)
    twice = data.replace(b'{"allowed_use":', b'{"kind":"proxy","allowed_use":', 1)
    for variant in (spaced, twice):
        assert manifests._read_canonical_json(variant) is None
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
    monkeypatch.setattr(manifests, "_STEP_BYTES", 1)
    monkeypatch.setattr(manifests, "_MAX_STEP_ROWS", 3)
    monkeypatch.setattr(manifests, "_ROW_GROUP_ROWS", 5)
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


# ------------------------------------------------------------------------------ signatures


def test_ed25519_signature_verifies_with_raw_or_pem_public_key() -> None:
    signer = Ed25519Signer.generate("ed-1")
    manifest = build(signer=signer)
    assert manifest.header.signature_algorithm == "ed25519"
    assert len(manifest.header.signature) == 128
    back = read_manifest_json(manifest_json_bytes(manifest))
    assert verify_manifest(back, ed25519_public_key=signer.public_key_bytes()) == []
    assert verify_manifest(back, ed25519_public_key=signer.public_key_pem()) == []
    other = Ed25519Signer.generate("ed-2").public_key_bytes()
    assert verify_signature(back.header, ed25519_public_key=other) is False
    problems = verify_manifest(back, hmac_key=KEY)
    assert problems and "pass ed25519_public_key" in problems[0]


def test_ed25519_signer_loads_a_pem_private_key() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    signer = Ed25519Signer(pem, "ed-pem")
    assert signer.public_key_bytes() == key.public_key().public_bytes_raw()
    manifest = build(signer=signer)
    assert verify_manifest(manifest, ed25519_public_key=signer.public_key_bytes()) == []
    with pytest.raises(ValueError, match="PEM or 32 raw bytes"):
        Ed25519Signer(b"short", "x")
    # No key material in reprs (they end up in logs and tracebacks).
    assert repr(signer) == "Ed25519Signer(key_id='ed-pem')"
    assert repr(HmacSigner(KEY, "k")) == "HmacSigner(key_id='k')"


def signers() -> list[tuple[Any, dict[str, bytes]]]:
    ed = Ed25519Signer.generate("ed-1")
    return [
        (HmacSigner(KEY, "k1"), {"hmac_key": KEY}),
        (ed, {"ed25519_public_key": ed.public_key_bytes()}),
    ]


@pytest.mark.parametrize("algorithm", ["hmac", "ed25519"])
def test_tampering_is_detected(algorithm: str) -> None:
    signer, keys = signers()[0 if algorithm == "hmac" else 1]
    manifest = build(signer=signer)
    data = manifest_json_bytes(manifest)
    assert verify_manifest(read_manifest_json(data), **keys) == []

    # A row's sha256 changed in the delivered JSON.
    victim = sha("seg_b.mp4")
    forged = read_manifest_json(data.replace(victim.encode(), b"0" * 64))
    assert any("bundle_sha256" in p for p in verify_manifest(forged, **keys))

    # A row removed.
    table = manifest.canonical_table()
    fewer = Manifest(manifest.header, table.slice(1))
    problems = verify_manifest(fewer, **keys)
    assert any("artifact_count" in p for p in problems)
    assert any("bundle_sha256" in p for p in problems)

    # Consent reference rewritten: the content hashes still match, the rows digest does not.
    relabelled = table.to_pylist()
    relabelled[0]["consent_receipt_id"] = "consent_FORGED"
    problems = verify_manifest(Manifest(manifest.header, table_from_rows(relabelled)), **keys)
    assert problems == [p for p in problems if "rows_sha256" in p] and problems

    # A header field changed: the signature no longer covers it.
    for field, value in (("buyer_id", "someone_else"), ("total_bytes", 1), ("key_id", "k2")):
        changed = dataclasses.replace(manifest.header, **{field: value})
        assert verify_signature(changed, **keys) is False
        assert any(
            "signature does not verify" in p
            for p in verify_manifest(Manifest(changed, table), **keys)
        )

    # Digests rewritten to match forged rows: only the signature can tell.
    forged_rows = relabelled
    forged_header = dataclasses.replace(
        manifest.header,
        rows_sha256=manifests.rows_sha256(forged_rows),
    )
    problems = verify_manifest(Manifest(forged_header, table_from_rows(forged_rows)), **keys)
    assert problems == [p for p in problems if "signature does not verify" in p] and problems


def test_wrong_or_malformed_keys_and_signatures_fail() -> None:
    manifest = build()
    assert verify_signature(manifest.header, hmac_key=KEY) is True
    assert verify_signature(manifest.header, hmac_key=b"another-key-of-32-bytes-length!!") is False
    upper = dataclasses.replace(manifest.header, signature=manifest.header.signature.upper())
    assert verify_signature(upper, hmac_key=KEY) is False
    problems = verify_manifest(manifest, hmac_key=b"another-key-of-32-bytes-length!!")
    assert problems == ["signature does not verify (hmac-sha256, key k1)"]
    with pytest.raises(ValueError, match="pass hmac_key"):
        verify_signature(manifest.header)
    with pytest.raises(ValueError, match="at least 16 bytes"):
        HmacSigner(b"short", "k")


# ------------------------------------------------------------------------------ validation


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
    assert table.schema.equals(manifests.MANIFEST_COLUMNS)
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


# ------------------------------------------------------------------------ delivered copies


def test_verify_delivered_finds_corrupted_truncated_and_missing_artifacts() -> None:
    contents = {r["artifact_key"]: r["artifact_key"].encode() * 3 for r in rows()}
    data = [
        {**r, "size_bytes": len(contents[r["artifact_key"]]), "sha256": sha(r["artifact_key"] * 3)}
        for r in rows()
    ]
    manifest = build(data)
    store = dict(contents)

    def fetch(key: str) -> list[bytes]:
        body = store[key]  # KeyError: not delivered
        return [body[i : i + 5] for i in range(0, len(body), 5)]

    assert verify_delivered(manifest, fetch) == []
    corrupted, truncated, missing = sorted(contents)[:3]
    store[corrupted] = b"X" + store[corrupted][1:]
    store[truncated] = store[truncated][:-1]
    del store[missing]
    problems = verify_delivered(manifest, fetch)
    assert len(problems) == 3
    text = "\n".join(problems)
    assert f"{corrupted}: SHA-256" in text
    assert f"{truncated}: {len(contents[truncated]) - 1} bytes delivered" in text
    assert f"{missing}: cannot be fetched (KeyError" in text
    assert verify_delivered(manifest, fetch, workers=4) == problems
