"""Payout operations on one segment: refresh from the records, approve, withhold. No Dagster.

Every operation reads the ledger, decides with the pure rules in states.py, and appends at most
one event (plus, for approve, the refresh it needs first). Automatic events name their actor
"robotrace/<asset or sensor>"; a person's events carry their --by and --reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from robotrace_assets.payouts import ledger
from robotrace_assets.payouts.facts import segment_facts
from robotrace_assets.payouts.ratecard import RateCard
from robotrace_assets.payouts.states import (
    Derived,
    Event,
    PayoutState,
    SegmentFacts,
    approve,
    derive,
    follow,
    withheld,
)
from robotrace_assets.records.store import BucketStore


@dataclass(frozen=True)
class Outcome:
    facts: SegmentFacts
    derived: Derived
    state: PayoutState
    event: Event | None  # None: nothing changed


def refresh(
    store: BucketStore,
    segment_id: str,
    card: RateCard,
    actor: str,
    extra_problems: Sequence[str] = (),
) -> Outcome:
    """Bring the ledger in line with what the records say now; an event only if it changed."""
    facts = segment_facts(store, segment_id, extra_problems)
    derived = derive(facts, card)
    current = ledger.current_state(store, segment_id)
    change = follow(current, derived, facts.proof_verified_at)
    if change is None:
        return Outcome(facts, derived, current, None)
    event, state = ledger.append(store, current, change, actor, facts.media_session_id)
    return Outcome(facts, derived, state, event)


def approve_segment(
    store: BucketStore, segment_id: str, card: RateCard, by: str, reason: str
) -> Outcome:
    """Refresh, then approve the payable amount; TransitionError when it is not payable."""
    refreshed = refresh(store, segment_id, card, "robotrace/payouts-approve")
    change = approve(refreshed.state, refreshed.derived, reason)
    event, state = ledger.append(
        store, refreshed.state, change, by, refreshed.facts.media_session_id
    )
    return Outcome(refreshed.facts, refreshed.derived, state, event)


def withhold_segment(
    store: BucketStore, segment_id: str, reason: str, actor: str
) -> tuple[PayoutState, Event | None]:
    """A failed proof check: withhold an unpaid payable or approved payout (else no change)."""
    current = ledger.current_state(store, segment_id)
    change = withheld(current, reason)
    if change is None:
        return current, None
    event, state = ledger.append(store, current, change, actor)
    return state, event
