"""The closure rule, in one place: when a segment or a media session may leave the active set.

Pure functions over catalog rows (no Dagster, no I/O), so the sensor, the CLI's dry run, the
benchmark and the tests all apply exactly the same rule.

A segment is closed when
  - it is older than the archive age (age from the mint time in its id),
  - its proof is final: verified, or failed with a reason (stale or awaiting is not final),
  - if verified: its derivatives were made with the current profile,
  - if verified: its clip review is recorded and no clip `needs_review`.
A media session is closed when it is older than the archive age and none of its segments is
active (a segment still in the dynamic set keeps its session there too).
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from robotrace_assets.ids import CROCKFORD, id_time

CLOSED = "closed"
# Why a partition stays active; the sensor logs counts by these codes.
TOO_RECENT = "too_recent"
AWAITING_PROOF = "awaiting_proof"
PROOF_STALE = "proof_stale"
PROOF_NOT_FINAL = "proof_not_final"
DERIVATIVES_MISSING = "derivatives_missing"
DERIVATIVES_OUTDATED = "derivatives_outdated"
REVIEW_MISSING = "review_missing"
NEEDS_REVIEW = "needs_review"
SEGMENTS_ACTIVE = "segments_active"
SESSION_UNREADABLE = "session_unreadable"

VERIFIED = "verified"
STALE = "stale"
# Failed verdicts (proof/rules.py); with their failed checks recorded they are final.
FAILED_STATES = frozenset({"mismatch", "unreadable", "missing", "unsafe_key"})


@dataclass(frozen=True)
class Closure:
    """The policy's answer for one partition: closed, or open with the first reason found."""

    entity_id: str
    reason: str  # CLOSED or one of the open codes above
    detail: str
    # From the proof record, for the archive record (reopening a segment reopens its session).
    media_session_id: str | None = None
    tenant_id: str | None = None

    @property
    def closed(self) -> bool:
        return self.reason == CLOSED


@dataclass(frozen=True)
class SegmentFacts:
    """The catalog records the rule reads; None where the record does not exist."""

    proof: Mapping[str, Any] | None
    derivatives: Sequence[Mapping[str, Any]] | None
    reviews: Sequence[Mapping[str, Any]] | None


def cutoff(now: datetime, archive_after_days: float) -> datetime:
    """Partitions minted at or before this instant are old enough to archive."""
    if archive_after_days < 0:
        raise ValueError(f"archive_after_days must be >= 0, got {archive_after_days}")
    return now - timedelta(days=archive_after_days)


def old_enough(entity_id: str, before: datetime) -> bool:
    """Minted at or before `before` (a string comparison of the ULID's time part)."""
    return entity_id.rsplit("_", 1)[-1][:10] <= mint_prefix(before)


@functools.lru_cache(maxsize=64)  # a sweep asks for the same cutoff thousands of times
def mint_prefix(before: datetime) -> str:
    """The ULID time part (10 characters) of the last millisecond at or before `before`: an id
    was minted at or before `before` exactly when its time part sorts <= this (Crockford base32
    sorts like the numbers it spells), so a scan compares strings instead of decoding ids."""
    millis = (before - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    chars = []
    for _ in range(10):
        chars.append(CROCKFORD[millis & 31])
        millis >>= 5
    return "".join(reversed(chars))


def _age_reason(entity_id: str, before: datetime) -> Closure | None:
    if old_enough(entity_id, before):
        return None
    minted = id_time(entity_id).isoformat()
    return Closure(entity_id, TOO_RECENT, f"minted {minted}, after the cutoff {before}")


def proof_reason(entity_id: str, proof: Mapping[str, Any] | None) -> Closure | None:
    """None when the proof is final; else why it is not."""
    if proof is None:
        return Closure(entity_id, AWAITING_PROOF, "no proof record yet")
    status = proof.get("integrity_status")
    if status == VERIFIED:
        return None
    if status == STALE:
        reason = proof.get("stale_reason") or "a proven object changed"
        return Closure(entity_id, PROOF_STALE, f"proof is stale: {reason}")
    if status in FAILED_STATES and list(proof.get("failed_checks") or []):
        return None
    return Closure(entity_id, PROOF_NOT_FINAL, f"proof status {status!r} without a final reason")


def derivatives_reason(
    entity_id: str, rows: Sequence[Mapping[str, Any]] | None, fingerprint: str
) -> Closure | None:
    if not rows:
        return Closure(entity_id, DERIVATIVES_MISSING, "no derivatives recorded")
    made_with = sorted({str(r.get("profile_fingerprint")) for r in rows})
    if made_with != [fingerprint]:
        return Closure(
            entity_id,
            DERIVATIVES_OUTDATED,
            f"derivatives made with profile {', '.join(made_with)}, current is {fingerprint}",
        )
    return None


def review_reason(entity_id: str, rows: Sequence[Mapping[str, Any]] | None) -> Closure | None:
    if rows is None:
        return Closure(entity_id, REVIEW_MISSING, "no clip review recorded")
    waiting = [r.get("clip_id") for r in rows if r.get("final_status") == NEEDS_REVIEW]
    if waiting:
        return Closure(entity_id, NEEDS_REVIEW, f"{len(waiting)} clip(s) need review")
    return None


def segment_closure(
    segment_id: str, facts: SegmentFacts, before: datetime, fingerprint: str
) -> Closure:
    """Closed, or the first reason the segment stays active (cheapest test first)."""
    found = _age_reason(segment_id, before) or proof_reason(segment_id, facts.proof)
    if found:
        return found
    assert facts.proof is not None  # proof_reason passed: a final proof exists
    status = facts.proof.get("integrity_status")
    if status == VERIFIED:
        found = derivatives_reason(segment_id, facts.derivatives, fingerprint) or review_reason(
            segment_id, facts.reviews
        )
        if found:
            return found
        clips = len(facts.reviews or ())
        detail = f"verified, derivatives current, {clips} clip(s) reviewed"
    else:
        detail = f"proof {status} ({', '.join(facts.proof.get('failed_checks') or [])}): final"
    return Closure(
        segment_id,
        CLOSED,
        detail,
        media_session_id=facts.proof.get("media_session_id"),
        tenant_id=facts.proof.get("tenant_id"),
    )


def session_closure(
    media_session_id: str,
    segment_ids: Sequence[str] | None,
    active_segments: Collection[str],
    before: datetime,
) -> Closure:
    """Closed when old enough and none of its segments is active. `segment_ids` None: the
    session's envelope could not be read, so its segments are unknown and it stays."""
    found = _age_reason(media_session_id, before)
    if found:
        return found
    if segment_ids is None:
        return Closure(media_session_id, SESSION_UNREADABLE, "session envelope unreadable")
    active = [s for s in segment_ids if s in active_segments]
    if active:
        return Closure(
            media_session_id, SEGMENTS_ACTIVE, f"{len(active)} segment(s) active, e.g. {active[0]}"
        )
    return Closure(media_session_id, CLOSED, f"all {len(segment_ids)} segment(s) archived")


def count_reasons(closures: Sequence[Closure]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for closure in closures:
        counts[closure.reason] = counts.get(closure.reason, 0) + 1
    return dict(sorted(counts.items()))
