"""The media-session job, launched by the intake and rollup sensors."""

from dagster import AssetSelection, define_asset_job

from robotrace_assets.sessions.assets import MEDIA_SESSION

media_session_job = define_asset_job(
    "media_session_job",
    selection=AssetSelection.assets(MEDIA_SESSION),
    description="One media session: its envelope, provenance and the rollup of its segments' "
    "proof states.",
)
