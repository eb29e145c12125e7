"""The buyer-side checks: tampered manifests and delivered copies that differ."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from robotrace_assets.delivery.manifest.digest import rows_sha256
from robotrace_assets.delivery.manifest.model import Manifest
from robotrace_assets.delivery.manifest.read import read_manifest_json
from robotrace_assets.delivery.manifest.rows import table_from_rows
from robotrace_assets.delivery.manifest.signing import verify_signature
from robotrace_assets.delivery.manifest.verify import (
    artifact_path,
    verify_delivered,
    verify_delivery_directory,
    verify_manifest,
)
from robotrace_assets.delivery.manifest.write import manifest_json_bytes
from robotrace_assets_tests.delivery.manifest.samples import (
    KEY,
    PREFIX,
    build,
    row,
    rows,
    sha,
    signers,
)


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
        rows_sha256=rows_sha256(forged_rows),
    )
    problems = verify_manifest(Manifest(forged_header, table_from_rows(forged_rows)), **keys)
    assert problems == [p for p in problems if "signature does not verify" in p] and problems


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


def test_a_delivery_directory_is_read_where_a_sync_puts_it(tmp_path) -> None:
    """Keys in the delivery prefix lie below the directory without it; others (links) whole;
    a key that would climb out of the directory is reported, never read."""
    bodies = {
        PREFIX + "seg_a.mp4": b"copied",
        "robotics/raw/ten_x/msess_x/seg_b.mp4": b"linked",
        PREFIX + "../../../../../../outside.mp4": b"never read",
    }
    data = [
        row(key.removeprefix(PREFIX), len(body), sha256=hashlib.sha256(body).hexdigest())
        | {"artifact_key": key}
        for key, body in bodies.items()
    ]
    manifest = build(data)
    (tmp_path / "artifacts").mkdir()
    (tmp_path / "artifacts" / "seg_a.mp4").write_bytes(b"copied")
    linked = tmp_path / "robotics/raw/ten_x/msess_x/seg_b.mp4"
    linked.parent.mkdir(parents=True)
    linked.write_bytes(b"linked")
    header = manifest.header
    assert artifact_path(tmp_path, header, PREFIX + "seg_a.mp4") == tmp_path / "artifacts/seg_a.mp4"
    problems = verify_delivery_directory(tmp_path, manifest, hmac_key=KEY)
    assert len(problems) == 1 and "leads outside the delivery directory" in problems[0]
    assert verify_delivery_directory(tmp_path, manifest, hmac_key=b"wrong-key-0123456789") == [
        "signature does not verify (hmac-sha256, key k1)",
        "files not checked: the manifest itself does not verify",
    ]
