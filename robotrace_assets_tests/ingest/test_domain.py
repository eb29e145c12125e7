"""Ingest domain logic without HTTP: keys, rate-limit maths, finalize verification, envelopes."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from robotrace_assets.envelopes import MediaSessionEnvelope, SegmentEnvelope
from robotrace_assets.ingest import episodes, keys
from robotrace_assets.ingest.ratelimit import TokenBuckets, retry_after_s
from robotrace_assets.ingest.verify import Observed, verify_artifacts
from robotrace_assets.ingest.wire import CONTENT_TYPES


def test_keys_round_trip_and_compare_in_constant_time() -> None:
    minted = keys.mint()
    assert minted.token.startswith(f"rt_{minted.key_id}_")
    assert keys.parse(minted.token) == (minted.key_id, minted.secret)
    assert keys.secret_matches(minted.secret, minted.secret_sha256)
    assert not keys.secret_matches(minted.secret + "x", minted.secret_sha256)
    assert not keys.secret_matches(minted.secret, None)  # unknown id: still compared, never ok
    for bad in ("", "rt_", "rt_zzzzzzzzzz_" + "a" * 43, f"xx_{minted.key_id}_{minted.secret}"):
        with pytest.raises(keys.KeyFormatError):
            keys.parse(bad)
    assert keys.mint().token != minted.token
    with pytest.raises(ValueError):
        keys.check_scopes(["ingest:write", "admin"])


def test_token_bucket_retry_after_is_a_whole_second() -> None:
    buckets = TokenBuckets(rate_per_s=0.5, burst=2)
    assert [buckets.take("k", 0.0) for _ in range(3)] == [0, 0, 2]
    assert buckets.take("k", 2.0) == 0  # one token back after 2 s
    assert buckets.take("other", 2.0) == 0
    assert retry_after_s(0.99, 100.0) == 1
    assert retry_after_s(0.0, 0.0) == 60


def _seen(size: int, kind: str = "video") -> Observed:
    return Observed(size, CONTENT_TYPES[kind], "etag")


def test_verification_rules() -> None:
    all_three = ["video", "sensors", "actions"]
    only_video = {"video": _seen(10), "sensors": None, "actions": None}
    # The SDK's documented flow: three slots, the video uploaded, bytes_total says so.
    outcome = verify_artifacts(all_three, only_video, CONTENT_TYPES, 10)
    assert outcome.passed and outcome.provable and outcome.present == ("video",)
    # Without bytes_total an empty slot is a failure; with a wrong one, both fail.
    assert not verify_artifacts(all_three, only_video, CONTENT_TYPES, None).passed
    short = verify_artifacts(all_three, only_video, CONTENT_TYPES, 11)
    assert {c.name for c in short.checks if not c.passed} == {
        "sensors_uploaded",
        "actions_uploaded",
        "bytes_total_matches",
    }
    wrong_type = {"video": Observed(10, "application/octet-stream", "e")}
    failed = verify_artifacts(["video"], wrong_type, CONTENT_TYPES, None)
    assert [c.name for c in failed.checks if not c.passed] == ["video_content_type"]
    empty = verify_artifacts(["video"], {"video": _seen(0)}, CONTENT_TYPES, 0)
    assert [c.name for c in empty.checks if not c.passed] == ["video_not_empty"]
    # A requested video is never optional, whatever bytes_total says.
    no_video = {"video": None, "sensors": _seen(5, "sensors")}
    missing_video = verify_artifacts(["video", "sensors"], no_video, CONTENT_TYPES, 5)
    assert [c.name for c in missing_video.checks if not c.passed] == ["video_uploaded"]
    sensors_only = verify_artifacts(["sensors"], {"sensors": _seen(5, "sensors")}, CONTENT_TYPES, 5)
    assert sensors_only.passed and not sensors_only.provable


def _tenant(**terms) -> episodes.TenantDefaults:
    return episodes.TenantDefaults(
        tenant_id="ten_01J8Z3Y4X5W6V7T8S9R0Q1P2N3",
        operator_id="op_01J8Z3Y4X5W6V7T8S9R0Q1P2N3",
        task_brief_id="tb_01J8Z3Y4X5W6V7T8S9R0Q1P2N3",
        device_model="robotrace-client",
        device_tier=0,
        device_has_lidar=False,
        safety_rules_version="v4.2",
        consent=terms.get("consent"),
        license=terms.get("license"),
    )


def _facts(metadata: dict) -> episodes.EpisodeFacts:
    at = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
    return episodes.EpisodeFacts(
        episode_id="e8a4f01c-2b39-4f89-b8ab-12c4ab7d40e6",
        tenant_id="ten_01J8Z3Y4X5W6V7T8S9R0Q1P2N3",
        media_session_id="msess_01J8Z3Y4X5W6V7T8S9R0Q1P2N3",
        segment_id="seg_01J8Z3Y4X5W6V7T8S9R0Q1P2N3",
        source="sim",
        created_at=at,
        finalized_at=at,
        duration_s=4.5,
        fields={"name": "run", "robot": "arm", "policy_version": "p1", "seed": 7, "fps": 30},
        metadata=metadata,
    )


def test_an_episode_becomes_a_session_with_one_segment() -> None:
    license_ = {"scope_id": "lic_01J8Z3Y4X5W6V7T8S9R0Q1P2N3", "allowed_use": ["robotics_training"]}
    facts = _facts({"task": "pick", "license": license_})
    session = episodes.session_envelope(facts, _tenant())
    parsed = MediaSessionEnvelope.parse(json.dumps(session).encode())
    assert parsed.license_scope_id == license_["scope_id"]
    assert parsed.consent_receipt_id is None  # no consent: proven, never approved
    assert session["provenance"]["policy_version"] == "p1"
    assert session["provenance"]["episode_source"] == "sim"
    present = {"video": _seen(100), "actions": _seen(7, "actions")}
    segment = episodes.segment_envelope(facts, present, CONTENT_TYPES)
    parsed_segment = SegmentEnvelope.parse(json.dumps(segment).encode())
    assert parsed_segment.raw_sha256 is None  # RoboTrace clients declare no hash
    assert parsed_segment.duration_s == 4.5
    assert [(o.role, o.size_bytes) for o in parsed_segment.objects] == [("actions", 7)]
    assert parsed_segment.part_size_bytes == 5 * 1024 * 1024
    for key in [parsed_segment.raw_key, parsed_segment.objects[0].object_key]:
        assert key.startswith(f"robotics/raw/{facts.tenant_id}/{facts.media_session_id}/")


def test_tenant_defaults_apply_and_bad_terms_are_refused() -> None:
    consent = {
        "receipt_id": "consent_01J8Z3Y4X5W6V7T8S9R0Q1P2N3",
        "brief_accepted_at": "2026-11-29T09:00:00Z",
        "co_resident_required": False,
    }
    assert episodes.terms({}, _tenant(consent=consent)) == (consent, None)
    with pytest.raises(episodes.TermsError, match=r"metadata\.license"):
        episodes.terms({"license": {"scope_id": "x"}}, _tenant())


def test_sensors_probe_reads_only_the_footer(tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from robotrace_assets.capture.trajectories import TrajectorySpec, synthesize_trajectory
    from robotrace_assets.ingest.sensors_probe import trajectory_hz
    from robotrace_assets.sensorlog import write_parquet

    ours = tmp_path / "ours.parquet"
    write_parquet(synthesize_trajectory(TrajectorySpec(seconds=2.0, hz=120.0)), ours)
    data = ours.read_bytes()
    reads: list[tuple[int, int]] = []

    def read_range(offset: int, length: int) -> bytes:
        reads.append((offset, length))
        return data[offset : offset + length]

    assert trajectory_hz(len(data), read_range) == 120.0
    assert len(reads) == 2 and reads[0] == (len(data) - 8, 8)
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), plain)
    other = plain.read_bytes()
    assert trajectory_hz(len(other), lambda o, n: other[o : o + n]) is None
    lying = data[:-8] + (2**31).to_bytes(4, "little") + b"PAR1"  # a footer length past the file
    assert trajectory_hz(len(lying), lambda o, n: lying[o : o + n]) is None
    assert trajectory_hz(4, lambda o, n: b"") is None
    assert trajectory_hz(64, lambda o, n: b"\0" * n) is None
