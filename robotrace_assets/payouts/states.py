"""Payout states (pure): what a segment's proof, consent and clip reviews make it worth, and
which state changes are legal.

    not_payable  failed proof, no consent, every clip rejected, no approved minutes (with reason)
    pending      proof or review not final (or no rate for its task brief and tier)
    payable      approved minutes x rate (+ quality bonus), computed from the records
    approved     a person approved the payable amount (`robotrace payouts approve`)
    paid         in a signed payout batch (`robotrace payouts export`); terminal
    withheld     was payable or approved, then its proof failed (a recheck): never paid until
                 it is proven again, and then it must be approved again

The first three are derived from records; approved, paid and withheld are events someone or
something caused. A ledger event that breaks these rules is ignored when the ledger is folded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal

from robotrace_assets.payouts.ratecard import RateCard

NOT_PAYABLE, PENDING, PAYABLE = "not_payable", "pending", "payable"
APPROVED, PAID, WITHHELD = "approved", "paid", "withheld"
STATES = (NOT_PAYABLE, PENDING, PAYABLE, APPROVED, PAID, WITHHELD)
DERIVED = (NOT_PAYABLE, PENDING, PAYABLE)
CENT = Decimal("0.01")
MS_PER_MINUTE = Decimal(60_000)

# Legal next states. Derived states may follow one another as records change; approval needs a
# payable amount; only an approved amount is paid; paid is final.
TRANSITIONS: dict[str | None, frozenset[str]] = {
    None: frozenset(DERIVED),
    PENDING: frozenset({NOT_PAYABLE, PAYABLE, WITHHELD}),
    NOT_PAYABLE: frozenset({PENDING, PAYABLE}),
    PAYABLE: frozenset({NOT_PAYABLE, PENDING, PAYABLE, APPROVED, WITHHELD}),
    APPROVED: frozenset({NOT_PAYABLE, PENDING, PAYABLE, PAID, WITHHELD}),
    WITHHELD: frozenset({NOT_PAYABLE, PENDING, PAYABLE}),
    PAID: frozenset(),
}

# Causes of a derived state: a proof cause on an unpaid payable/approved segment withholds it.
PROOF, CONSENT, REVIEW, RATE = "proof", "consent", "review", "rate"
VERIFIED = "verified"  # proof/rules.VERIFIED, repeated so this module stays import-light


class TransitionError(ValueError):
    """A state change the rules forbid (e.g. paying what was never approved)."""


@dataclass(frozen=True)
class ClipOutcome:
    clip_id: str
    final_status: str  # review/decisions: approved | needs_review | rejected
    duration_ms: int
    quality: float | None = None


@dataclass(frozen=True)
class SegmentFacts:
    """What the records say about one segment, as the payout rules need it."""

    segment_id: str
    media_session_id: str
    tenant_id: str
    operator_id: str
    task_brief_id: str
    device_tier: int
    proof_status: str | None  # None: not proven yet
    proof_problems: tuple[str, ...]  # why the proof cannot be trusted now (failed checks ...)
    proof_verified_at: str | None
    has_consent: bool
    clips: tuple[ClipOutcome, ...] | None  # None: not reviewed yet


@dataclass(frozen=True)
class Derived:
    state: str
    reason: str
    cause: str | None = None
    currency: str | None = None
    approved_minutes: Decimal = Decimal(0)
    amount: Decimal = Decimal(0)
    rate_key: str | None = None


def _minutes(clips: Sequence[ClipOutcome]) -> Decimal:
    return sum((Decimal(c.duration_ms) for c in clips), Decimal(0)) / MS_PER_MINUTE


def _priced(facts: SegmentFacts, card: RateCard, approved: Sequence[ClipOutcome]) -> Derived:
    rate = card.rate_for(facts.task_brief_id, facts.device_tier)
    if rate is None:
        why = f"no rate for task brief {facts.task_brief_id} on tier {facts.device_tier}"
        return Derived(PENDING, why, RATE)
    minutes = _minutes(approved)
    amount = minutes * rate.rate_per_approved_minute
    if rate.bonus is not None:
        floor = rate.bonus.min_quality
        good = [c for c in approved if c.quality is not None and c.quality >= floor]
        amount += _minutes(good) * rate.bonus.rate_per_approved_minute
    amount = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    reason = f"{len(approved)} approved clips, {minutes.quantize(CENT)} min at rate {rate.key}"
    return Derived(
        PAYABLE, reason, None, rate.currency, minutes.quantize(Decimal("0.0001")), amount, rate.key
    )


def derive(facts: SegmentFacts, card: RateCard) -> Derived:
    """The state the records support now, with the reason a person can act on."""
    if facts.proof_status is None:
        return Derived(PENDING, "proof not final: no provider proof yet", PROOF)
    if facts.proof_status != VERIFIED or facts.proof_problems:
        detail = "; ".join(facts.proof_problems) or facts.proof_status
        return Derived(NOT_PAYABLE, f"failed proof: {detail}", PROOF)
    if not facts.has_consent:
        return Derived(NOT_PAYABLE, "no consent receipt for the media session", CONSENT)
    if not facts.clips:
        return Derived(PENDING, "review not final: no reviewed clips yet", REVIEW)
    open_ = [c for c in facts.clips if c.final_status not in ("approved", "rejected")]
    if open_:
        return Derived(PENDING, f"review not final: {len(open_)} clips need review", REVIEW)
    approved = [c for c in facts.clips if c.final_status == "approved"]
    if not approved:
        return Derived(NOT_PAYABLE, f"every clip rejected ({len(facts.clips)})", REVIEW)
    return _priced(facts, card, approved)


@dataclass(frozen=True)
class PayoutState:
    """A segment's payout state as its ledger folds to."""

    segment_id: str
    state: str | None = None  # None: no event yet
    reason: str = ""
    at: str | None = None
    currency: str | None = None
    approved_minutes: Decimal = Decimal(0)
    amount: Decimal = Decimal(0)
    batch_id: str | None = None
    actor: str | None = None  # who caused the latest applied event
    events: int = 0
    ignored: tuple[str, ...] = ()  # event ids the rules refused, kept for audit


@dataclass(frozen=True)
class Change:
    """One state change to append: the new state and why."""

    state: str
    reason: str
    derived: Derived | None = None
    batch_id: str | None = None


def check_transition(current: str | None, new: str) -> None:
    if new not in STATES:
        raise TransitionError(f"unknown payout state {new!r}")
    if new not in TRANSITIONS[current]:
        raise TransitionError(f"a payout cannot go from {current or 'nothing'} to {new}")


def follow(current: PayoutState, derived: Derived, proof_verified_at: str | None) -> Change | None:
    """The change that brings the ledger in line with what the records now say, if any."""
    state = current.state
    if state == PAID:
        return None  # final: a later failure is alerted, never un-paid
    if state == WITHHELD:
        # Only a new proof (after the withholding) releases it; it then needs approval again.
        if proof_verified_at is None or current.at is None or proof_verified_at <= current.at:
            return None
        return Change(derived.state, f"proven again: {derived.reason}", derived)
    if state in (PAYABLE, APPROVED) and derived.state != PAYABLE and derived.cause == PROOF:
        return Change(WITHHELD, f"withheld: {derived.reason}", derived)
    if state == APPROVED and derived.state == PAYABLE:
        if (derived.amount, derived.currency) == (current.amount, current.currency):
            return None
        why = f"approval voided: amount changed from {current.amount} to {derived.amount}"
        return Change(PAYABLE, why, derived)
    if state == derived.state and (
        state != PAYABLE or (derived.amount, derived.currency) == (current.amount, current.currency)
    ):
        return None  # same state (a new reason alone is not a change of state)
    return Change(derived.state, derived.reason, derived)


def approve(current: PayoutState, derived: Derived, reason: str) -> Change:
    """A person approves the amount the ledger and the records both say is payable now."""
    if current.state != PAYABLE:
        state = current.state or "not evaluated"
        raise TransitionError(
            f"segment {current.segment_id} is {state}, not payable: {current.reason or '-'}"
        )
    if derived.state != PAYABLE or (derived.amount, derived.currency) != (
        current.amount,
        current.currency,
    ):
        raise TransitionError(
            f"segment {current.segment_id}: records changed since it became payable "
            f"({derived.state}: {derived.reason})"
        )
    return Change(APPROVED, reason, derived)


def withheld(current: PayoutState, reason: str) -> Change | None:
    """A failed recheck of the proof: an unpaid payable or approved payout is withheld."""
    if current.state in (PAYABLE, APPROVED):
        return Change(WITHHELD, f"withheld: {reason}")
    return None


@dataclass(frozen=True)
class Event:
    """One ledger event: the state after it, with the money of that state."""

    event_id: str
    segment_id: str
    state: str
    reason: str
    actor: str
    at: str
    currency: str | None
    approved_minutes: Decimal
    amount: Decimal
    batch_id: str | None = None


def event_for(current: PayoutState, change: Change, event_id: str, actor: str, at: str) -> Event:
    """The event recording `change`: a derived amount when the change brings one, else the
    amount the segment already carries (approved, paid and withheld keep what was approved)."""
    money = change.derived if change.derived is not None else None
    keep = money is None or (change.state == WITHHELD and current.state in (PAYABLE, APPROVED))
    return Event(
        event_id=event_id,
        segment_id=current.segment_id,
        state=change.state,
        reason=change.reason,
        actor=actor,
        at=at,
        currency=current.currency if keep or money is None else money.currency,
        approved_minutes=(
            current.approved_minutes if keep or money is None else money.approved_minutes
        ),
        amount=current.amount if keep or money is None else money.amount,
        batch_id=change.batch_id,
    )


def fold(segment_id: str, events: Sequence[Event]) -> PayoutState:
    """The state a segment's events (in ledger order) lead to; forbidden ones are ignored."""
    current = PayoutState(segment_id)
    for event in events:
        try:
            check_transition(current.state, event.state)
        except TransitionError:
            current = replace(current, ignored=(*current.ignored, event.event_id))
            continue
        if event.state == PAID and not event.batch_id:
            current = replace(current, ignored=(*current.ignored, event.event_id))
            continue
        current = replace(
            current,
            state=event.state,
            reason=event.reason,
            at=event.at,
            currency=event.currency,
            approved_minutes=event.approved_minutes,
            amount=event.amount,
            batch_id=event.batch_id if event.state == PAID else None,
            actor=event.actor,
            events=current.events + 1,
        )
    return current
