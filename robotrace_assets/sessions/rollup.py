"""The media-session rollup (pure): progress and proof state of a session's own segments."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any


def rollup(
    segment_ids: Sequence[str],
    segments: Mapping[str, dict[str, Any]],
    proofs: Mapping[str, dict[str, Any]],
) -> dict[str, Any]:
    """Counts over exactly the segments the session envelope lists; nothing else is looked at."""
    states = {
        seg: (
            proofs[seg]["integrity_status"]
            if seg in proofs
            else "awaiting_proof"
            if seg in segments
            else "not_seen"
        )
        for seg in segment_ids
    }
    counts = Counter(states.values())
    declared = sum(segments[s]["raw_size_bytes"] for s in segment_ids if s in segments)
    verified = sum(
        proofs[s]["byte_size"] or 0
        for s in segment_ids
        if s in proofs and proofs[s]["integrity_status"] == "verified"
    )
    total = len(segment_ids)
    return {
        "segments_declared": total,
        "segments_seen": sum(1 for s in segment_ids if s in segments),
        "segments_verified": counts.get("verified", 0),
        "segments_failed": sum(
            v for k, v in counts.items() if k not in ("verified", "awaiting_proof", "not_seen")
        ),
        "bytes_declared": declared,
        "bytes_verified": verified,
        "proof_states": dict(sorted(states.items())),
        "buyer_ready": total > 0 and counts.get("verified", 0) == total,
    }
