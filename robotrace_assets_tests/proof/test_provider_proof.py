"""Provider proof against the real store and a real Dagster instance.

Each corruption must fail the right check, and nothing downstream may materialize: neither in
the run that found it (blocking checks) nor in a later, separate run (the cross-run guard).
"""

import json
import os
from collections.abc import Callable

import pytest

from robotrace_assets import catalog, layout
from robotrace_assets.capture.simulator import SimulatedSegment
from robotrace_assets.derivatives.assets import PROXY
from robotrace_assets.objectstore.multipart import PresignedMultipartUploader
from robotrace_assets.proof import rules
from robotrace_assets.proof.assets import PROVIDER_PROOF
from robotrace_assets.segments.assets import SEGMENT, SEGMENT_PARTS
from robotrace_assets_tests.helpers import (
    check_outcomes,
    failure_messages,
    materialized,
    run_assets,
    run_checks,
    simulate,
    store_for,
)

SEGMENT_RUN = [SEGMENT, SEGMENT_PARTS, PROVIDER_PROOF, PROXY]


def _rewrite_envelope(s3, bucket: str, segment: SimulatedSegment, change: Callable) -> None:
    doc = json.loads(s3.get_object(Bucket=bucket, Key=segment.envelope_key)["Body"].read())
    change(doc)
    s3.put_object(Bucket=bucket, Key=segment.envelope_key, Body=json.dumps(doc).encode())


def _append_bytes(s3, bucket: str, segment: SimulatedSegment, tmp_path) -> None:
    path = tmp_path / "longer.mp4"
    path.write_bytes(segment.video.path.read_bytes() if segment.video.path.exists() else b"")
    original = s3.get_object(Bucket=bucket, Key=segment.raw_key)["Body"].read()
    path.write_bytes(original + os.urandom(4096))
    PresignedMultipartUploader(s3, bucket, part_size=5 * 1024 * 1024).upload(
        path, segment.raw_key, "video/mp4"
    )


def test_clean_segment_passes_every_check_and_gets_a_proxy(s3, bucket, instance) -> None:
    segment = simulate(s3, bucket, multipart=True)[0].segments[0]
    result = run_assets(instance, bucket, SEGMENT_RUN, segment.segment_id)
    assert result.success, failure_messages(result)
    assert set(check_outcomes(instance, segment.segment_id).values()) == {True}
    assert materialized(instance, PROXY, segment.segment_id)
    store = store_for(bucket)
    record = store.read_record(catalog.PROOFS, segment.segment_id)[0]
    assert record["integrity_status"] == rules.VERIFIED
    assert record["sha256"] == segment.envelope["raw"]["sha256"]
    assert record["byte_size"] == segment.envelope["raw"]["size_bytes"]
    assert record["safe_key_prefix"] == layout.tenant_raw_prefix(segment.envelope["tenant_id"])
    assert record["request_id"]
    parts = store.read_record(catalog.PARTS, segment.segment_id)
    assert [p["part_number"] for p in parts] == [1, 2, 3]
    assert all(p["status"] == "complete" for p in parts)


CORRUPTIONS = {
    # name: (simulator defects, mutation after upload, check that must fail)
    "flipped_byte": (["corrupt_after_upload@0.0"], None, rules.SHA256),
    "truncated_object": (["truncated_upload@0.0"], None, rules.SIZE),
    "extra_bytes": ([], "append", rules.SIZE),
    "missing_middle_part": (["missing_part@0.0"], None, rules.PARTS),
    "wrong_declared_size": ([], "size", rules.SIZE),
    "wrong_declared_sha256": ([], "sha", rules.SHA256),
    "key_outside_tenant_prefix": ([], "tenant", rules.TENANT_PREFIX),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_corruption_fails_its_check_and_blocks_downstream(
    case: str, s3, bucket, instance, tmp_path
) -> None:
    defects, mutation, failing = CORRUPTIONS[case]
    sessions = simulate(s3, bucket, *defects, segments=2, multipart=True)
    segment = sessions[0].segments[0]
    other_tenant_key = sessions[0].segments[1].raw_key.replace("ten_", "ten_0", 1)
    if mutation == "append":
        _append_bytes(s3, bucket, segment, tmp_path)
    elif mutation == "size":
        _rewrite_envelope(
            s3, bucket, segment, lambda d: d["raw"].update(size_bytes=d["raw"]["size_bytes"] + 7)
        )
    elif mutation == "sha":
        _rewrite_envelope(s3, bucket, segment, lambda d: d["raw"].update(sha256="0" * 64))
    elif mutation == "tenant":
        # Points at bytes that exist, but under another tenant's prefix.
        s3.copy_object(
            Bucket=bucket,
            Key=other_tenant_key,
            CopySource={"Bucket": bucket, "Key": segment.raw_key},
        )
        _rewrite_envelope(
            s3, bucket, segment, lambda d: d["raw"].update(object_key=other_tenant_key)
        )

    result = run_assets(instance, bucket, SEGMENT_RUN, segment.segment_id)
    outcomes = check_outcomes(instance, segment.segment_id)
    assert outcomes[failing] is False, outcomes
    assert not result.success
    assert not materialized(instance, PROXY, segment.segment_id)  # same run: blocked

    later = run_assets(instance, bucket, [PROXY], segment.segment_id, with_checks=False)
    assert not later.success
    assert "is not proven" in failure_messages(later)
    assert f"{failing}: failed" in failure_messages(later)
    assert not materialized(instance, PROXY, segment.segment_id)  # later run: refused

    # The other segment of the session is unaffected and proves cleanly.
    sibling = sessions[0].segments[1]
    if mutation != "tenant":
        assert run_assets(instance, bucket, SEGMENT_RUN, sibling.segment_id).success


def test_object_replaced_after_its_proof_is_caught(s3, bucket, instance, tmp_path) -> None:
    segment = simulate(s3, bucket, multipart=True)[0].segments[0]
    assert run_assets(instance, bucket, SEGMENT_RUN, segment.segment_id).success
    replacement = tmp_path / "replacement.mp4"
    replacement.write_bytes(os.urandom(segment.digest.size))
    PresignedMultipartUploader(s3, bucket, part_size=5 * 1024 * 1024).upload(
        replacement, segment.raw_key, "video/mp4"
    )
    checks = run_checks(instance, bucket, segment.segment_id)
    assert not checks.success
    assert check_outcomes(instance, segment.segment_id)[rules.UNCHANGED] is False
    later = run_assets(instance, bucket, [PROXY], segment.segment_id, with_checks=False)
    assert not later.success
    assert f"{rules.UNCHANGED}: failed" in failure_messages(later)


def test_unproven_segment_is_refused_by_the_guard(s3, bucket, instance) -> None:
    segment = simulate(s3, bucket)[0].segments[0]
    result = run_assets(instance, bucket, [PROXY], segment.segment_id, with_checks=False)
    assert not result.success
    message = failure_messages(result)
    assert "provider proof has never been materialized" in message
    assert "has not run" in message
    assert not materialized(instance, PROXY, segment.segment_id)


def test_proof_rematerialized_without_checks_is_not_trusted(s3, bucket, instance) -> None:
    segment = simulate(s3, bucket)[0].segments[0]
    assert run_assets(instance, bucket, SEGMENT_RUN, segment.segment_id).success
    # Re-proving without running the checks leaves the checks older than the proof.
    assert run_assets(
        instance, bucket, [PROVIDER_PROOF], segment.segment_id, with_checks=False
    ).success
    later = run_assets(instance, bucket, [PROXY], segment.segment_id, with_checks=False)
    assert "older than the latest proof" in failure_messages(later)
