"""The review sets: the review-complete set that delivery draws from, and the regression bank
of rejected clips, partitioned by capture day with one shard per segment (review/shards.py).

A run of one day updates the segments its run config names (what `review_sets_sensor` asks
for: the segments whose review changed); a run without that list (a manual run, a backfill)
rebuilds the whole day from its clip reviews. Neither ever reads another day.
"""

from dagster import (
    AllPartitionMapping,
    AssetDep,
    AssetExecutionContext,
    AssetSpec,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)
from pydantic import Field

from robotrace_assets import catalog, ids
from robotrace_assets.partitions import REVIEW_DAYS_START, review_day_partitions
from robotrace_assets.resources import ObjectStoreResource
from robotrace_assets.review.assets import CLIP_REVIEW, REGRESSION_BANK, REVIEW_COMPLETE
from robotrace_assets.review.shards import DayUpdate, day_prefix, rebuild_day, update_day
from robotrace_assets.ui_metadata import OWNERS, catalog_table

OP_NAME = "review_sets"
MAX_SEGMENTS_PER_RUN = 500  # the sensor splits a busy day into runs of at most this many


class ReviewSetsConfig(Config):
    segment_ids: list[str] = Field(
        default_factory=list,
        description="Segments of this day whose review changed; empty: rebuild the whole day.",
    )


def _spec(key, table: str, description: str) -> AssetSpec:
    return AssetSpec(
        key,
        # Lineage: a day reads the clip reviews of its own segments only (measured: this
        # mapping costs a run nothing per upstream partition, 100,000 included).
        deps=[AssetDep(CLIP_REVIEW, partition_mapping=AllPartitionMapping())],
        group_name="review",
        kinds={"s3", "parquet"},
        owners=OWNERS,
        metadata={**catalog_table(table), "layout": f"{table}/day=YYYY-MM-DD/<segment_id>.parquet"},
        description=description,
    )


def _checked_segments(day: str, segment_ids: list[str]) -> list[str]:
    """The config's segments, each of which must belong to this day."""
    wrong = [
        s
        for s in segment_ids
        if not ids.is_id("seg", s) or max(ids.id_day(s), REVIEW_DAYS_START) != day
    ]
    if wrong:
        raise Failure(f"segments not of day {day}: {wrong[:10]}", allow_retries=False)
    return segment_ids


@multi_asset(
    name=OP_NAME,
    partitions_def=review_day_partitions,
    specs=[
        _spec(
            REVIEW_COMPLETE,
            catalog.REVIEW_COMPLETE,
            "Every approved clip, by capture day, one shard per segment: the set buyer "
            "delivery draws from.",
        ),
        _spec(
            REGRESSION_BANK,
            catalog.REGRESSION_BANK,
            "Every rejected clip with the reasons it was rejected, by capture day, one shard "
            "per segment.",
        ),
    ],
)
def review_sets(
    context: AssetExecutionContext, config: ReviewSetsConfig, object_store: ObjectStoreResource
):
    day = context.partition_key
    if config.segment_ids:
        update = update_day(object_store, day, _checked_segments(day, config.segment_ids))
        mode = "segments"
    else:
        update = rebuild_day(object_store, day, REVIEW_DAYS_START)
        mode = "rebuild"
    context.log.info(f"day {day} ({mode}): {update.segments} segments")
    yield MaterializeResult(asset_key=REVIEW_COMPLETE, metadata=_metadata(update, mode, True))
    yield MaterializeResult(asset_key=REGRESSION_BANK, metadata=_metadata(update, mode, False))


def _metadata(update: DayUpdate, mode: str, complete: bool) -> dict:
    table = catalog.REVIEW_COMPLETE if complete else catalog.REGRESSION_BANK
    change = update.sets[table]
    metadata = {
        "mode": mode,  # segments: only those the sensor named; rebuild: the whole day
        "segments_touched": update.segments,
        "clips_added": change.added,
        "clips_removed": change.removed,
        "shards_written": change.written,
        "shards_deleted": change.deleted,
        "catalog_prefix": MetadataValue.path(day_prefix(table, update.day)),
    }
    if not complete:
        metadata["top_reasons"] = MetadataValue.json(update.top_reasons())
    return metadata
