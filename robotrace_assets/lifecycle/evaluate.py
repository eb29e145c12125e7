"""The catalog reads behind the closure rule, and writing the archive records of a sweep.

Reads run on a small thread pool: a tick evaluates up to its cap of segments, each one to three
GETs, and the sensor must end well within Dagster's 60 s evaluation timeout even against R2.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TypeVar

from robotrace_assets import catalog
from robotrace_assets.lifecycle.archive import archive_event, record_event
from robotrace_assets.lifecycle.policy import (
    VERIFIED,
    Closure,
    SegmentFacts,
    segment_closure,
)
from robotrace_assets.lifecycle.sweep import SweepPlan
from robotrace_assets.records.errors import RecordError
from robotrace_assets.records.sessions import load_session_envelope
from robotrace_assets.records.store import BucketStore, RecordStore

WORKERS = 8
T = TypeVar("T")
R = TypeVar("R")


def _parallel(items: Sequence[T], work: Callable[[T], R]) -> list[R]:
    if len(items) <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(items))) as pool:
        return list(pool.map(work, items))


def segment_facts(store: RecordStore, segment_id: str) -> SegmentFacts:
    """The proof, and for a verified segment its derivatives and clip review (a failed proof
    closes a segment by itself, so those are not read)."""
    proofs = store.read_record(catalog.PROOFS, segment_id)
    proof = proofs[0] if proofs else None
    if proof is None or proof.get("integrity_status") != VERIFIED:
        return SegmentFacts(proof, None, None)
    return SegmentFacts(
        proof,
        store.read_record(catalog.DERIVATIVES, segment_id),
        store.read_record(catalog.CLIP_REVIEWS, segment_id),
    )


def evaluate_segments(
    store: RecordStore, segment_ids: Sequence[str], before: datetime, fingerprint: str
) -> list[Closure]:
    def one(segment_id: str) -> Closure:
        return segment_closure(segment_id, segment_facts(store, segment_id), before, fingerprint)

    return _parallel(segment_ids, one)


def session_members(
    store: RecordStore, session_ids: Sequence[str], known_tenants: Collection[str] | None = None
) -> dict[str, Sequence[str] | None]:
    """Each media session's segment ids from its envelope; None where it cannot be read."""

    def one(session_id: str) -> Sequence[str] | None:
        try:
            return load_session_envelope(store, session_id, known_tenants).segment_ids
        except RecordError:
            return None

    return dict(zip(session_ids, _parallel(session_ids, one), strict=True))


def record_archives(
    store: BucketStore, closures: Iterable[Closure], *, by: str, at: datetime
) -> list[str]:
    """One archive event per closed partition; the keys written."""
    events = [
        archive_event(
            c.entity_id,
            c.detail,
            by=by,
            at=at,
            media_session_id=c.media_session_id,
            tenant_id=c.tenant_id,
        )
        for c in closures
        if c.closed
    ]
    return _parallel(events, lambda event: record_event(store, event))


def record_plan(store: BucketStore, plan: SweepPlan, *, by: str, at: datetime) -> list[str]:
    """The archive records of every partition the sweep archives, segments first."""
    return record_archives(store, plan.segments_to_archive + plan.sessions_to_archive, by=by, at=at)


def evaluators(
    store: BucketStore, before: datetime, fingerprint: str, known_tenants: Collection[str] | None
) -> tuple[
    Callable[[Sequence[str]], list[Closure]],
    Callable[[Sequence[str]], Mapping[str, Sequence[str] | None]],
]:
    """The two callbacks plan_sweep takes, reading this store's catalog."""
    store.client()  # build the S3 client once, before the worker threads share it
    return (
        lambda ids: evaluate_segments(store, ids, before, fingerprint),
        lambda ids: session_members(store, ids, known_tenants),
    )
