"""Media-session rollups aggregate only their own segments; bad envelopes fail only themselves."""

import json

from dagster import materialize

from robotrace_assets import catalog, layout
from robotrace_assets.derivatives.assets import PROXY
from robotrace_assets.proof.assets import PROVIDER_PROOF
from robotrace_assets.segments.assets import SEGMENT, SEGMENT_PARTS
from robotrace_assets.sessions.assets import media_session
from robotrace_assets.sessions.rollup import rollup
from robotrace_assets_tests.helpers import (
    failure_messages,
    resources_for,
    run_assets,
    simulate,
    store_for,
)


def test_rollup_counts_only_listed_segments() -> None:
    segments = {
        "a": {"raw_size_bytes": 10},
        "b": {"raw_size_bytes": 20},
        "z": {"raw_size_bytes": 99},
    }
    proofs = {
        "a": {"integrity_status": "verified", "byte_size": 10},
        "z": {"integrity_status": "verified", "byte_size": 99},
    }
    summary = rollup(["a", "b", "c"], segments, proofs)
    assert summary["proof_states"] == {"a": "verified", "b": "awaiting_proof", "c": "not_seen"}
    assert summary["bytes_declared"] == 30 and summary["bytes_verified"] == 10
    assert summary["segments_verified"] == 1 and not summary["buyer_ready"]


def _materialize_session(instance, bucket: str, media_session_id: str, **store_config):
    instance.add_dynamic_partitions("media_session", [media_session_id])
    return materialize(
        [media_session],
        partition_key=media_session_id,
        instance=instance,
        resources=resources_for(bucket, **store_config),
        raise_on_error=False,
    )


def test_session_rollup_with_provenance(s3, bucket, instance) -> None:
    first, second = simulate(s3, bucket, "corrupt_after_upload@0.1", sessions=2, segments=2)
    for session in (first, second):
        for segment in session.segments:
            run_assets(
                instance,
                bucket,
                [SEGMENT, SEGMENT_PARTS, PROVIDER_PROOF, PROXY],
                segment.segment_id,
            )
    assert _materialize_session(instance, bucket, first.media_session_id).success
    row = store_for(bucket).read_record(catalog.SESSIONS, first.media_session_id)[0]
    assert row["segments_declared"] == 2
    assert row["segments_verified"] == 1 and row["segments_failed"] == 1
    assert not row["buyer_ready"]
    assert row["operator_id"] == first.envelope["operator_id"]
    assert row["consent_receipt_id"] == first.envelope["consent"]["receipt_id"]
    assert row["license_scope_id"] == first.envelope["license"]["scope_id"]
    assert row["safety_rules_version"] == "v4.2"
    assert _materialize_session(instance, bucket, second.media_session_id).success
    other = store_for(bucket).read_record(catalog.SESSIONS, second.media_session_id)[0]
    assert other["segments_verified"] == 2 and other["buyer_ready"]


def test_bad_session_envelope_fails_only_its_partition(s3, bucket, instance) -> None:
    good, bad = simulate(s3, bucket, sessions=2)
    key = layout.session_envelope_key(bad.media_session_id)
    s3.put_object(Bucket=bucket, Key=key, Body=b'{"schema_version": "1"}')
    result = _materialize_session(instance, bucket, bad.media_session_id)
    assert not result.success
    assert "media_session_id" in failure_messages(result)
    assert s3.head_object(Bucket=bucket, Key=key)  # nothing was deleted
    assert _materialize_session(instance, bucket, good.media_session_id).success


def test_unknown_tenant_and_malformed_id_fail_clearly(s3, bucket, instance) -> None:
    session = simulate(s3, bucket)[0]
    tenants = {"known_tenants": ["ten_01KT9WNH80R84P57VFQVC2R1YZ"]}
    result = _materialize_session(instance, bucket, session.media_session_id, **tenants)
    assert "unknown tenant" in failure_messages(result)
    segment_result = run_assets(
        instance,
        bucket,
        [SEGMENT],
        session.segments[0].segment_id,
        with_checks=False,
        resources=resources_for(bucket, **tenants),
    )
    assert "unknown tenant" in failure_messages(segment_result)
    malformed = run_assets(instance, bucket, [SEGMENT], "seg_not_an_id", with_checks=False)
    assert "is not a valid seg id" in failure_messages(malformed)


def test_envelope_pointing_at_a_missing_object_fails_clearly(s3, bucket, instance) -> None:
    segment = simulate(s3, bucket)[0].segments[0]
    s3.delete_object(Bucket=bucket, Key=segment.raw_key)
    result = run_assets(
        instance, bucket, [SEGMENT, SEGMENT_PARTS, PROVIDER_PROOF], segment.segment_id
    )
    assert "size_matches_envelope" in failure_messages(result)
    record = store_for(bucket).read_record(catalog.PROOFS, segment.segment_id)
    assert record[0]["integrity_status"] == "missing"
    observation = json.loads(record[0]["observation"])
    assert observation["exists"] is False
