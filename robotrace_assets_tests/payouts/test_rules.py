"""Payout rules without a store: the rate card, derived states, transitions and the fold."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from robotrace_assets.payouts.ratecard import RateCardError, load_rate_card, parse_rate_card
from robotrace_assets.payouts.states import (
    APPROVED,
    NOT_PAYABLE,
    PAID,
    PAYABLE,
    PENDING,
    WITHHELD,
    ClipOutcome,
    Event,
    PayoutState,
    SegmentFacts,
    TransitionError,
    approve,
    derive,
    fold,
    follow,
)

CARD = parse_rate_card(
    b"""
version: test-1
currency: USD
rates:
  - {task_brief_id: "*", device_tier: "*", rate_per_approved_minute: "1.00"}
  - {task_brief_id: "*", device_tier: 2, rate_per_approved_minute: "0.10"}
  - task_brief_id: tb_X
    device_tier: 2
    currency: EUR
    rate_per_approved_minute: "3"
    quality_bonus: {min_quality: 0.9, rate_per_approved_minute: "0.50"}
"""
)


def facts(**changes) -> SegmentFacts:
    base = SegmentFacts(
        segment_id="seg_1",
        media_session_id="msess_1",
        tenant_id="ten_1",
        operator_id="op_1",
        task_brief_id="tb_X",
        device_tier=2,
        proof_status="verified",
        proof_problems=(),
        proof_verified_at="2026-06-04T18:00:00+00:00",
        has_consent=True,
        clips=(
            ClipOutcome("clip_a", "approved", 30_000, 0.95),
            ClipOutcome("clip_b", "approved", 10_000, 0.5),
            ClipOutcome("clip_c", "rejected", 20_000, 0.2),
        ),
    )
    return replace(base, **changes)


def test_rate_card_picks_the_most_specific_entry_and_prices_exactly() -> None:
    derived = derive(facts(), CARD)
    assert derived.state == PAYABLE and derived.currency == "EUR"
    # 40 s approved at 3/min = 2.00, plus 30 s above the quality floor at 0.50/min = 0.25
    assert derived.amount == Decimal("2.25") and isinstance(derived.amount, Decimal)
    assert derive(facts(task_brief_id="tb_other"), CARD).amount == Decimal("0.07")  # tier 2
    assert derive(facts(device_tier=1), CARD).amount == Decimal("0.67")  # the catch-all
    assert load_rate_card().rate_for("tb_any", 4) is not None  # the shipped default loads


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"rates: [", "not YAML or JSON"),
        (b"[1, 2]", "must be a mapping"),
        (b"version: 1\nrates: []", "non-empty list"),
        (b"version: 1\nrates: [{rate_per_approved_minute: 1.1, currency: USD}]", "string"),
        (b"version: 1\nrates: [{rate_per_approved_minute: '-1', currency: USD}]", "between"),
        (b"version: 1\nrates: [{rate_per_approved_minute: 'abc', currency: USD}]", "not a number"),
        (b"version: 1\nrates: [{rate_per_approved_minute: '1', currency: usd}]", "3-letter"),
        (b"version: 1\nrates: [{rate_per_approved_minute: '1', currency: USD, x: 1}]", "unknown"),
        (
            b"version: 1\ncurrency: USD\nrates: [{rate_per_approved_minute: '1'},"
            b" {rate_per_approved_minute: '2'}]",
            "two entries",
        ),
        (
            b"version: 1\ncurrency: USD\nrates: [{rate_per_approved_minute: '1',"
            b" quality_bonus: {min_quality: 2, rate_per_approved_minute: '1'}}]",
            "min_quality",
        ),
    ],
)
def test_bad_rate_card_is_refused_with_a_clear_error(text: bytes, message: str) -> None:
    with pytest.raises(RateCardError, match=message) as caught:
        parse_rate_card(text, "rate card x.yaml")
    assert "rate card x.yaml" in str(caught.value)


def test_missing_rate_card_file_names_the_path(tmp_path) -> None:
    with pytest.raises(RateCardError, match="cannot read"):
        load_rate_card(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("changes", "state", "reason"),
    [
        ({"proof_status": None}, PENDING, "proof not final"),
        ({"proof_status": "mismatch"}, NOT_PAYABLE, "failed proof"),
        ({"proof_problems": ("x failed",)}, NOT_PAYABLE, "failed proof: x failed"),
        ({"has_consent": False}, NOT_PAYABLE, "no consent"),
        ({"clips": None}, PENDING, "review not final"),
        ({"clips": (ClipOutcome("c", "needs_review", 1000),)}, PENDING, "1 clips need review"),
        ({"clips": (ClipOutcome("c", "rejected", 1000),)}, NOT_PAYABLE, "every clip rejected"),
    ],
)
def test_not_payable_and_pending_carry_their_reason(changes, state: str, reason: str) -> None:
    derived = derive(facts(**changes), CARD)
    assert derived.state == state and reason in derived.reason
    assert derived.amount == 0


def event(n: int, state: str, amount: str = "2.25", batch: str | None = None) -> Event:
    return Event(
        f"pev_{n}",
        "seg_1",
        state,
        "why",
        "who",
        f"2026-06-04T18:00:0{n}+00:00",
        "EUR",
        Decimal("0.6667"),
        Decimal(amount),
        batch,
    )


def test_fold_ignores_forbidden_events_so_nothing_is_paid_twice() -> None:
    paid_without_approval = fold("seg_1", [event(1, PAYABLE), event(2, PAID, batch="pay_1")])
    assert paid_without_approval.state == PAYABLE and paid_without_approval.ignored == ("pev_2",)
    twice = fold(
        "seg_1",
        [
            event(1, PAYABLE),
            event(2, APPROVED),
            event(3, PAID, batch="pay_1"),
            event(4, PAID, batch="pay_2"),
            event(5, WITHHELD),
        ],
    )
    assert twice.state == PAID and twice.batch_id == "pay_1"
    assert twice.ignored == ("pev_4", "pev_5")
    no_batch = fold("seg_1", [event(1, PAYABLE), event(2, APPROVED), event(3, PAID)])
    assert no_batch.state == APPROVED  # a paid event must name its batch


def test_transitions_after_approval() -> None:
    approved = fold("seg_1", [event(1, PAYABLE), event(2, APPROVED)])
    same = derive(facts(), CARD)
    assert follow(approved, same, None) is None  # nothing changed
    failed = derive(facts(proof_problems=("object_unchanged_since_proof failed",)), CARD)
    change = follow(approved, failed, None)
    assert change is not None and change.state == WITHHELD
    more = derive(facts(clips=(ClipOutcome("a", "approved", 60_000, 0.1),)), CARD)
    voided = follow(approved, more, None)
    assert voided is not None and voided.state == PAYABLE and "voided" in voided.reason
    withheld = fold("seg_1", [event(1, PAYABLE), event(2, APPROVED), event(3, WITHHELD)])
    assert follow(withheld, same, "2026-06-04T18:00:01+00:00") is None  # the old proof
    released = follow(withheld, same, "2026-06-05T00:00:00+00:00")  # proven again
    assert released is not None and released.state == PAYABLE
    with pytest.raises(TransitionError, match="not payable"):
        approve(withheld, same, "ok")
    with pytest.raises(TransitionError, match="records changed"):
        approve(fold("seg_1", [event(1, PAYABLE, "9.99")]), same, "ok")
    assert approve(fold("seg_1", [event(1, PAYABLE)]), same, "ok").state == APPROVED
    assert follow(PayoutState("seg_1", state=PAID), failed, None) is None  # paid is final
