"""The records layer on the real bucket: rows round-trip through the catalog's Parquet, loaders
say what is wrong, a proof turns stale without losing what it proved."""

import json

import pytest

from robotrace_assets import catalog, layout
from robotrace_assets.envelopes import SegmentEnvelope
from robotrace_assets.proof import rules
from robotrace_assets.records.errors import RecordError, RecordMissing
from robotrace_assets.records.proofs import ProofRecord, load_proof, write_proof
from robotrace_assets.records.segments import (
    SegmentRecord,
    envelope_conflict,
    load_segment,
    load_segment_envelope,
)
from robotrace_assets.records.sessions import load_session_envelope
from robotrace_assets_tests.helpers import simulate, store_for


def test_segment_record_round_trips_through_the_catalog(s3, bucket) -> None:
    segment = simulate(s3, bucket)[0].segments[0]
    store = store_for(bucket)
    with pytest.raises(RecordMissing, match="materialize segments/segment"):
        load_segment(store, segment.segment_id)
    envelope = load_segment_envelope(store, segment.segment_id)
    record = SegmentRecord.from_envelope(envelope)
    store.write_record(catalog.SEGMENTS, segment.segment_id, [record.to_row()])
    assert load_segment(store, segment.segment_id) == record
    assert record.envelope == segment.envelope and record.sensors_format == "parquet"


def test_loaders_name_what_is_wrong(s3, bucket) -> None:
    session = simulate(s3, bucket)[0]
    store = store_for(bucket)
    segment_id = session.segments[0].segment_id
    with pytest.raises(RecordError, match="unknown tenant"):
        load_segment_envelope(store, segment_id, known_tenants={"ten_someone_else"})
    with pytest.raises(RecordError, match="not a valid seg id"):
        load_segment_envelope(store, "seg_../../etc")
    # An envelope filed under another segment's id is refused, not read as that segment.
    other = "seg_01KT9WNH80R84P57VFQVC2R1YZ"
    s3.put_object(
        Bucket=bucket,
        Key=layout.segment_envelope_key(other),
        Body=json.dumps(session.segments[0].envelope).encode(),
    )
    with pytest.raises(RecordError, match=f"is for {segment_id}, not {other}"):
        load_segment_envelope(store, other)
    with pytest.raises(RecordError, match="does not exist"):
        load_session_envelope(store, "msess_01KT9WNH80R84P57VFQVC2R1YZ")
    assert load_session_envelope(store, session.media_session_id).tenant_id == session.tenant_id


def _proof_row(segment_id: str, status: str = rules.VERIFIED) -> dict:
    return {
        "segment_id": segment_id,
        "integrity_status": status,
        "failed_checks": [],
        "object_key": "robotics/raw/ten_A/msess_A/seg_A.mp4",
        "etag": '"abc-2"',
        "byte_size": 10,
        "last_modified": "2026-11-29T00:00:00+00:00",
        "sha256": "0" * 64,
        "objects": json.dumps([{"role": "sensors", "etag": '"s"', "read_sha256": "1" * 64}]),
    }


def test_a_stale_proof_keeps_what_it_proved(s3, bucket) -> None:
    store = store_for(bucket)
    record = ProofRecord(_proof_row("seg_A"))
    # A record written before declared objects were pinned pins the raw video alone.
    assert record.pins() == {
        "robotics/raw/ten_A/msess_A/seg_A.mp4": {
            "etag": '"abc-2"',
            "size": 10,
            "last_modified": "2026-11-29T00:00:00+00:00",
        }
    }
    assert record.proven_object("sensors") == {
        "role": "sensors",
        "etag": '"s"',
        "read_sha256": "1" * 64,
    }
    assert record.proven_object("actions") is None
    stale = record.as_stale("raw video replaced")
    assert (stale.status, stale.failed_checks) == (rules.STALE, [rules.UNCHANGED])
    assert stale.sha256 == record.sha256 and stale.pins() == record.pins()
    write_proof(store, stale)
    assert load_proof(store, "seg_A") == stale
    assert load_proof(store, "seg_B") is None


def test_a_changed_envelope_conflicts_only_once_proven(s3, bucket) -> None:
    segment = simulate(s3, bucket)[0].segments[0]
    store = store_for(bucket)
    envelope = load_segment_envelope(store, segment.segment_id)
    store.write_record(
        catalog.SEGMENTS, segment.segment_id, [SegmentRecord.from_envelope(envelope).to_row()]
    )
    changed = SegmentEnvelope.parse(
        json.dumps({**segment.envelope, "boundary_reason": "operator_stop"}).encode()
    )
    assert envelope_conflict(store, changed, rules.PROVEN_STATES) is None  # not proven yet
    write_proof(store, ProofRecord(_proof_row(segment.segment_id)))
    assert envelope_conflict(store, envelope, rules.PROVEN_STATES) is None  # the same again
    conflict = envelope_conflict(store, changed, rules.PROVEN_STATES)
    assert conflict is not None and conflict.changed_fields == ["boundary_reason"]
    assert conflict.proof_status == rules.VERIFIED
