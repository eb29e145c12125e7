"""The closure rule (every open reason and both closed cases) and the bounded walk over a real
Dagster instance's dynamic partitions."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from robotrace_assets.ids import new_id
from robotrace_assets.lifecycle import policy
from robotrace_assets.lifecycle.archive import (
    SEGMENT_PARTITIONS,
    SESSION_PARTITIONS,
    LifecycleError,
    kind_of,
)
from robotrace_assets.lifecycle.policy import SegmentFacts, segment_closure, session_closure
from robotrace_assets.lifecycle.settings import LifecycleResource
from robotrace_assets.lifecycle.sweep import SweepCursor, plan_sweep, walk
from robotrace_assets.partitions import media_session_partitions, segment_partitions

NOW = datetime(2026, 11, 1, tzinfo=UTC)
FP = "f" * 16
RNG = random.Random(7)
OLD = new_id("seg", NOW - timedelta(days=20), RNG)
YOUNG = new_id("seg", NOW - timedelta(days=2), RNG)
BEFORE = policy.cutoff(NOW, 14)

VERIFIED = {"integrity_status": "verified", "failed_checks": [], "media_session_id": "msess_x"}
CURRENT = [
    {"kind": "proxy", "profile_fingerprint": FP},
    {"kind": "thumbnail", "profile_fingerprint": FP},
]
FINAL = [
    {"clip_id": "c1", "final_status": "approved"},
    {"clip_id": "c2", "final_status": "rejected"},
]


def closure(proof=VERIFIED, derivatives=CURRENT, reviews=FINAL, segment=OLD):
    return segment_closure(segment, SegmentFacts(proof, derivatives, reviews), BEFORE, FP)


def test_verified_current_and_reviewed_is_closed() -> None:
    found = closure()
    assert found.closed and found.media_session_id == "msess_x"
    assert "2 clip(s)" in found.detail


def test_failed_proof_with_a_reason_is_final() -> None:
    failed = {"integrity_status": "mismatch", "failed_checks": ["sha256_matches_envelope"]}
    found = closure(proof=failed, derivatives=None, reviews=None)
    assert found.closed and "mismatch" in found.detail


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"segment": YOUNG}, policy.TOO_RECENT),
        ({"proof": None}, policy.AWAITING_PROOF),
        ({"proof": {**VERIFIED, "integrity_status": "stale"}}, policy.PROOF_STALE),
        ({"proof": {"integrity_status": "mismatch", "failed_checks": []}}, policy.PROOF_NOT_FINAL),
        ({"proof": {"integrity_status": "weird"}}, policy.PROOF_NOT_FINAL),
        ({"derivatives": None}, policy.DERIVATIVES_MISSING),
        ({"derivatives": []}, policy.DERIVATIVES_MISSING),
        ({"derivatives": [*CURRENT, {"profile_fingerprint": "old"}]}, policy.DERIVATIVES_OUTDATED),
        ({"reviews": None}, policy.REVIEW_MISSING),
        (
            {"reviews": [*FINAL, {"clip_id": "c3", "final_status": "needs_review"}]},
            policy.NEEDS_REVIEW,
        ),
    ],
)
def test_each_open_reason(kwargs, reason) -> None:
    found = closure(**kwargs)
    assert not found.closed and found.reason == reason, found


def test_zero_day_age_archives_as_soon_as_closed() -> None:
    fresh = new_id("seg", NOW - timedelta(seconds=1), RNG)
    assert segment_closure(fresh, SegmentFacts(VERIFIED, CURRENT, FINAL), NOW, FP).closed
    with pytest.raises(ValueError):
        policy.cutoff(NOW, -1)
    with pytest.raises(ValueError):
        LifecycleResource(archive_after_days=-1)


def test_session_closes_when_old_and_no_segment_is_active() -> None:
    session = new_id("msess", NOW - timedelta(days=30), RNG)
    segs = [new_id("seg", NOW - timedelta(days=30), RNG) for _ in range(2)]
    assert session_closure(session, segs, set(), BEFORE).closed
    held = session_closure(session, segs, {segs[1]}, BEFORE)
    assert held.reason == policy.SEGMENTS_ACTIVE and segs[1] in held.detail
    assert session_closure(session, None, set(), BEFORE).reason == policy.SESSION_UNREADABLE
    young = new_id("msess", NOW, RNG)
    assert session_closure(young, [], set(), BEFORE).reason == policy.TOO_RECENT


def test_partition_names_match_the_definitions() -> None:
    assert segment_partitions.name == SEGMENT_PARTITIONS
    assert media_session_partitions.name == SESSION_PARTITIONS
    for bad in ("seg_1", "clip_01J00000000000000000000000", "../x", "", "seg_" + "0" * 26 + ","):
        with pytest.raises(LifecycleError):
            kind_of(bad)


def test_mint_prefix_orders_like_the_mint_time() -> None:
    rng = random.Random(3)
    for _ in range(500):
        at = NOW - timedelta(seconds=rng.randint(0, 10**8), microseconds=rng.randint(0, 10**6))
        before = NOW - timedelta(seconds=rng.randint(0, 10**8), microseconds=rng.randint(0, 10**6))
        key = new_id("seg", at, rng)
        assert (key[4:14] <= policy.mint_prefix(before)) == policy.old_enough(key, before)


def test_walk_is_bounded_and_resumes_from_its_cursor(instance) -> None:
    """Old and young partitions interleaved: each walk stops at its limit, the next resumes
    after its cursor, the lap ends with cursor None, and nothing is seen twice within a lap;
    keys that are not segment ids are never candidates."""
    rng = random.Random(1)
    keys = [
        new_id("seg", NOW - timedelta(days=30 if i % 3 else 1, minutes=i), rng) for i in range(250)
    ]
    instance.add_dynamic_partitions(SEGMENT_PARTITIONS, [*keys, "seg_0-not-an-id", "odd"])
    old = {k for i, k in enumerate(keys) if i % 3}
    seen: list[str] = []
    cursor = None
    for _ in range(100):
        step = walk(instance, SEGMENT_PARTITIONS, cursor, BEFORE, limit=40)
        assert len(step.candidates) <= 40 and step.scanned == 252
        seen += step.candidates
        cursor = step.cursor
        if cursor is None:
            break
    assert cursor is None and seen == sorted(old)  # mint order, each once


def test_fresh_partitions_come_before_a_long_backlog(instance) -> None:
    """Ids that became old enough since the last tick are evaluated first; the backlog lap
    keeps its place when the fresh ones fill the tick."""
    rng = random.Random(4)
    backlog = [new_id("seg", NOW - timedelta(days=60, minutes=i), rng) for i in range(30)]
    fresh = [new_id("seg", NOW - timedelta(days=14, minutes=30 + i), rng) for i in range(5)]
    instance.add_dynamic_partitions(SEGMENT_PARTITIONS, fresh + backlog)
    last_tick = policy.mint_prefix(policy.cutoff(NOW - timedelta(hours=1), 14))
    step = walk(instance, SEGMENT_PARTITIONS, None, BEFORE, limit=8, since=last_tick)
    assert step.candidates[:5] == sorted(fresh) and step.fresh == 5
    assert step.candidates[5:] == sorted(backlog)[:3] and step.cursor == sorted(backlog)[2]
    assert step.since == policy.mint_prefix(BEFORE)
    full = walk(instance, SEGMENT_PARTITIONS, "seg_0", BEFORE, limit=3, since=last_tick)
    assert full.candidates == sorted(fresh)[:3] and full.cursor == "seg_0"
    assert full.since == sorted(fresh)[2][4:14]  # the other two stay fresh


def test_plan_sweep_archives_a_session_with_its_last_segments(instance) -> None:
    """Segments leaving in the same sweep no longer hold their session open: the session of a
    leaving segment is evaluated at once; the session walk (a twentieth of the cap) finds the
    rest."""
    rng = random.Random(2)
    when = NOW - timedelta(days=30)
    session, held_session = new_id("msess", when, rng), new_id("msess", when, rng)
    seg_a, seg_b, seg_c = (new_id("seg", when, rng) for _ in range(3))
    instance.add_dynamic_partitions(SESSION_PARTITIONS, [held_session, session])
    instance.add_dynamic_partitions(SEGMENT_PARTITIONS, [seg_a, seg_b, seg_c])
    proof = {**VERIFIED, "media_session_id": session}

    def evaluate(ids):
        facts = {s: SegmentFacts(proof, CURRENT, FINAL) for s in (seg_a, seg_b)}
        empty = SegmentFacts(None, None, None)
        return [segment_closure(s, facts.get(s, empty), BEFORE, FP) for s in ids]

    members = {session: [seg_a, seg_b], held_session: [seg_c]}
    plan = plan_sweep(instance, SweepCursor(), BEFORE, 10, evaluate, lambda ids: members)
    assert {c.entity_id for c in plan.segments_to_archive} == {seg_a, seg_b}
    assert [c.entity_id for c in plan.sessions_to_archive] == [session]
    assert "awaiting_proof 1" in plan.summary() and "segments_active 1" in plan.summary()
    assert plan.cursor.segment is None  # the segment lap ended
    assert plan.cursor.media_session is not None  # the session walk took one of two
    assert SweepCursor.from_json(plan.cursor.to_json()) == plan.cursor
