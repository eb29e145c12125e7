"""Clips from simulated captures with injected defects, scored through Dagster."""

import json

from robotrace_assets import catalog
from robotrace_assets.clips.assets import CLIPS
from robotrace_assets.clips.cutting import cut_clips
from robotrace_assets.derivatives.assets import PROXY
from robotrace_assets.proof.assets import PROVIDER_PROOF
from robotrace_assets.review.assets import CLIP_REVIEW
from robotrace_assets.segments.assets import SEGMENT, SEGMENT_PARTS
from robotrace_assets_tests.helpers import (
    failure_messages,
    materialized,
    run_assets,
    simulate,
    store_for,
)

FULL = [SEGMENT, SEGMENT_PARTS, PROVIDER_PROOF, PROXY, CLIPS, CLIP_REVIEW]
SEG = "seg_01KT9WNH809PJX8W9XC34AE1HS"


def test_cut_at_task_steps_else_fixed_windows() -> None:
    steps = [
        {"label": "reach", "start_s": 0.0, "end_s": 1.5},
        {"label": "grasp", "start_s": 1.5, "end_s": 4.0},
    ]
    by_step = cut_clips(SEG, 4.0, steps)
    assert [(c.label, c.start_s, c.end_s, c.boundary) for c in by_step] == [
        ("reach", 0.0, 1.5, "task_step"),
        ("grasp", 1.5, 4.0, "task_step"),
    ]
    windows = cut_clips(SEG, 25.2, None, window_s=10.0)
    assert [(c.start_s, c.end_s) for c in windows] == [(0.0, 10.0), (10.0, 20.0), (20.0, 25.2)]
    assert cut_clips(SEG, 20.3, None, window_s=10.0)[-1].end_s == 20.3  # no 0.3 s sliver
    assert [c.clip_id for c in by_step] == [c.clip_id for c in cut_clips(SEG, 4.0, steps)]
    assert len({c.clip_id for c in windows}) == 3


def _clips(bucket: str, segment_id: str) -> list[dict]:
    return store_for(bucket).read_record(catalog.CLIPS, segment_id) or []


def test_defects_are_scored_as_expected(s3, bucket, instance) -> None:
    session = simulate(
        s3, bucket, "jerk_spike@0.1", "dropped_frames@0.2", "clock_drift@0.3", segments=4
    )[0]
    blur = session.envelope["environment"]["blur_enforced"]
    clean, spiky, dropped, drifting = session.segments
    for segment in session.segments:
        result = run_assets(instance, bucket, FULL, segment.segment_id)
        assert result.success, failure_messages(result)

    clean_clips = _clips(bucket, clean.segment_id)
    assert len(clean_clips) == len(session.envelope["task"]["steps"])
    expected = "approved" if blur else "needs_review"
    assert {c["machine_status"] for c in clean_clips} == {expected}

    spiky_clips = _clips(bucket, spiky.segment_id)
    worst = min(spiky_clips, key=lambda c: c["machine_safety"])
    assert worst["machine_status"] == "rejected"
    assert any("jerk" in reason for reason in worst["machine_reasons"])
    assert worst["signal_jerk_peak"] > 5 * max(c["signal_jerk_peak"] for c in clean_clips)

    dropped_clips = _clips(bucket, dropped.segment_id)
    with_gap = [c for c in dropped_clips if c["signal_dropped_frames"] > 0]
    assert with_gap and all(c["machine_status"] != "approved" for c in with_gap)
    assert sum(c["signal_dropped_frames"] for c in dropped_clips) >= 3

    drift_clips = _clips(bucket, drifting.segment_id)
    assert all(abs(c["signal_clock_skew_ppm"] - 250) < 10 for c in drift_clips)
    assert all(c["machine_status"] != "approved" for c in drift_clips)
    assert all(any("clock" in r for r in c["machine_reasons"]) for c in drift_clips)


def test_every_clip_explains_where_it_came_from(s3, bucket, instance) -> None:
    session = simulate(s3, bucket)[0]
    segment = session.segments[0]
    assert run_assets(instance, bucket, FULL, segment.segment_id).success
    for clip in _clips(bucket, segment.segment_id):
        assert clip["operator_id"] == session.envelope["operator_id"]
        assert clip["task_brief_id"] == session.envelope["task_brief_id"]
        assert clip["device_model"] == session.envelope["device"]["model"]
        assert clip["consent_receipt_id"] == session.envelope["consent"]["receipt_id"]
        assert clip["license_scope_id"] == session.envelope["license"]["scope_id"]
        assert clip["safety_rules_version"] == clip["rules_version"] == "v4.2"
        assert clip["raw_sha256"] == segment.envelope["raw"]["sha256"]
        assert clip["proof_integrity_status"] == "verified"
        seed_clip = json.loads(clip["clip_object"])
        assert set(seed_clip) == {
            "clip_id",
            "session_id",
            "duration_ms",
            "video",
            "depth",
            "trajectory",
            "environment",
            "scoring",
        }
        assert seed_clip["video"]["codec"] == "hevc"


def test_clip_metadata_shows_plots_and_counts(s3, bucket, instance) -> None:
    from dagster import AssetRecordsFilter

    segment = simulate(s3, bucket, "jerk_spike@0.0")[0].segments[0]
    assert run_assets(instance, bucket, FULL, segment.segment_id).success
    record = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=CLIPS, asset_partitions=[segment.segment_id]), limit=1
    ).records[0]
    metadata = record.asset_materialization.metadata
    assert metadata["signal_plots"].value.startswith(
        "![per-clip jerk and frame gaps](data:image/png"
    )
    assert metadata["rejected"].value >= 1
    assert sum(metadata[k].value for k in ("approved", "needs_review", "rejected")) == (
        metadata["clips"].value
    )


def test_unproven_segment_produces_no_clips(s3, bucket, instance) -> None:
    segment = simulate(s3, bucket, "corrupt_after_upload@0.0")[0].segments[0]
    assert not run_assets(instance, bucket, FULL, segment.segment_id).success
    later = run_assets(instance, bucket, [CLIPS], segment.segment_id, with_checks=False)
    assert "is not proven" in failure_messages(later)
    assert not materialized(instance, CLIPS, segment.segment_id)
    assert _clips(bucket, segment.segment_id) == []
