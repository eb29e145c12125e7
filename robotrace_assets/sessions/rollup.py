"""The media-session rollup (pure): progress, proof state, review outcomes, payout totals and
buyer readiness of a session's own segments."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from robotrace_assets.payouts.states import PayoutState

REFUSED = "claim_refused"


def refused_claims(
    media_session_id: str, tenant_id: str | None, segments: Mapping[str, dict[str, Any]]
) -> dict[str, str]:
    """Listed segments this session may not count: a segment belongs to exactly one session, the
    one its own envelope names, and to that session's tenant. Segment id -> why."""
    refused = {}
    for segment_id, row in segments.items():
        owner = row.get("media_session_id")
        if owner and owner != media_session_id:
            refused[segment_id] = f"segment belongs to media session {owner}"
        elif tenant_id and row.get("tenant_id") and row["tenant_id"] != tenant_id:
            refused[segment_id] = f"segment belongs to tenant {row['tenant_id']}"
    return refused


def rollup(
    segment_ids: Sequence[str],
    segments: Mapping[str, dict[str, Any]],
    proofs: Mapping[str, dict[str, Any]],
    media_session_id: str | None = None,
    tenant_id: str | None = None,
) -> dict[str, Any]:
    """Counts over exactly the segments the session envelope lists and owns; a listed segment
    that another session owns (or another tenant) is a refused claim, never counted."""
    refused = refused_claims(media_session_id, tenant_id, segments) if media_session_id else {}
    states = {
        seg: (
            REFUSED
            if seg in refused
            else proofs[seg]["integrity_status"]
            if seg in proofs
            else "awaiting_proof"
            if seg in segments
            else "not_seen"
        )
        for seg in segment_ids
    }
    counts = Counter(states.values())
    own = [s for s in segment_ids if s not in refused]
    declared = sum(segments[s]["raw_size_bytes"] for s in own if s in segments)
    verified = sum(
        proofs[s]["byte_size"] or 0
        for s in own
        if s in proofs and proofs[s]["integrity_status"] == "verified"
    )
    total = len(segment_ids)
    return {
        "segments_declared": total,
        "segments_seen": sum(1 for s in own if s in segments),
        "segments_verified": counts.get("verified", 0),
        "segments_failed": sum(
            v
            for k, v in counts.items()
            if k not in ("verified", "awaiting_proof", "not_seen", REFUSED)
        ),
        "bytes_declared": declared,
        "bytes_verified": verified,
        "proof_states": dict(sorted(states.items())),
        "refused_claims": dict(sorted(refused.items())),
        "buyer_ready": total > 0 and counts.get("verified", 0) == total,
    }


def review_outcomes(reviews: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, int]:
    """Clip counts by final review status over the session's reviewed segments."""
    counts = Counter(row["final_status"] for rows in reviews.values() for row in rows)
    return {status: counts.get(status, 0) for status in ("approved", "needs_review", "rejected")}


def payout_totals(states: Mapping[str, PayoutState]) -> dict[str, dict[str, Any]]:
    """Per payout state: how many segments, and their amounts per currency (exact text)."""
    totals: dict[str, dict[str, Any]] = {}
    for state in states.values():
        name = state.state or "not_evaluated"
        entry = totals.setdefault(name, {"segments": 0, "amount": {}})
        entry["segments"] += 1
        if state.currency:
            before = Decimal(entry["amount"].get(state.currency, "0"))
            entry["amount"][state.currency] = str(before + state.amount)
    return dict(sorted(totals.items()))


def buyer_readiness(
    segment_ids: Sequence[str],
    proof_states: Mapping[str, str],
    reviews: Mapping[str, Sequence[Mapping[str, Any]]],
) -> dict[str, Any]:
    """How much of the session a buyer could take now: proven segments whose review is final
    with at least one approved clip."""
    ready = [
        seg
        for seg in segment_ids
        if proof_states.get(seg) == "verified"
        and (rows := reviews.get(seg))
        and all(r["final_status"] in ("approved", "rejected") for r in rows)
        and any(r["final_status"] == "approved" for r in rows)
    ]
    return {
        "segments_deliverable": len(ready),
        "segments_review_final": sum(
            1
            for seg in segment_ids
            if (rows := reviews.get(seg))
            and all(r["final_status"] in ("approved", "rejected") for r in rows)
        ),
        "all_deliverable": bool(segment_ids) and len(ready) == len(segment_ids),
    }
