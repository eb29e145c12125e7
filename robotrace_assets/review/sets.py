"""The review sets: the review-complete set that delivery draws from, and the regression bank
of rejected clips, built from the segments' clip reviews."""

from typing import Any

from dagster import (
    AllPartitionMapping,
    AssetDep,
    AssetExecutionContext,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from robotrace_assets import catalog, layout
from robotrace_assets.resources import ObjectStoreResource
from robotrace_assets.review.assets import (
    ALL,
    CLIP_REVIEW,
    REGRESSION_BANK,
    REVIEW_COMPLETE,
    list_keys,
)
from robotrace_assets.review.decisions import APPROVED, NEEDS_REVIEW, REJECTED
from robotrace_assets.ui_metadata import OWNERS, catalog_table


@multi_asset(
    name="review_sets",
    specs=[
        AssetSpec(
            REVIEW_COMPLETE,
            deps=[AssetDep(CLIP_REVIEW, partition_mapping=AllPartitionMapping())],
            group_name="review",
            kinds={"s3", "parquet"},
            owners=OWNERS,
            metadata=catalog_table(catalog.REVIEW_COMPLETE),
            description="Every approved clip: the set buyer delivery draws from.",
        ),
        AssetSpec(
            REGRESSION_BANK,
            deps=[AssetDep(CLIP_REVIEW, partition_mapping=AllPartitionMapping())],
            group_name="review",
            kinds={"s3", "parquet"},
            owners=OWNERS,
            metadata=catalog_table(catalog.REGRESSION_BANK),
            description="Every rejected clip with the reasons it was rejected.",
        ),
    ],
)
def review_sets(context: AssetExecutionContext, object_store: ObjectStoreResource):
    rows: list[dict[str, Any]] = []
    for key in list_keys(object_store, f"{layout.CATALOG}/{catalog.CLIP_REVIEWS}/"):
        rows += catalog.from_parquet(object_store.get_bytes(key))
    approved = [r for r in rows if r["final_status"] == APPROVED]
    rejected = [r for r in rows if r["final_status"] == REJECTED]
    complete_key = object_store.write_record(catalog.REVIEW_COMPLETE, ALL, approved)
    bank_key = object_store.write_record(catalog.REGRESSION_BANK, ALL, rejected)
    yield MaterializeResult(
        asset_key=REVIEW_COMPLETE,
        metadata={
            "clips": len(approved),
            "segments": len({r["segment_id"] for r in approved}),
            "needs_review_elsewhere": sum(r["final_status"] == NEEDS_REVIEW for r in rows),
            "catalog_key": MetadataValue.path(complete_key),
        },
    )
    reasons: dict[str, int] = {}
    for row in rejected:
        for reason in row["reasons"] or []:
            head = reason.split(":")[0].split(" (")[0]
            reasons[head] = reasons.get(head, 0) + 1
    yield MaterializeResult(
        asset_key=REGRESSION_BANK,
        metadata={
            "clips": len(rejected),
            "top_reasons": MetadataValue.json(
                dict(sorted(reasons.items(), key=lambda i: -i[1])[:10])
            ),
            "catalog_key": MetadataValue.path(bank_key),
        },
    )
