"""`robotrace verify` through the real CLI entry point: on a delivery made by the real asset
(HMAC, JSON and Parquet manifests) and on one signed with Ed25519; each kind of damage is named."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from robotrace_assets import layout
from robotrace_assets.cli import main as cli
from robotrace_assets.delivery.manifest.build import build_manifest
from robotrace_assets.delivery.manifest.signing import Ed25519Signer
from robotrace_assets.delivery.manifest.write import write_manifest_parquet
from robotrace_assets.resources import LOCAL_DEV_KEY
from robotrace_assets_tests.delivery.manifest.samples import CREATED, PREFIX, row
from robotrace_assets_tests.delivery.test_buyer_delivery import _buyers, _deliver, _prepare
from robotrace_assets_tests.helpers import failure_messages


def _download(s3, bucket: str, prefix: str, directory: Path) -> None:
    """The delivery prefix as a buyer syncs it (`aws s3 sync s3://bucket/<prefix> <dir>`)."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            path = directory / item["Key"][len(prefix) :]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())


def _verify(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli(["verify", *argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_verify_passes_a_real_delivery_and_names_each_problem(
    s3, bucket, instance, tmp_path, monkeypatch, capsys
) -> None:
    _buyers(tmp_path, monkeypatch)
    _prepare(s3, bucket, instance, segments=1)
    result = _deliver(instance, bucket)
    assert result.success, failure_messages(result)
    received = tmp_path / "received"
    _download(s3, bucket, layout.delivery_prefix("acme", "d1"), received)
    key_file = tmp_path / "manifest.key"
    key_file.write_bytes(LOCAL_DEV_KEY + b"\n")  # as `echo KEY > file` writes it
    wrong_key = tmp_path / "wrong.key"
    wrong_key.write_bytes(b"another-key-of-32-bytes-length!!")

    code, out = _verify(capsys, str(received), "--hmac-key-file", str(key_file))
    assert code == 0, out
    assert "verified: delivery d1 for acme" in out and "hmac-sha256 by key local-dev" in out
    assert LOCAL_DEV_KEY.decode() not in out
    code, out = _verify(
        capsys, str(received), "--manifest", "manifest.parquet", "--hmac-key-file", str(key_file)
    )
    assert code == 0 and "(manifest.parquet)" in out, out

    # The wrong key: the signature fails, and the files are not vouched for.
    code, out = _verify(capsys, str(received), "--hmac-key-file", str(wrong_key))
    assert code == 1
    assert "signature does not verify (hmac-sha256, key local-dev)" in out
    assert "files not checked" in out
    assert "another-key" not in out

    # An Ed25519 key for an HMAC manifest: refused, saying which option to give.
    signer = Ed25519Signer.generate("ed-1")
    pem = tmp_path / "public.pem"
    pem.write_bytes(signer.public_key_pem())
    code, out = _verify(capsys, str(received), "--public-key", str(pem))
    assert code == 2 and "give --hmac-key-file" in out

    # A delivered file changed by one byte, another one missing.
    victim, gone = sorted(p for p in (received / "artifacts").rglob("*") if p.is_file())[:2]
    original = victim.read_bytes()
    victim.write_bytes(bytes([original[0] ^ 1]) + original[1:])
    gone_bytes = gone.read_bytes()
    gone.unlink()
    code, out = _verify(capsys, str(received), "--hmac-key-file", str(key_file))
    assert code == 1 and "2 problems" in out
    victim_key = layout.delivery_prefix("acme", "d1") + victim.relative_to(received).as_posix()
    assert f"{victim_key}: SHA-256 {hashlib.sha256(victim.read_bytes()).hexdigest()}" in out
    assert f"no file at {gone}" in out
    victim.write_bytes(original)
    gone.write_bytes(gone_bytes)

    # The JSON manifest edited: a consent reference rewritten.
    manifest_json = received / "manifest.json"
    doc = json.loads(manifest_json.read_bytes())
    doc["artifacts"][0]["consent_receipt_id"] = "consent_FORGED"
    manifest_json.write_text(json.dumps(doc))
    code, out = _verify(capsys, str(received), "--hmac-key-file", str(key_file))
    assert code == 1 and "rows_sha256" in out and "files not checked" in out
    # A manifest that no longer parses is a failed verification too, not a crash.
    manifest_json.write_text('{"header": {}, "artifacts": []}')
    code, out = _verify(capsys, str(received), "--hmac-key-file", str(key_file))
    assert code == 1 and "not a readable manifest" in out


def test_verify_an_ed25519_parquet_delivery(tmp_path, capsys) -> None:
    received = tmp_path / "d1"
    rows = []
    for name in ("seg_a.mp4", "seg_b.mp4", "seg_a/v1/proxy.mp4"):
        body = f"bytes of {name}".encode() * 50
        path = received / "artifacts" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        rows.append(row(name, len(body), sha256=hashlib.sha256(body).hexdigest()))
    assert layout.delivery_prefix("acme", "d1") + "artifacts/" == PREFIX
    signer = Ed25519Signer.generate("ed-1")
    manifest = build_manifest(
        rows,
        manifest_id="man_1",
        buyer_id="acme",
        delivery_id="d1",
        created_at=CREATED,
        signer=signer,
    )
    write_manifest_parquet(manifest, received / "manifest.parquet")
    pem, other = tmp_path / "ours.pem", tmp_path / "other.pem"
    pem.write_bytes(signer.public_key_pem())
    other.write_bytes(Ed25519Signer.generate("ed-1").public_key_pem())

    code, out = _verify(capsys, str(received), "--public-key", str(pem))
    assert code == 0 and "ed25519 by key ed-1" in out and "all 3 (" in out, out
    code, out = _verify(capsys, str(received), "--public-key", str(other))
    assert code == 1 and "signature does not verify (ed25519, key ed-1)" in out
    code, out = _verify(capsys, str(tmp_path), "--public-key", str(pem))
    assert code == 2 and "no manifest.json or manifest.parquet" in out
    code, out = _verify(capsys, str(received), "--hmac-key-file", str(tmp_path / "absent.key"))
    assert code == 2 and "cannot read the key file" in out
