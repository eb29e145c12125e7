"""One archival sweep: which active partitions to evaluate this tick, and what the policy says.

Bounded work per tick: the walk pages through the dynamic partitions in insertion order from a
cursor, keeps the ones minted before the cutoff, and stops at `limit` candidates or after
`max_scan` partitions; the next tick continues where it stopped and a finished lap starts over.
Only the active set is walked, and archival is what keeps it small. No Dagster import: the
partition store is any object with the DagsterInstance methods used here, and record reads are
callbacks (the sensor reads the catalog; the benchmark uses synthetic facts).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from robotrace_assets.lifecycle.archive import (
    SEGMENT_PARTITIONS,
    SESSION_PARTITIONS,
    PartitionStore,
)
from robotrace_assets.lifecycle.policy import Closure, count_reasons, old_enough, session_closure

PAGE = 1000
MAX_PAGES = 50  # page queries per walk, whatever the page sizes


@dataclass(frozen=True)
class SweepCursor:
    """Where each walk stopped (Dagster storage-id cursors); None: at the start of a lap."""

    segment: str | None = None
    media_session: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> SweepCursor:
        if not text:
            return cls()
        doc = json.loads(text)
        return cls(doc.get("segment"), doc.get("media_session"))


@dataclass(frozen=True)
class Walk:
    candidates: list[str]
    cursor: str | None  # None: the lap ended, the next walk starts at the beginning
    scanned: int


def walk(
    partitions: PartitionStore,
    name: str,
    cursor: str | None,
    before: datetime,
    limit: int,
    max_scan: int,
) -> Walk:
    """Up to `limit` partitions minted at or before `before`, from `cursor` on.

    A page's cursor is the only resumable position, so a page never asks for more keys than
    candidates still wanted: the walk cannot overshoot its limit."""
    found: list[str] = []
    scanned = 0
    for _ in range(MAX_PAGES):
        size = min(PAGE, limit - len(found), max_scan - scanned)
        if size <= 0:
            break
        page = partitions.get_paginated_dynamic_partitions(
            name, limit=size, ascending=True, cursor=cursor
        )
        scanned += len(page.results)
        found += [key for key in page.results if old_enough(key, before)]
        if not page.has_more:
            return Walk(found, None, scanned)
        cursor = page.cursor
    return Walk(found, cursor, scanned)


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
    max_scan: int | None = None,
) -> SweepPlan:
    """Segments first, then media sessions: a session whose last active segments leave in this
    sweep may leave with them."""
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    max_scan = max_scan or 20 * limit
    seg_walk = walk(partitions, SEGMENT_PARTITIONS, cursor.segment, before, limit, max_scan)
    segments = evaluate_segments(seg_walk.candidates) if seg_walk.candidates else []
    leaving = {c.entity_id for c in segments if c.closed}
    ses_walk = walk(partitions, SESSION_PARTITIONS, cursor.media_session, before, limit, max_scan)
    members = members_of(ses_walk.candidates) if ses_walk.candidates else {}
    listed = sorted({s for ids in members.values() if ids for s in ids})
    active = (
        set(partitions.get_existing_dynamic_partitions(SEGMENT_PARTITIONS, listed)) - leaving
        if listed
        else set()
    )
    sessions = [session_closure(s, members.get(s), active, before) for s in ses_walk.candidates]
    return SweepPlan(
        segments,
        sessions,
        SweepCursor(seg_walk.cursor, ses_walk.cursor),
        seg_walk.scanned + ses_walk.scanned,
    )
