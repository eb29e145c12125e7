"""Signatures: the documented signing message, HMAC and Ed25519 keys, malformed ones."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac

import pytest

from robotrace_assets.delivery.manifest.read import read_manifest_json
from robotrace_assets.delivery.manifest.signing import (
    Ed25519Signer,
    HmacSigner,
    signing_message,
    verify_signature,
)
from robotrace_assets.delivery.manifest.verify import verify_manifest
from robotrace_assets.delivery.manifest.write import manifest_json_bytes
from robotrace_assets_tests.delivery.manifest.samples import CREATED, KEY, build


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
