"""A segment's payout facts, read from the catalog: its record, its session's envelope (task
brief, device tier, consent), its provider proof and its reviewed clips. No Dagster import.

`proof_now` HEADs every proven object again: bytes replaced since the proof are a proof problem
here even before a recheck has marked the proof stale.
"""

from __future__ import annotations

from collections.abc import Sequence

from robotrace_assets import catalog
from robotrace_assets.payouts.states import ClipOutcome, SegmentFacts
from robotrace_assets.proof import rules
from robotrace_assets.proof.observe import current_objects
from robotrace_assets.records.proofs import ProofRecord, load_proof
from robotrace_assets.records.segments import load_segment
from robotrace_assets.records.sessions import load_session_envelope
from robotrace_assets.records.store import BucketStore


def proof_now(store: BucketStore, record: ProofRecord | None) -> tuple[str, ...]:
    """Why the recorded proof cannot be trusted now ((): it can)."""
    if record is None:
        return ()
    if record.status != rules.VERIFIED:
        return (f"proof is {record.status}", *(f"{c} failed" for c in record.failed_checks))
    pins = record.pins()
    finding = rules.check_unchanged(pins, current_objects(store.client(), store.bucket_name, pins))
    return () if finding.passed else (f"{rules.UNCHANGED}: {finding.description}",)


def clip_outcomes(store: BucketStore, segment_id: str) -> tuple[ClipOutcome, ...] | None:
    rows = store.read_record(catalog.CLIP_REVIEWS, segment_id)
    if rows is None:
        return None
    return tuple(
        ClipOutcome(
            clip_id=row["clip_id"],
            final_status=row["final_status"],
            duration_ms=int(row["duration_ms"]),
            quality=row.get("final_quality"),
        )
        for row in rows
    )


def segment_facts(
    store: BucketStore, segment_id: str, extra_problems: Sequence[str] = ()
) -> SegmentFacts:
    """The facts of one segment; RecordError when its record or session envelope is unusable.
    `extra_problems`: what the caller knows besides the record (e.g. failed check runs)."""
    segment = load_segment(store, segment_id)
    session = load_session_envelope(store, segment.media_session_id)
    proof = load_proof(store, segment_id)
    problems = (*proof_now(store, proof), *extra_problems) if proof else ()
    return SegmentFacts(
        segment_id=segment_id,
        media_session_id=segment.media_session_id,
        tenant_id=segment.tenant_id,
        operator_id=session.operator_id,
        task_brief_id=session.task_brief_id,
        device_tier=session.device_tier,
        proof_status=proof.status if proof else None,
        proof_problems=tuple(dict.fromkeys(problems)),
        proof_verified_at=proof.verified_at if proof else None,
        # The same consent the review asks for: a receipt on the media session's envelope.
        has_consent=bool(session.consent_receipt_id),
        clips=clip_outcomes(store, segment_id),
    )
