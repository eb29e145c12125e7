"""The jobs the intake sensor launches, named so their runs say what they are in the UI."""

from dagster import AssetSelection, define_asset_job

from robotrace_assets.clips.assets import CLIPS
from robotrace_assets.derivatives.assets import DERIVATIVE_KEYS
from robotrace_assets.payouts.assets import SEGMENT_PAYOUT
from robotrace_assets.proof.assets import PROVIDER_PROOF
from robotrace_assets.review.assets import CLIP_REVIEW
from robotrace_assets.segments.assets import SEGMENT, SEGMENT_PARTS

# One run per segment (or per batch) proves it and, only if every blocking proof check passes,
# derives, clips and scores it and prices its payout: in the run, not by automation, so a burst
# of N segments is N/25 runs and not N more.
SEGMENT_RUN_ASSETS = [
    SEGMENT,
    SEGMENT_PARTS,
    PROVIDER_PROOF,
    *DERIVATIVE_KEYS,
    CLIPS,
    CLIP_REVIEW,
    SEGMENT_PAYOUT,
]

segment_pipeline_job = define_asset_job(
    "segment_pipeline_job",
    selection=AssetSelection.assets(*SEGMENT_RUN_ASSETS),
    description="One segment end to end: its envelope and part table, the provider proof and "
    "its blocking checks, then (only if they pass) derivatives, clips, their review and its "
    "payout state.",
)
