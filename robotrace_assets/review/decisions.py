"""Reviewer decisions (pure): validation and folding onto machine scores.

A decision approves or rejects a clip, or overrides one machine score, always with a rationale,
a reviewer id and a time. Decisions are append-only records; the machine score is never
overwritten: the reviewed view keeps machine and reviewer values side by side.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from robotrace_assets.envelopes import EnvelopeError, parse_time, validate

APPROVED, NEEDS_REVIEW, REJECTED = "approved", "needs_review", "rejected"


class DecisionError(ValueError):
    """A decision that must not be recorded (e.g. an override without a rationale)."""


@dataclass(frozen=True)
class Decision:
    decision_id: str
    clip_id: str
    segment_id: str | None
    reviewer_id: str
    action: str
    score: str | None
    value: float | None
    rationale: str
    decided_at: datetime
    source_sha256: str | None = None  # the bytes judged; None only for a decision being built

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "schema_version": "1",
            "decision_id": self.decision_id,
            "clip_id": self.clip_id,
            "reviewer_id": self.reviewer_id,
            "action": self.action,
            "rationale": self.rationale,
            "decided_at": self.decided_at.astimezone(UTC).isoformat(),
        }
        if self.segment_id:
            doc["segment_id"] = self.segment_id
        if self.source_sha256:
            doc["source_sha256"] = self.source_sha256
        if self.action == "override_score":
            doc.update(score=self.score, value=self.value)
        return doc


def parse_decision(raw: bytes | Mapping[str, Any]) -> Decision:
    try:
        doc = json.loads(raw) if isinstance(raw, bytes | str) else dict(raw)
        validate("review_decision", doc)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DecisionError(f"decision is not valid JSON: {error}") from None
    except EnvelopeError as error:
        raise DecisionError(str(error).replace("review_decision envelope", "decision")) from None
    if not doc["rationale"].strip():
        raise DecisionError("a decision needs a rationale")
    return Decision(
        decision_id=doc["decision_id"],
        clip_id=doc["clip_id"],
        segment_id=doc.get("segment_id"),
        reviewer_id=doc["reviewer_id"],
        action=doc["action"],
        score=doc.get("score"),
        value=doc.get("value"),
        rationale=doc["rationale"].strip(),
        decided_at=parse_time(doc["decided_at"], "decided_at"),
        source_sha256=doc["source_sha256"],
    )


@dataclass(frozen=True)
class ReviewedClip:
    clip_id: str
    machine_status: str
    machine_scores: dict[str, float]
    reviewer_scores: dict[str, float]
    final_scores: dict[str, float]
    final_status: str
    decided_by: str | None
    rationale: str | None
    decided_at: str | None
    reasons: tuple[str, ...]
    history: tuple[dict[str, Any], ...] = field(default=())


def fold(
    clip_id: str,
    machine_status: str,
    machine_scores: Mapping[str, float],
    machine_reasons: Iterable[str],
    decisions: Iterable[Decision],
    *,
    has_consent: bool,
    has_license: bool,
    source_sha256: str | None = None,
) -> ReviewedClip:
    """The reviewed state of one clip: the latest approve/reject wins, overrides apply per
    score; a clip without a consent receipt or a license scope is never approved. With
    `source_sha256`, only decisions made on those bytes count: a decision on content that was
    since replaced under the same clip id never carries over."""
    mine = [d for d in decisions if d.clip_id == clip_id]
    other_bytes = [d for d in mine if source_sha256 and d.source_sha256 != source_sha256]
    ordered = sorted((d for d in mine if d not in other_bytes), key=lambda d: d.decided_at)
    reviewer_scores: dict[str, float] = {}
    verdict: Decision | None = None
    for decision in ordered:
        if decision.action == "override_score" and decision.score and decision.value is not None:
            reviewer_scores[decision.score] = float(decision.value)
        elif decision.action in ("approve", "reject"):
            verdict = decision
    reasons = list(machine_reasons)
    if other_bytes:
        reasons.append(f"{len(other_bytes)} decisions judged other bytes and were not applied")
    status = machine_status
    if verdict is not None:
        status = APPROVED if verdict.action == "approve" else REJECTED
        reasons.append(f"reviewer {verdict.reviewer_id}: {verdict.action}: {verdict.rationale}")
    blockers = [
        w for w, ok in (("consent receipt", has_consent), ("license scope", has_license)) if not ok
    ]
    if status == APPROVED and blockers:
        status = NEEDS_REVIEW
        reasons.append(f"cannot be approved without a {' and a '.join(blockers)}")
    last = ordered[-1] if ordered else None
    return ReviewedClip(
        clip_id=clip_id,
        machine_status=machine_status,
        machine_scores=dict(machine_scores),
        reviewer_scores=reviewer_scores,
        final_scores={**machine_scores, **reviewer_scores},
        final_status=status,
        decided_by=verdict.reviewer_id if verdict else None,
        rationale=verdict.rationale if verdict else None,
        decided_at=verdict.decided_at.isoformat() if verdict else None,
        reasons=tuple(reasons),
        history=tuple(d.to_json() for d in ordered) if last else (),
    )
