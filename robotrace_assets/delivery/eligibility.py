"""What a buyer may receive: the delivery rules, in one place (no Dagster, no I/O).

A clip is eligible for a buyer when ALL of these hold:
  1. its review status is approved (the review-complete set);
  2. its license's allowed uses cover every use the buyer buys for;
  3. it has a consent receipt;
  4. the provider proof of its source segment passed, and so did its derivatives' proofs;
  5. its tenant is the buyer's own or one the buyer is licensed for.
Proof failures (rule 4) follow the buyer's policy: strict blocks the whole delivery when any
clip in scope (passing rules 1-3 and 5) has one; lenient leaves those clips out and lists them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from robotrace_assets.delivery.buyers import Buyer

APPROVED = "approved"


@dataclass(frozen=True)
class ProofState:
    """The proof of one segment, as the delivery sees it."""

    segment_passed: bool
    derivatives_passed: bool
    reasons: tuple[str, ...] = ()
    sha256_declared: bool = True  # False: the client declared no hash; the proof observed it

    @property
    def passed(self) -> bool:
        return self.segment_passed and self.derivatives_passed


@dataclass(frozen=True)
class Exclusion:
    clip_id: str
    segment_id: str
    reasons: tuple[str, ...]


@dataclass
class Selection:
    eligible: list[dict[str, Any]] = field(default_factory=list)
    excluded: list[Exclusion] = field(default_factory=list)
    proof_blocked: list[Exclusion] = field(default_factory=list)  # in scope, proof failed
    blocked: bool = False  # strict policy and proof_blocked is not empty

    def summary(self) -> dict[str, int]:
        return {
            "eligible": len(self.eligible),
            "excluded": len(self.excluded),
            "proof_blocked": len(self.proof_blocked),
        }


def business_reasons(clip: Mapping[str, Any], buyer: Buyer) -> list[str]:
    """Rules 1, 2, 3 and 5: reasons this clip is out of the buyer's scope."""
    reasons = []
    if clip.get("final_status") != APPROVED:
        reasons.append(f"review status is {clip.get('final_status')}, not approved")
    allowed = set(clip.get("allowed_use") or [])
    missing = sorted(buyer.uses - allowed)
    if missing:
        reasons.append(f"license {clip.get('license_scope_id')} does not allow {missing}")
    if not clip.get("license_scope_id"):
        reasons.append("no license scope")
    if not clip.get("consent_receipt_id"):
        reasons.append("no consent receipt")
    if not buyer.may_receive_tenant(clip.get("tenant_id") or ""):
        reasons.append(f"tenant {clip.get('tenant_id')} is not licensed to {buyer.buyer_id}")
    return reasons


def select(
    clips: Iterable[Mapping[str, Any]],
    buyer: Buyer,
    proofs: Mapping[str, ProofState],
) -> Selection:
    selection = Selection()
    for clip in clips:
        clip_id, segment_id = clip["clip_id"], clip["segment_id"]
        reasons = business_reasons(clip, buyer)
        if reasons:
            selection.excluded.append(Exclusion(clip_id, segment_id, tuple(reasons)))
            continue
        proof = proofs.get(segment_id, ProofState(False, False, ("no proof state",)))
        if buyer.require_declared_sha256 and not proof.sha256_declared:
            why = "the buyer requires a client-declared SHA-256; this one was only observed"
            selection.excluded.append(Exclusion(clip_id, segment_id, (why,)))
            continue
        if not proof.passed:
            selection.proof_blocked.append(Exclusion(clip_id, segment_id, proof.reasons))
            continue
        selection.eligible.append(dict(clip))
    selection.blocked = buyer.proof_policy == "strict" and bool(selection.proof_blocked)
    return selection
