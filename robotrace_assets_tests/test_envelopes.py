import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest

from robotrace_assets.envelopes import EnvelopeError, MediaSessionEnvelope, SegmentEnvelope
from robotrace_assets.ids import new_id

AT = datetime(2026, 6, 4, 18, 0, tzinfo=UTC)
RNG = random.Random(7)
TENANT = new_id("ten", AT, RNG)


def segment_doc(**changes: Any) -> dict[str, Any]:
    doc = {
        "schema_version": "1",
        "media_session_id": new_id("msess", AT, RNG),
        "segment_id": new_id("seg", AT, RNG),
        "capture_id": new_id("cap", AT, RNG),
        "tenant_id": TENANT,
        "segment_index": 0,
        "started_at": "2026-06-04T18:00:00Z",
        "ended_at": "2026-06-04T18:08:52Z",
        "boundary_reason": "task_step",
        "raw": {
            "object_key": f"robotics/raw/{TENANT}/m/s.mp4",
            "size_bytes": 12_000_000,
            "sha256": "ab" * 32,
            "content_type": "video/mp4",
        },
        "upload": {"part_count": 3, "part_size_bytes": 5 * 1024 * 1024},
    }
    doc.update(changes)
    return doc


def session_doc(**changes: Any) -> dict[str, Any]:
    doc = {
        "schema_version": "1",
        "media_session_id": new_id("msess", AT, RNG),
        "session_id": new_id("sess", AT, RNG),
        "tenant_id": TENANT,
        "operator_id": new_id("op", AT, RNG),
        "task_brief_id": new_id("tb", AT, RNG),
        "device": {"model": "iphone_15_pro", "tier": 1, "has_lidar": True},
        "created_at": "2026-04-21T14:22:00Z",
        "consent": None,
        "license": {"scope_id": new_id("lic", AT, RNG), "allowed_use": ["robotics_training"]},
        "safety_rules_version": "v4.2",
        "segment_ids": [new_id("seg", AT, RNG)],
    }
    doc.update(changes)
    return doc


def encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


def test_valid_segment_envelope_parses() -> None:
    envelope = SegmentEnvelope.parse(encode(segment_doc()))
    assert envelope.part_count == 3
    assert envelope.duration_s == 532


def test_session_without_consent_parses_but_says_so() -> None:
    envelope = MediaSessionEnvelope.parse(encode(session_doc()))
    assert envelope.consent_receipt_id is None
    assert envelope.provenance()["safety_rules_version"] == "v4.2"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "not valid JSON"),
        (encode({k: v for k, v in segment_doc().items() if k != "raw"}), "'raw' is a required"),
        (encode(segment_doc(segment_id="seg_../../x")), "segment_id"),
        (encode(segment_doc(ended_at="2026-06-04T17:00:00Z")), "before started_at"),
        (encode(segment_doc(objects=[{"role": "Bad Role"}])), "objects"),
        (encode(segment_doc(extra="field")), "Additional properties"),
        (b" " * (1024 * 1024 + 1), "limit is 1 MiB"),
    ],
)
def test_bad_segment_envelopes_say_what_is_wrong(raw: bytes, message: str) -> None:
    with pytest.raises(EnvelopeError, match=message):
        SegmentEnvelope.parse(raw)


def test_declared_part_layout_is_a_hint_not_a_refusal() -> None:
    # aws-cli picks its own part size: the proof takes the layout from the store.
    envelope = SegmentEnvelope.parse(
        encode(segment_doc(upload={"part_count": 2, "part_size_bytes": 5242880}))
    )
    assert envelope.part_count == 2


def test_declared_objects_and_an_undeclared_hash_parse() -> None:
    doc = segment_doc()
    del doc["raw"]["sha256"]
    doc["objects"] = [
        {
            "role": "actions",
            "object_key": doc["raw"]["object_key"].replace(".mp4", ".actions.parquet"),
            "size_bytes": 10,
            "content_type": "application/vnd.apache.parquet",
        }
    ]
    envelope = SegmentEnvelope.parse(encode(doc))
    assert envelope.raw_sha256 is None
    assert [o.role for o in envelope.objects] == ["actions"]
    assert envelope.objects[0].sha256 is None
    doc["objects"].append({**doc["objects"][0]})
    with pytest.raises(EnvelopeError, match="declared once"):
        SegmentEnvelope.parse(encode(doc))


def test_session_envelope_rejects_unknown_license_use_format() -> None:
    bad = session_doc(license={"scope_id": "lic_x", "allowed_use": ["Robotics Training"]})
    with pytest.raises(EnvelopeError, match="license"):
        MediaSessionEnvelope.parse(encode(bad))
