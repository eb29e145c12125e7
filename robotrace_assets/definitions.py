"""The robotrace_assets code location, top to bottom.

    intake sensor ──> media_session_job: sessions/media_session     (per media session)
                 └──> segment_pipeline_job, one run per segment:
                      segments/segment -> segments/segment_parts
      raw/segment_video ──> proof/provider_proof [+ 7 blocking checks]
                            -> review_derivatives: derivatives/proxy, derivatives/thumbnails,
                               derivatives/contact_sheet, segments/media_probe (one ffmpeg pass)
                            -> clips/clip (signals, machine scores, provenance)
                            -> review/clip_review (reviewer decisions folded in)
    review/review_complete + review/regression_bank  (all approved / all rejected clips)
    delivery/buyer_delivery   (per buyer delivery, on demand: signed manifest, copies or links;
                               buyer_delivery_job, launched by `robotrace deliver`)
    derivative_refresh_sensor: hourly backfill of missing or outdated derivatives
    payouts/segment_payout    (per segment, after its review: payout state as ledger events;
                               payout_withhold_sensor withholds on a failed proof recheck)

Every asset is partitioned by the ids found in the bucket; records go to Parquet under
robotics/catalog/. The proof checks block downstream steps within a run, and
proof.guard.require_proven blocks them across runs (manual runs, backfills, automation).
"""

from dagster import Definitions, in_process_executor

from robotrace_assets.alerts.sensors import proof_check_alert_sensor, run_failure_alert_sensor
from robotrace_assets.clips.assets import clip
from robotrace_assets.delivery.assets import buyer_delivery
from robotrace_assets.delivery.jobs import buyer_delivery_job
from robotrace_assets.derivatives.assets import review_derivatives
from robotrace_assets.derivatives.sensors import derivative_refresh_sensor, review_derivatives_job
from robotrace_assets.intake.jobs import segment_pipeline_job
from robotrace_assets.intake.sensors import capture_intake_sensor, intake_batch_split_sensor
from robotrace_assets.lifecycle.sensors import partition_archival_sensor
from robotrace_assets.payouts.assets import segment_payout
from robotrace_assets.payouts.sensors import payout_withhold_sensor
from robotrace_assets.proof.assets import provider_proof
from robotrace_assets.proof.checks import provider_proof_checks, provider_proof_recheck_job
from robotrace_assets.resources import resources_from_env
from robotrace_assets.review.assets import clip_review
from robotrace_assets.review.jobs import clip_review_job, review_sets_job
from robotrace_assets.review.sensors import review_decision_sensor, review_sets_sensor
from robotrace_assets.review.sets import review_sets
from robotrace_assets.segments.assets import raw_segment_video, segment, segment_parts
from robotrace_assets.sessions.assets import media_session
from robotrace_assets.sessions.jobs import media_session_job
from robotrace_assets.sessions.sensors import media_session_rollup_sensor
from robotrace_assets.topology.priority import yield_cpu_in_run_worker
from robotrace_assets.ui_metadata import with_code_references

# Before any run of this code location starts work: a run worker of the local topology yields
# the CPU to the daemon and the code server (topology/priority.py).
yield_cpu_in_run_worker()

defs = Definitions(
    # Each asset links to its source in the UI (ROBOTRACE_GIT_URL: to the repository).
    assets=with_code_references(
        [
            raw_segment_video,
            media_session,
            segment,
            segment_parts,
            provider_proof,
            review_derivatives,
            clip,
            clip_review,
            review_sets,
            buyer_delivery,
            segment_payout,
        ]
    ),
    asset_checks=[provider_proof_checks],
    jobs=[
        segment_pipeline_job,
        media_session_job,
        clip_review_job,
        review_sets_job,
        provider_proof_recheck_job,
        review_derivatives_job,
        buyer_delivery_job,
    ],
    sensors=[
        capture_intake_sensor,
        intake_batch_split_sensor,
        media_session_rollup_sensor,
        derivative_refresh_sensor,
        proof_check_alert_sensor,
        run_failure_alert_sensor,
        review_decision_sensor,
        review_sets_sensor,
        partition_archival_sensor,
        payout_withhold_sensor,
    ],
    # Read from the environment once, when the code location loads; secrets stay EnvVars.
    resources=resources_from_env(),
    # A segment run is one chain of steps; a subprocess per step would only add start-up time.
    executor=in_process_executor,
)
