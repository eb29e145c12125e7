"""Partitions, in one place: dynamic, keyed by the ids the bucket sensor finds in envelopes.

Two separate one-dimensional definitions rather than a MultiPartitionsDefinition: a multi
partition is the full cross product, which would invent segments for sessions that never had
them. Session-level assets aggregate their own segments by reading the catalog.
"""

import warnings

from dagster import DailyPartitionsDefinition, DynamicPartitionsDefinition, PreviewWarning

# Partitioned asset checks are "preview" in Dagster 1.13, and they are exactly what per-segment
# proof needs (an unpartitioned check would load every partition and report one global status).
warnings.filterwarnings(
    "ignore", message=".*partitions_def on an AssetCheckSpec.*", category=PreviewWarning
)

media_session_partitions = DynamicPartitionsDefinition(name="media_session")
segment_partitions = DynamicPartitionsDefinition(name="segment")

# One partition per buyer delivery, "<buyer_id>--<delivery_id>", added on demand (UI or CLI).
delivery_partitions = DynamicPartitionsDefinition(name="delivery")

# The review sets (review-complete set, regression bank) by capture day: the UTC mint day of a
# segment's ULID (ids.id_day). end_offset=1 adds today's partition, still filling. Segments minted
# before the start date land in the first day; see review/shards.py for ids minted in the future.
REVIEW_DAYS_START = "2024-01-01"
review_day_partitions = DailyPartitionsDefinition(
    start_date=REVIEW_DAYS_START, end_offset=1, timezone="UTC"
)
