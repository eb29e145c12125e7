"""Review assets: each segment's clips with reviewer decisions folded in; then the
review-complete set that delivery draws from, and the regression bank of rejected clips."""

import json
from collections.abc import Iterator
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from robotrace_assets import catalog, layout
from robotrace_assets.batching import SEGMENT_BACKFILL_POLICY, materialize_each
from robotrace_assets.clips.assets import CLIPS
from robotrace_assets.partitions import segment_partitions
from robotrace_assets.proof.guard import require_proven
from robotrace_assets.resources import AlertsResource, ObjectStoreResource
from robotrace_assets.review.decisions import (
    APPROVED,
    NEEDS_REVIEW,
    REJECTED,
    Decision,
    DecisionError,
    fold,
    parse_decision,
)
from robotrace_assets.ui_metadata import OWNERS, catalog_table

CLIP_REVIEW = AssetKey(["review", "clip_review"])
REVIEW_COMPLETE = AssetKey(["review", "review_complete"])
REGRESSION_BANK = AssetKey(["review", "regression_bank"])
ALL = "all"  # the single partition file of an unpartitioned table


def list_keys(store: ObjectStoreResource, prefix: str) -> list[str]:
    client, keys, token = store.client(), [], None
    while True:
        kwargs: dict[str, Any] = {"Bucket": store.bucket_name, "Prefix": prefix}
        if token:
            kwargs["ContinuationToken"] = token
        page = client.list_objects_v2(**kwargs)
        keys += [item["Key"] for item in page.get("Contents", [])]
        if not page.get("IsTruncated"):
            return keys
        token = page["NextContinuationToken"]


def filed_decisions(store: ObjectStoreResource, segment_id: str) -> list[Decision]:
    prefix = layout.filed_decisions_prefix(segment_id)
    decisions = []
    for key in list_keys(store, prefix):
        try:
            decisions.append(parse_decision(store.get_bytes(key)))
        except DecisionError:
            continue  # filed decisions were validated by the sensor; never trust, never crash
    return decisions


def reviewed_row(clip: dict[str, Any], decisions: list[Decision]) -> dict[str, Any]:
    machine = {
        "safety": clip["machine_safety"],
        "smoothness": clip["machine_smoothness"],
        "quality": clip["machine_quality"],
    }
    reviewed = fold(
        clip["clip_id"],
        clip["machine_status"],
        machine,
        clip["machine_reasons"] or [],
        decisions,
        has_consent=bool(clip.get("consent_receipt_id")),
        has_license=bool(clip.get("license_scope_id")),
        source_sha256=clip["raw_sha256"],
    )
    return {
        **clip,
        "reviewer_safety": reviewed.reviewer_scores.get("safety"),
        "reviewer_smoothness": reviewed.reviewer_scores.get("smoothness"),
        "reviewer_quality": reviewed.reviewer_scores.get("quality"),
        "final_safety": reviewed.final_scores["safety"],
        "final_smoothness": reviewed.final_scores["smoothness"],
        "final_quality": reviewed.final_scores["quality"],
        "final_status": reviewed.final_status,
        "decided_by": reviewed.decided_by,
        "decision_rationale": reviewed.rationale,
        "decided_at": reviewed.decided_at,
        "reasons": list(reviewed.reasons),
        "decision_history": json.dumps(list(reviewed.history)),
    }


@asset(
    key=CLIP_REVIEW,
    backfill_policy=SEGMENT_BACKFILL_POLICY,
    partitions_def=segment_partitions,
    deps=[CLIPS],
    group_name="review",
    kinds={"s3", "parquet"},
    owners=OWNERS,
    metadata=catalog_table(catalog.CLIP_REVIEWS),
    description="A segment's clips with every reviewer decision folded in: machine scores kept, "
    "reviewer scores beside them, final status; no approval without consent and license.",
)
def clip_review(
    context: AssetExecutionContext, object_store: ObjectStoreResource, alerts: AlertsResource
) -> Iterator[MaterializeResult]:
    yield from materialize_each(context, lambda s: review_segment(context, object_store, alerts, s))


def review_segment(
    context: AssetExecutionContext,
    object_store: ObjectStoreResource,
    alerts: AlertsResource,
    segment_id: str,
) -> MaterializeResult:
    require_proven(context.instance, object_store, alerts, segment_id)
    clips = object_store.read_record(catalog.CLIPS, segment_id)
    if clips is None:
        raise Failure(f"segment {segment_id} has no clips yet: materialize clips/clip")
    decisions = filed_decisions(object_store, segment_id)
    rows = [reviewed_row(c, decisions) for c in clips]
    key = object_store.write_record(catalog.CLIP_REVIEWS, segment_id, rows)
    statuses = [r["final_status"] for r in rows]
    return MaterializeResult(
        metadata={
            "clips": len(rows),
            "approved": statuses.count(APPROVED),
            "needs_review": statuses.count(NEEDS_REVIEW),
            "rejected": statuses.count(REJECTED),
            "decisions": len(decisions),
            "catalog_key": MetadataValue.path(key),
        }
    )
