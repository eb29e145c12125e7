"""Sample manifest rows and builders shared by the manifest tests."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from robotrace_assets.delivery.manifest.build import build_manifest
from robotrace_assets.delivery.manifest.model import Manifest
from robotrace_assets.delivery.manifest.schema import SEGMENT_LINEAGE_COLUMNS
from robotrace_assets.delivery.manifest.signing import Ed25519Signer, HmacSigner

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
            **{name: None for name in SEGMENT_LINEAGE_COLUMNS},
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


def signers() -> list[tuple[Any, dict[str, bytes]]]:
    ed = Ed25519Signer.generate("ed-1")
    return [
        (HmacSigner(KEY, "k1"), {"hmac_key": KEY}),
        (ed, {"ed25519_public_key": ed.public_key_bytes()}),
    ]
