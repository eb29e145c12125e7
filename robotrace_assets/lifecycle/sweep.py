"""One archival sweep: which active partitions to evaluate this tick, and what the policy says.

Bounded work per tick: the sweep reads the active keys once (`get_dynamic_partitions`, one
query, O(active): the set archival keeps bounded), keeps those minted before the cutoff, and
evaluates at most `limit` of them in key order, which is mint order (a ULID's time comes first
and Crockford base32 sorts like its numbers). The cursor is the last key evaluated: the next
tick continues after it, and a tick that reaches the end starts a new lap. Partitions that come
back (reopened) or arrive late are found by the next lap.

No Dagster import: the partition store is any object with the DagsterInstance methods used
here, and record reads are callbacks (the sensor reads the catalog; the benchmark uses
synthetic facts).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from robotrace_assets.ids import is_id
from robotrace_assets.lifecycle.archive import (
    SEGMENT_PARTITIONS,
    SESSION_PARTITIONS,
    PartitionStore,
)
from robotrace_assets.lifecycle.policy import Closure, count_reasons, mint_prefix, session_closure

_KIND = {SEGMENT_PARTITIONS: "seg", SESSION_PARTITIONS: "msess"}


@dataclass(frozen=True)
class SweepCursor:
    """Per partitions definition: the last key the backlog lap evaluated (None: the next tick
    starts a lap), and for segments the mint-time prefix up to which ids were eligible at the
    last tick (ids minted after it are fresh: evaluated first, whatever the lap's position)."""

    segment: str | None = None
    media_session: str | None = None
    segment_since: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> SweepCursor:
        if not text:
            return cls()
        doc = json.loads(text)
        return cls(doc.get("segment"), doc.get("media_session"), doc.get("segment_since"))


@dataclass(frozen=True)
class Walk:
    candidates: list[str]
    cursor: str | None  # None: the lap ended, the next walk starts at the beginning
    scanned: int
    since: str | None = None  # the mint-time prefix eligible so far
    fresh: int = 0  # candidates that became eligible since the last walk


def walk(
    partitions: PartitionStore,
    name: str,
    cursor: str | None,
    before: datetime,
    limit: int,
    since: str | None = None,
) -> Walk:
    """Up to `limit` active partitions minted at or before `before`, in key (mint) order: first
    the fresh ones (minted after `since`, which just became old enough: most of them are closed
    and leave at once), then the backlog lap after `cursor` (held-open ones are evaluated again
    once a lap, so a long backlog never delays what has just become eligible). Keys that are
    not ids of the partition's kind are never candidates."""
    keys = partitions.get_dynamic_partitions(name)
    prefix, kind = mint_prefix(before), _KIND[name]
    start = len(kind) + 1
    eligible = [k for k in keys if k[start : start + 10] <= prefix and is_id(kind, k)]
    fresh_all = sorted(k for k in eligible if since is not None and k[start : start + 10] > since)
    fresh = fresh_all[:limit]
    # Fresh ones beyond the cap stay fresh: `since` advances only as far as they were taken.
    new_since = prefix if len(fresh_all) <= limit else fresh[-1][start : start + 10]
    backlog = sorted(
        k
        for k in eligible
        if (since is None or k[start : start + 10] <= since) and (cursor is None or k > cursor)
    )
    room = limit - len(fresh)
    lap = backlog[:room] if room > 0 else []
    # With no room this tick, the lap stays where it was.
    next_cursor = cursor if room <= 0 else (lap[-1] if len(backlog) > room else None)
    return Walk(fresh + lap, next_cursor, len(keys), new_since, len(fresh))


@dataclass(frozen=True)
class SweepPlan:
    segments: list[Closure]  # every segment candidate evaluated, closed or not
    sessions: list[Closure]
    cursor: SweepCursor
    scanned: int

    @property
    def segments_to_archive(self) -> list[Closure]:
        return [c for c in self.segments if c.closed]

    @property
    def sessions_to_archive(self) -> list[Closure]:
        return [c for c in self.sessions if c.closed]

    def summary(self) -> str:
        held = count_reasons([c for c in self.segments + self.sessions if not c.closed])
        held_text = ", ".join(f"{k} {v}" for k, v in held.items()) or "none"
        return (
            f"archival: {len(self.segments)} segments and {len(self.sessions)} media sessions "
            f"evaluated ({self.scanned} active partitions scanned); archiving "
            f"{len(self.segments_to_archive)} segments and {len(self.sessions_to_archive)} "
            f"media sessions; held open: {held_text}"
        )


SegmentEvaluator = Callable[[Sequence[str]], list[Closure]]
# Media session id -> its segment ids, None where the session's envelope cannot be read.
SessionMembers = Callable[[Sequence[str]], Mapping[str, Sequence[str] | None]]


def plan_sweep(
    partitions: PartitionStore,
    cursor: SweepCursor,
    before: datetime,
    limit: int,
    evaluate_segments: SegmentEvaluator,
    members_of: SessionMembers,
) -> SweepPlan:
    """Segments first, then media sessions. A session is evaluated when one of its segments
    leaves in this sweep (so it may leave with its last ones), and a slower walk over the
    session partitions (a twentieth of the cap) catches the rest: sessions with no segment
    registered, or whose envelope could not be read before."""
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    seg_walk = walk(
        partitions, SEGMENT_PARTITIONS, cursor.segment, before, limit, cursor.segment_since
    )
    segments = evaluate_segments(seg_walk.candidates) if seg_walk.candidates else []
    leaving = {c.entity_id for c in segments if c.closed}
    ses_walk = walk(
        partitions, SESSION_PARTITIONS, cursor.media_session, before, max(1, limit // 20)
    )
    parents = sorted({c.media_session_id for c in segments if c.closed and c.media_session_id})
    if parents:
        parents = sorted(partitions.get_existing_dynamic_partitions(SESSION_PARTITIONS, parents))
    candidates = list(dict.fromkeys([*ses_walk.candidates, *parents]))
    members = members_of(candidates) if candidates else {}
    listed = sorted({s for ids in members.values() if ids for s in ids})
    active = (
        set(partitions.get_existing_dynamic_partitions(SEGMENT_PARTITIONS, listed)) - leaving
        if listed
        else set()
    )
    sessions = [session_closure(s, members.get(s), active, before) for s in candidates]
    return SweepPlan(
        segments,
        sessions,
        SweepCursor(seg_walk.cursor, ses_walk.cursor, seg_walk.since),
        seg_walk.scanned + ses_walk.scanned,
    )
