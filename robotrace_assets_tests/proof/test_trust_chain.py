"""The trust chain under attack: envelopes and objects changed straight in the bucket, as a buggy
or hostile client would, against real SeaweedFS and Dagster.

Each test asserts that the bad partition is refused with its reason, that the alert is written,
that nothing is deleted, and that the other partitions keep working.
"""

import json
from pathlib import Path

import boto3.s3.transfer
from dagster import build_sensor_context, materialize

from robotrace_assets import catalog, layout
from robotrace_assets.alerts.sensors import proof_check_alert_sensor
from robotrace_assets.clips.assets import CLIPS
from robotrace_assets.derivatives.assets import PROXY
from robotrace_assets.proof import rules
from robotrace_assets.proof.assets import PROVIDER_PROOF
from robotrace_assets.review.assets import CLIP_REVIEW
from robotrace_assets.segments.assets import SEGMENT, SEGMENT_PARTS
from robotrace_assets.sessions.assets import media_session
from robotrace_assets_tests.helpers import (
    alerts_for,
    check_outcomes,
    failure_messages,
    materialized,
    resources_for,
    run_assets,
    simulate,
    store_for,
)

PROOF_RUN = [SEGMENT, SEGMENT_PARTS, PROVIDER_PROOF]
FULL_RUN = [*PROOF_RUN, PROXY, CLIPS, CLIP_REVIEW]


def _alerts(data_dir: Path) -> list[dict]:
    path = data_dir / "alerts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _envelope(s3, bucket: str, key: str) -> dict:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _put_json(s3, bucket: str, key: str, doc: dict) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(doc).encode())


def _proof(bucket: str, segment_id: str) -> dict:
    return store_for(bucket).read_record(catalog.PROOFS, segment_id)[0]


def test_segment_of_another_tenant_cannot_ride_a_session(s3, bucket, instance, data_dir) -> None:
    tenant_a = simulate(s3, bucket, seed=1)[0]
    tenant_b = simulate(s3, bucket, seed=2)[0]
    assert tenant_a.tenant_id != tenant_b.tenant_id
    intruder = tenant_b.segments[0]
    # Tenant B's bytes, tenant B's keys, but tenant A's session (which now even lists it).
    _put_json(
        s3,
        bucket,
        intruder.envelope_key,
        {**intruder.envelope, "media_session_id": tenant_a.media_session_id},
    )
    session_a = _envelope(s3, bucket, tenant_a.envelope_key)
    session_a["segment_ids"].append(intruder.segment_id)
    _put_json(s3, bucket, tenant_a.envelope_key, session_a)

    result = run_assets(instance, bucket, FULL_RUN, intruder.segment_id)
    assert not result.success
    assert check_outcomes(instance, intruder.segment_id)[rules.SESSION] is False
    assert _proof(bucket, intruder.segment_id)["integrity_status"] == rules.MISMATCH
    for key in (PROXY, CLIPS, CLIP_REVIEW):
        assert not materialized(instance, key, intruder.segment_id)
    later = run_assets(instance, bucket, [CLIPS], intruder.segment_id, with_checks=False)
    assert f"{rules.SESSION}: failed" in failure_messages(later)

    proof_check_alert_sensor(
        build_sensor_context(instance=instance, resources={"alerts": alerts_for()})
    )
    alert = next(a for a in _alerts(data_dir) if a["details"].get("check") == rules.SESSION)
    assert alert["details"]["segment_id"] == intruder.segment_id
    assert tenant_b.tenant_id in alert["details"]["description"]
    # Tenant A's own segment is unaffected and goes all the way to review.
    own = run_assets(instance, bucket, FULL_RUN, tenant_a.segments[0].segment_id)
    assert own.success, failure_messages(own)
    assert s3.head_object(Bucket=bucket, Key=intruder.raw_key)  # nothing deleted


def test_segment_its_session_does_not_list_is_refused(s3, bucket, instance) -> None:
    session = simulate(s3, bucket, segments=2)[0]
    orphan, sibling = session.segments
    doc = _envelope(s3, bucket, session.envelope_key)
    doc["segment_ids"] = [sibling.segment_id]
    _put_json(s3, bucket, session.envelope_key, doc)
    assert not run_assets(instance, bucket, PROOF_RUN, orphan.segment_id).success
    assert check_outcomes(instance, orphan.segment_id)[rules.SESSION] is False
    assert run_assets(instance, bucket, PROOF_RUN, sibling.segment_id).success


def test_raw_bytes_replaced_after_proof_are_never_derived(s3, bucket, instance, data_dir) -> None:
    segment = simulate(s3, bucket)[0].segments[0]
    assert run_assets(instance, bucket, PROOF_RUN, segment.segment_id).success
    original = s3.get_object(Bucket=bucket, Key=segment.raw_key)["Body"].read()
    s3.put_object(Bucket=bucket, Key=segment.raw_key, Body=original[::-1], ContentType="video/mp4")

    later = run_assets(instance, bucket, [PROXY], segment.segment_id, with_checks=False)
    assert not later.success
    assert "replaced" in failure_messages(later) and rules.UNCHANGED in failure_messages(later)
    record = _proof(bucket, segment.segment_id)
    assert record["integrity_status"] == rules.STALE and rules.UNCHANGED in record["failed_checks"]
    assert any(a["kind"] == "proof_stale" for a in _alerts(data_dir))
    derivatives = s3.list_objects_v2(Bucket=bucket, Prefix=layout.DERIVATIVES + "/")
    assert derivatives.get("KeyCount", 0) == 0  # nothing published
    # Stale stays stale: a later run is refused on the record alone.
    again = run_assets(instance, bucket, [CLIPS], segment.segment_id, with_checks=False)
    assert "recorded proof is stale" in failure_messages(again)


def test_sensor_log_is_proven_and_pinned_like_the_video(s3, bucket, instance, data_dir) -> None:
    segment = simulate(s3, bucket)[0].segments[0]
    assert run_assets(instance, bucket, [*PROOF_RUN, PROXY], segment.segment_id).success
    record = _proof(bucket, segment.segment_id)
    sensors = next(o for o in json.loads(record["objects"]) if o["role"] == "sensors")
    assert sensors["read_sha256"] == segment.envelope["sensors"]["sha256"]
    assert segment.sensors_key in json.loads(record["pins"])

    log = s3.get_object(Bucket=bucket, Key=segment.sensors_key)["Body"].read()
    s3.put_object(Bucket=bucket, Key=segment.sensors_key, Body=log + b"\0")
    result = run_assets(instance, bucket, [CLIPS], segment.segment_id, with_checks=False)
    assert not result.success and segment.sensors_key in failure_messages(result)
    assert not materialized(instance, CLIPS, segment.segment_id)
    assert _proof(bucket, segment.segment_id)["integrity_status"] == rules.STALE


def test_declared_sensor_log_with_wrong_hash_fails_its_check(s3, bucket, instance) -> None:
    session = simulate(s3, bucket, segments=2)[0]
    segment = session.segments[0]
    doc = _envelope(s3, bucket, segment.envelope_key)
    doc["sensors"]["sha256"] = "0" * 64
    _put_json(s3, bucket, segment.envelope_key, doc)
    assert not run_assets(instance, bucket, PROOF_RUN, segment.segment_id).success
    outcomes = check_outcomes(instance, segment.segment_id)
    assert outcomes[rules.OBJECTS] is False and outcomes[rules.SHA256] is True
    assert run_assets(instance, bucket, PROOF_RUN, session.segments[1].segment_id).success


def test_second_envelope_for_a_proven_segment_is_refused(s3, bucket, instance, data_dir) -> None:
    segment = simulate(s3, bucket)[0].segments[0]
    assert run_assets(instance, bucket, PROOF_RUN, segment.segment_id).success
    store = store_for(bucket)
    proven_row = store.read_record(catalog.SEGMENTS, segment.segment_id)[0]

    bigger = {**segment.envelope["raw"], "size_bytes": segment.envelope["raw"]["size_bytes"] + 1}
    _put_json(s3, bucket, segment.envelope_key, {**segment.envelope, "raw": bigger})
    result = run_assets(instance, bucket, PROOF_RUN, segment.segment_id)
    assert not result.success
    assert "envelope is final" in failure_messages(result)
    assert "raw.size_bytes" in failure_messages(result)
    assert store.read_record(catalog.SEGMENTS, segment.segment_id)[0] == proven_row
    assert _proof(bucket, segment.segment_id)["integrity_status"] == rules.VERIFIED
    conflicts = s3.list_objects_v2(
        Bucket=bucket, Prefix=f"{layout.CATALOG}/envelope_conflicts/{segment.segment_id}/"
    )
    assert conflicts["KeyCount"] == 1
    assert [a["kind"] for a in _alerts(data_dir)] == ["envelope_conflict"]

    # The original envelope again, byte for byte: accepted as the no-op it is.
    _put_json(s3, bucket, segment.envelope_key, segment.envelope)
    assert run_assets(instance, bucket, [SEGMENT], segment.segment_id, with_checks=False).success


def test_one_segment_claimed_by_two_sessions_counts_once(s3, bucket, instance, data_dir) -> None:
    owner, claimant = simulate(s3, bucket, sessions=2)
    contested = owner.segments[0]
    doc = _envelope(s3, bucket, claimant.envelope_key)
    doc["segment_ids"].append(contested.segment_id)
    _put_json(s3, bucket, claimant.envelope_key, doc)
    for segment in (contested, claimant.segments[0]):
        assert run_assets(instance, bucket, PROOF_RUN, segment.segment_id).success
    store = store_for(bucket)
    instance.add_dynamic_partitions(
        "media_session", [owner.media_session_id, claimant.media_session_id]
    )
    for session in (owner, claimant):
        assert materialize(
            [media_session],
            partition_key=session.media_session_id,
            instance=instance,
            resources={**resources_for(bucket), "object_store": store},
        ).success
    mine = store.read_record(catalog.SESSIONS, owner.media_session_id)[0]
    theirs = store.read_record(catalog.SESSIONS, claimant.media_session_id)[0]
    assert mine["segments_verified"] == 1 and mine["buyer_ready"]
    assert theirs["segments_verified"] == 1 and not theirs["buyer_ready"]
    assert contested.segment_id in json.loads(theirs["refused_claims"])
    refused = [a for a in _alerts(data_dir) if a["kind"] == "segment_claim_refused"]
    assert [a["details"]["segment_id"] for a in refused] == [contested.segment_id]


def test_clip_review_calls_the_guard(s3, bucket, instance) -> None:
    segment = simulate(s3, bucket)[0].segments[0]
    result = run_assets(instance, bucket, [CLIP_REVIEW], segment.segment_id, with_checks=False)
    assert not result.success
    assert "is not proven" in failure_messages(result)


def test_client_chosen_part_size_is_a_hint_not_a_refusal(s3, bucket, instance, tmp_path) -> None:
    segment = simulate(s3, bucket, multipart=True)[0].segments[0]
    data = s3.get_object(Bucket=bucket, Key=segment.raw_key)["Body"].read()
    assert len(data) > 8 * 1024 * 1024
    path = tmp_path / "segment.mp4"
    path.write_bytes(data)
    # What `aws s3 cp` does: s3transfer with 8 MiB parts, whatever the envelope declared.
    config = boto3.s3.transfer.TransferConfig(
        multipart_threshold=8 * 1024 * 1024, multipart_chunksize=8 * 1024 * 1024
    )
    s3.upload_file(
        str(path), bucket, segment.raw_key, ExtraArgs={"ContentType": "video/mp4"}, Config=config
    )
    assert segment.envelope["upload"]["part_size_bytes"] == 5 * 1024 * 1024
    result = run_assets(instance, bucket, [*PROOF_RUN, PROXY], segment.segment_id)
    assert result.success, failure_messages(result)
    record = _proof(bucket, segment.segment_id)
    assert record["etag"].endswith("-2")
    parts = store_parts(bucket, segment.segment_id)
    assert [p["size"] for p in parts][:1] == [8 * 1024 * 1024]


def test_single_put_upload_still_proves(s3, bucket, instance) -> None:
    segment = simulate(s3, bucket)[0].segments[0]
    data = s3.get_object(Bucket=bucket, Key=segment.raw_key)["Body"].read()
    s3.put_object(Bucket=bucket, Key=segment.raw_key, Body=data, ContentType="video/mp4")
    result = run_assets(instance, bucket, PROOF_RUN, segment.segment_id)
    assert result.success, failure_messages(result)
    assert "-" not in _proof(bucket, segment.segment_id)["etag"]


def store_parts(bucket: str, segment_id: str) -> list[dict]:
    return store_for(bucket).read_record(catalog.PARTS, segment_id)
