"""The buyer-delivery job: what `robotrace deliver` runs, so its runs carry a name in the UI
(materializing the asset directly would show them as `__ephemeral_asset_job__`)."""

from dagster import AssetSelection, define_asset_job

from robotrace_assets.delivery.assets import BUYER_DELIVERY

BUYER_DELIVERY_JOB = "buyer_delivery_job"

buyer_delivery_job = define_asset_job(
    BUYER_DELIVERY_JOB,
    selection=AssetSelection.assets(BUYER_DELIVERY),
    description="One buyer delivery (partition buyer/delivery): eligible clips of proven "
    "segments, delivered by the buyer's method, verified, with a signed manifest. Launched by "
    "`robotrace deliver <buyer>` or from the UI after adding the delivery partition.",
)
