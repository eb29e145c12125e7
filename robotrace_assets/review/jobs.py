"""The review jobs the review sensors launch."""

from dagster import AssetSelection, define_asset_job

from robotrace_assets.payouts.assets import SEGMENT_PAYOUT
from robotrace_assets.review.assets import CLIP_REVIEW, REGRESSION_BANK, REVIEW_COMPLETE

clip_review_job = define_asset_job(
    "clip_review_job",
    # The payout follows the review in the same run: automation conditions only run when the
    # (stopped by default) automation sensor is on.
    selection=AssetSelection.assets(CLIP_REVIEW, SEGMENT_PAYOUT),
    description="One segment's clips re-reviewed with every filed reviewer decision, and its "
    "payout state priced again.",
)

review_sets_job = define_asset_job(
    "review_sets_job",
    selection=AssetSelection.assets(REVIEW_COMPLETE, REGRESSION_BANK),
    description="One capture day of the review-complete set and the regression bank: the "
    "segments named in its run config (what review_sets_sensor sends), else the whole day.",
)
