"""Reviewer decisions: pure folding rules, the CLI, the bucket sensor and the review sets."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from dagster import build_sensor_context, materialize

from robotrace_assets import catalog, layout
from robotrace_assets.cli import main as cli
from robotrace_assets.clips.assets import CLIPS
from robotrace_assets.derivatives.assets import PROXY
from robotrace_assets.ids import id_day
from robotrace_assets.proof.assets import PROVIDER_PROOF
from robotrace_assets.review.assets import CLIP_REVIEW
from robotrace_assets.review.decisions import Decision, DecisionError, fold, parse_decision
from robotrace_assets.review.sensors import review_decision_sensor
from robotrace_assets.review.sets import review_sets
from robotrace_assets.review.shards import read_days
from robotrace_assets.segments.assets import SEGMENT, SEGMENT_PARTS
from robotrace_assets_tests.helpers import (
    failure_messages,
    resources_for,
    run_assets,
    simulate,
    store_for,
)

FULL = [SEGMENT, SEGMENT_PARTS, PROVIDER_PROOF, PROXY, CLIPS, CLIP_REVIEW]
CLIP = "clip_01KT9WNH80AAAAAAAAAAAAAAAA"
AT = datetime(2026, 6, 4, 18, 0, tzinfo=UTC)
MACHINE = {"safety": 0.4, "smoothness": 0.5, "quality": 0.9}


def decision(action: str, minutes: int = 0, **extra) -> Decision:
    return Decision(
        decision_id=f"dec_01KT9WNH80AAAAAAAAAAAAAAA{minutes % 10}",
        clip_id=CLIP,
        segment_id=None,
        reviewer_id="alice",
        action=action,
        score=extra.get("score"),
        value=extra.get("value"),
        rationale=extra.get("rationale", "looked at it frame by frame"),
        decided_at=AT + timedelta(minutes=minutes),
        source_sha256="ab" * 32,
    )


def test_override_without_rationale_is_refused() -> None:
    doc = decision("override_score", score="safety", value=0.9).to_json()
    for rationale in ("", "   ", "too short"):
        with pytest.raises(DecisionError, match="rationale"):
            parse_decision({**doc, "rationale": rationale})
    with pytest.raises(DecisionError, match="score"):
        parse_decision({k: v for k, v in doc.items() if k != "score"})


def test_override_preserves_machine_and_reviewer_scores() -> None:
    reviewed = fold(
        CLIP,
        "needs_review",
        MACHINE,
        ["jerk"],
        [decision("override_score", score="safety", value=0.85)],
        has_consent=True,
        has_license=True,
    )
    assert reviewed.machine_scores == MACHINE
    assert reviewed.reviewer_scores == {"safety": 0.85}
    assert reviewed.final_scores["safety"] == 0.85 and reviewed.final_scores["quality"] == 0.9
    assert reviewed.final_status == "needs_review"  # an override is not a verdict


def test_latest_verdict_wins_and_history_is_kept() -> None:
    reviewed = fold(
        CLIP,
        "needs_review",
        MACHINE,
        [],
        [decision("approve", 1), decision("reject", 2, rationale="grasp slips at 3.1 s")],
        has_consent=True,
        has_license=True,
    )
    assert reviewed.final_status == "rejected" and reviewed.decided_by == "alice"
    assert [h["action"] for h in reviewed.history] == ["approve", "reject"]


@pytest.mark.parametrize(("consent", "license_"), [(False, True), (True, False)])
def test_no_approval_without_consent_or_license(consent: bool, license_: bool) -> None:
    reviewed = fold(
        CLIP,
        "approved",
        MACHINE,
        [],
        [decision("approve")],
        has_consent=consent,
        has_license=license_,
    )
    assert reviewed.final_status == "needs_review"
    assert any("cannot be approved" in r for r in reviewed.reasons)


def _review_rows(bucket: str, segment_id: str) -> list[dict]:
    return store_for(bucket).read_record(catalog.CLIP_REVIEWS, segment_id)


def _tick(instance, bucket: str, cursor=None):
    context = build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources=resources_for(bucket),
    )
    return review_decision_sensor(context)


def test_decisions_flow_from_cli_through_sensor_to_review_sets(
    s3, bucket, instance, data_dir
) -> None:
    spiky = simulate(s3, bucket, "jerk_spike@0.0")[0].segments[0]
    assert run_assets(instance, bucket, FULL, spiky.segment_id).success
    clips = _review_rows(bucket, spiky.segment_id)
    rejected = next(c for c in clips if c["machine_status"] == "rejected")
    other = next(c for c in clips if c["clip_id"] != rejected["clip_id"])

    assert (
        cli(
            [
                "review",
                "override",
                rejected["clip_id"],
                "--reviewer",
                "bob",
                "--score",
                "safety",
                "--value",
                "0.3",
                "--rationale",
                "spike is real, arm hit the tray",
            ]
        )
        == 0
    )
    assert (
        cli(
            [
                "review",
                "reject",
                rejected["clip_id"],
                "--reviewer",
                "bob",
                "--rationale",
                "unsafe contact with the tray",
            ]
        )
        == 0
    )
    assert (
        cli(["review", "approve", other["clip_id"], "--reviewer", "carol", "--rationale", ""]) == 2
    )  # refused: no rationale
    assert (
        cli(
            [
                "review",
                "approve",
                other["clip_id"],
                "--reviewer",
                "carol",
                "--rationale",
                "motion is clean on the proxy",
            ]
        )
        == 0
    )

    result = _tick(instance, bucket)
    assert [r.partition_key for r in result.run_requests] == [spiky.segment_id]
    filed = s3.list_objects_v2(
        Bucket=bucket, Prefix=layout.filed_decisions_prefix(spiky.segment_id)
    )["KeyCount"]
    assert filed == 3
    assert _tick(instance, bucket, result.cursor).run_requests == []  # each decision once

    assert run_assets(instance, bucket, [CLIP_REVIEW], spiky.segment_id, with_checks=False).success
    rows = {r["clip_id"]: r for r in _review_rows(bucket, spiky.segment_id)}
    bad = rows[rejected["clip_id"]]
    assert bad["final_status"] == "rejected"
    assert bad["machine_safety"] == rejected["machine_safety"]  # never overwritten
    assert bad["reviewer_safety"] == 0.3
    assert bad["decided_by"] == "bob" and "tray" in bad["decision_rationale"]
    assert rows[other["clip_id"]]["final_status"] == "approved"

    store = store_for(bucket)
    day = id_day(spiky.segment_id)
    assert materialize(
        [review_sets], partition_key=day, instance=instance, resources={"object_store": store}
    ).success
    bank = read_days(store, catalog.REGRESSION_BANK, [day])
    assert [r["clip_id"] for r in bank] == [rejected["clip_id"]]
    assert any("tray" in reason for reason in bank[0]["reasons"])
    complete = read_days(store, catalog.REVIEW_COMPLETE, [day])
    assert other["clip_id"] in {r["clip_id"] for r in complete}
    assert rejected["clip_id"] not in {r["clip_id"] for r in complete}


def test_invalid_decision_in_the_bucket_is_refused_and_alerted(
    s3, bucket, instance, data_dir
) -> None:
    bad = {
        "schema_version": "1",
        "decision_id": "dec_01KT9WNH80AAAAAAAAAAAAAAA1",
        "clip_id": CLIP,
        "source_sha256": "ab" * 32,
        "reviewer_id": "eve",
        "action": "approve",
        "rationale": "",
        "decided_at": AT.isoformat(),
    }
    s3.put_object(
        Bucket=bucket,
        Key=layout.decision_key(bad["decision_id"], datetime.now(UTC)),
        Body=json.dumps(bad).encode(),
    )
    result = _tick(instance, bucket)
    assert result.run_requests == []
    alerts = (data_dir / "alerts.jsonl").read_text()
    assert "decision_refused" in alerts and "rationale" in alerts


def test_missing_consent_clip_cannot_be_approved(s3, bucket, instance) -> None:
    segment = simulate(s3, bucket, "missing_consent")[0].segments[0]
    result = run_assets(instance, bucket, FULL, segment.segment_id)
    assert result.success, failure_messages(result)
    clip = _review_rows(bucket, segment.segment_id)[0]
    assert (
        cli(
            [
                "review",
                "approve",
                clip["clip_id"],
                "--reviewer",
                "dan",
                "--rationale",
                "looks fine to me on the proxy",
            ]
        )
        == 0
    )
    _tick(instance, bucket)
    assert run_assets(
        instance, bucket, [CLIP_REVIEW], segment.segment_id, with_checks=False
    ).success
    row = next(
        r for r in _review_rows(bucket, segment.segment_id) if r["clip_id"] == clip["clip_id"]
    )
    assert row["final_status"] == "needs_review"
    assert any("consent receipt" in r for r in row["reasons"])
