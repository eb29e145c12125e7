"""The per-segment payout asset: the payout state derived from proof, consent and review,
appended to the ledger as an event when it changed (actor "robotrace/segment_payout")."""

from collections.abc import Iterator

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AutomationCondition,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from robotrace_assets import catalog
from robotrace_assets.alerts.notify import Alert
from robotrace_assets.batching import SEGMENT_BACKFILL_POLICY, materialize_each
from robotrace_assets.failures import failing_on_record_errors
from robotrace_assets.partitions import segment_partitions
from robotrace_assets.payouts.ratecard import RateCard, RateCardError
from robotrace_assets.payouts.service import refresh
from robotrace_assets.payouts.settings import PayoutsResource
from robotrace_assets.payouts.states import WITHHELD
from robotrace_assets.proof.guard import check_reasons
from robotrace_assets.resources import AlertsResource, ObjectStoreResource
from robotrace_assets.review.assets import CLIP_REVIEW
from robotrace_assets.ui_metadata import OWNERS, catalog_table

SEGMENT_PAYOUT = AssetKey(["payouts", "segment_payout"])
ACTOR = "robotrace/segment_payout"


@asset(
    key=SEGMENT_PAYOUT,
    partitions_def=segment_partitions,
    backfill_policy=SEGMENT_BACKFILL_POLICY,
    deps=[CLIP_REVIEW],
    # Follows every re-review; not gated on the proof: a failed proof is a payout state here.
    automation_condition=AutomationCondition.eager(),
    group_name="payouts",
    kinds={"s3", "parquet"},
    owners=OWNERS,
    metadata=catalog_table(catalog.PAYOUT_EVENTS),
    description="A segment's payout state (not_payable, pending, payable, approved, paid, "
    "withheld) from its proof, consent and clip reviews priced with the rate card; every "
    "change is an append-only ledger event under robotics/catalog/payouts/events/.",
)
def segment_payout(
    context: AssetExecutionContext,
    object_store: ObjectStoreResource,
    alerts: AlertsResource,
    payouts: PayoutsResource,
) -> Iterator[MaterializeResult]:
    try:
        card = payouts.rate_card()
    except RateCardError as error:
        raise Failure(description=str(error), allow_retries=False) from None
    yield from materialize_each(
        context, lambda seg: payout_of(context, object_store, alerts, card, seg)
    )


def payout_of(
    context: AssetExecutionContext,
    object_store: ObjectStoreResource,
    alerts: AlertsResource,
    card: RateCard,
    segment_id: str,
) -> MaterializeResult:
    # Failed check runs from the event log; the proof record and its objects are read (once)
    # by the payout facts themselves.
    failed = [r for r in check_reasons(context.instance, segment_id) if r.endswith(": failed")]
    with failing_on_record_errors():
        outcome = refresh(object_store, segment_id, card, ACTOR, failed)
    state = outcome.state
    if outcome.event is not None and state.state == WITHHELD:
        alerts.send(
            Alert(
                "payout_withheld",
                f"segment {segment_id}: payout withheld",
                {"segment_id": segment_id, "reason": state.reason, "amount": str(state.amount)},
            )
        )
    return MaterializeResult(
        metadata={
            "state": state.state or "none",
            "reason": state.reason,
            "currency": state.currency or "",
            "amount": str(state.amount),
            "approved_minutes": str(state.approved_minutes),
            "changed": outcome.event is not None,
            "event_id": outcome.event.event_id if outcome.event else "",
            "rate_card": card.version,
            "ignored_events": MetadataValue.json(list(state.ignored)),
        }
    )
