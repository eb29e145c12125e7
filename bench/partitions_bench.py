"""Benchmark (c): active partitions over a simulated year of a 12,000-segment-a-day fleet with the
archival policy, against Dagster's advice of at most ~100,000 partitions per asset.

The partition store is real: a Dagster instance (SQLite, temporary DAGSTER_HOME) whose dynamic
partitions receive every segment and media session of the year. The archival is the real code:
`lifecycle.sweep.plan_sweep` reads the instance's active keys and takes the next candidates
after its cursor, and
`lifecycle.policy.segment_closure` / `session_closure` decide. What is synthetic is the
catalog: instead of reading proof, derivative and review records from the bucket, each segment
carries a drawn fate (when it becomes closed) and the sweep hands the policy the facts of that
moment. Archive records (one small PUT each) are not written.

Batching, so a year fits in minutes: one add request per simulated day for the day's segments
and sessions, and one sweep per simulated day whose budget is the day's 24 hourly ticks (cap
24 x ROBOTRACE_ARCHIVE_MAX_PER_TICK candidates); its deletions
are one bulk DELETE on the instance's dynamic-partitions table (the sensor daemon deletes key by
key: that per-key cost is measured separately at the end of the year, as is one production-
sized tick). A daily sweep archives up to a day later than hourly ticks would, so the active
counts here are, if anything, high by up to a day of closures.

The mix (per segment): 2% fail their proof (final within the hour); 88.9% are reviewed within
0.5-2 days; 7% wait 1-6 weeks for review; 2% wait 6-12 weeks; 0.1% never close this year (a
stale proof nobody re-proves); 0.5% are reopened 1-60 days after closing and close again 1-3
days later. 12 segments per media session (5-minute segments, hour-long sessions).

    python -m bench.partitions_bench [--quick]     prints the markdown section
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from dagster import DagsterInstance

# The bulk delete and the row count go straight to the instance's dynamic-partitions table:
# the public API deletes one key per call (~4 ms each on SQLite), 4.4 M calls would take hours.
from dagster._core.storage.event_log.schema import DynamicPartitionsTable
from sqlalchemy import and_, func, select

from bench.common import WORK_DIR, Target, log, md_table
from robotrace_assets.ids import CROCKFORD
from robotrace_assets.lifecycle.archive import SEGMENT_PARTITIONS, SESSION_PARTITIONS
from robotrace_assets.lifecycle.policy import (
    Closure,
    SegmentFacts,
    count_reasons,
    cutoff,
    segment_closure,
)
from robotrace_assets.lifecycle.settings import DEFAULT_MAX_PER_TICK
from robotrace_assets.lifecycle.sweep import SweepCursor, plan_sweep, walk

TARGET = 100_000
START = datetime(2026, 1, 1, tzinfo=UTC)
START_MS = int(START.timestamp() * 1000)
SEGMENTS_PER_SESSION = 12
FP = "bench-profile-fp"
# (days, segments a day, archive age): a year at the age that keeps a fleet of this size under
# the target, and a 14-day age only until it has plainly plateaued above it.
FULL = ((365, 12_000, 3), (21, 12_000, 14))
QUICK = ((45, 2_000, 3), (20, 2_000, 14))
# Crockford digits -> the digits int(..., 32) reads: decoding an index runs in C.
_TO_INT32 = str.maketrans(CROCKFORD, "0123456789abcdefghijklmnopqrstuv")

# Fates: 0 reviewed within days, 1 failed proof, 2 weeks of review, 3 months, 4 stuck (stale).
QUICK_REVIEW, FAILED, WEEKS, MONTHS, STUCK = range(5)
SHARES = {FAILED: 0.02, WEEKS: 0.07, MONTHS: 0.02, STUCK: 0.001}
REOPEN_SHARE = 0.005
VERIFIED = {"integrity_status": "verified", "failed_checks": []}
MISMATCH = {"integrity_status": "mismatch", "failed_checks": ["sha256_matches_envelope"]}
STALE = {"integrity_status": "stale", "failed_checks": ["object_unchanged_since_proof"]}
CURRENT = [{"profile_fingerprint": FP}]
FINAL = [{"final_status": "approved"}]
WAITING = [{"final_status": "needs_review"}]


_PAIRS = [a + b for a in CROCKFORD for b in CROCKFORD]  # 10 bits -> two characters


def _b32(value: int, width: int) -> str:
    """Crockford base32 of `value` in `width` (even) characters, two at a time."""
    pairs = []
    for _ in range(width // 2):
        pairs.append(_PAIRS[value & 1023])
        value >>= 10
    return "".join(reversed(pairs))


class Fleet:
    """A year of segments as arrays; an id carries its index in its ULID's random part, so the
    sweep's callbacks find a segment's fate without a dictionary of 4.4 M strings."""

    def __init__(self, days: int, per_day: int, seed: int = 0) -> None:
        self.days, self.per_day = days, per_day
        n = days * per_day
        rng = np.random.default_rng(seed)
        self.minted = np.repeat(np.arange(days, dtype=np.float64), per_day) + np.tile(
            np.arange(per_day) / per_day, days
        )
        draw = rng.random(n)
        self.fate = np.full(n, QUICK_REVIEW, dtype=np.int8)
        edge = 0.0
        for fate, share in SHARES.items():
            self.fate[(draw >= edge) & (draw < edge + share)] = fate
            edge += share
        delay = rng.uniform(0.5, 2.0, n)
        delay[self.fate == FAILED] = 1 / 24
        delay[self.fate == WEEKS] = rng.uniform(7, 42, int((self.fate == WEEKS).sum()))
        delay[self.fate == MONTHS] = rng.uniform(42, 84, int((self.fate == MONTHS).sum()))
        delay[self.fate == STUCK] = np.inf
        self.closes_at = self.minted + delay
        reopened = (rng.random(n) < REOPEN_SHARE) & np.isfinite(delay)
        self.reopen_at = np.where(reopened, self.closes_at + rng.uniform(1, 60, n), np.inf)
        self.reclose = rng.uniform(1, 3, n)
        self.archived = np.zeros(n, dtype=bool)
        self.session_archived = np.zeros(n // SEGMENTS_PER_SESSION + 1, dtype=bool)
        # Each id is encoded once, on the day it is added (4.4 M ids: 30 bytes each, not a
        # Python string each).
        self.ids = np.zeros(n, dtype="S30")
        self.session_ids = np.zeros(n // SEGMENTS_PER_SESSION + 1, dtype="S32")

    def add_day(self, day: int) -> tuple[list[str], list[str]]:
        """The day's new segment and session ids, encoded and kept."""
        first, last = day * self.per_day, (day + 1) * self.per_day
        segments = [f"seg_{self._ulid(i, float(self.minted[i]))}" for i in range(first, last)]
        self.ids[first:last] = [s.encode() for s in segments]
        span = range(first // SEGMENTS_PER_SESSION, -(-last // SEGMENTS_PER_SESSION))
        new = [j for j in span if not self.session_ids[j]]  # a session may span two days
        sessions = [
            f"msess_{self._ulid(j, float(self.minted[j * SEGMENTS_PER_SESSION]))}" for j in new
        ]
        self.session_ids[new] = [s.encode() for s in sessions]
        return segments, sessions

    def _ulid(self, index: int, day_fraction: float) -> str:
        millis = START_MS + int(day_fraction * 86_400_000)
        return _b32(millis, 10) + _b32(index, 16)

    def segment_id(self, i: int) -> str:
        return self.ids[i].decode()

    def session_id(self, j: int) -> str:
        return self.session_ids[j].decode()

    @staticmethod
    def index(entity_id: str) -> int:
        return int(entity_id[-16:].translate(_TO_INT32), 32)

    def members(self, j: int) -> list[str]:
        first = j * SEGMENTS_PER_SESSION
        last = min(first + SEGMENTS_PER_SESSION, len(self.minted))
        return [s.decode() for s in self.ids[first:last]]

    def facts(self, i: int, day: float) -> SegmentFacts:
        """What the catalog would hold for segment i at `day`."""
        fate, closed = int(self.fate[i]), day >= self.closes_at[i]
        if fate == STUCK:
            return SegmentFacts(STALE, CURRENT, WAITING)
        if not closed:
            return SegmentFacts(None if fate == FAILED else VERIFIED, CURRENT, WAITING)
        # The proof names the session: the sweep evaluates it when its segments leave.
        session = {"media_session_id": self.session_id(i // SEGMENTS_PER_SESSION)}
        if fate == FAILED:
            return SegmentFacts({**MISMATCH, **session}, None, None)
        return SegmentFacts({**VERIFIED, **session}, CURRENT, FINAL)


class Store:
    """The instance's dynamic partitions, with the two bulk operations the simulation needs."""

    def __init__(self, instance: DagsterInstance) -> None:
        self.instance = instance
        self.storage: Any = instance.event_log_storage

    def delete(self, name: str, keys: Sequence[str]) -> None:
        table = DynamicPartitionsTable
        with self.storage.index_connection() as conn:
            for start in range(0, len(keys), 900):  # SQLite's bound-parameter limit, safely
                conn.execute(
                    table.delete().where(
                        and_(
                            table.c.partitions_def_name == name,
                            table.c.partition.in_(list(keys[start : start + 900])),
                        )
                    )
                )

    def count(self, name: str) -> int:
        table = DynamicPartitionsTable
        query = select(func.count()).where(table.c.partitions_def_name == name)
        with self.storage.index_connection() as conn:
            return int(conn.execute(query).scalar() or 0)


@dataclass
class Year:
    age_days: int
    days: int = 0
    per_day: int = 0
    active_end: int = 0
    active_max: int = 0
    active_max_day: int = 0
    sessions_end: int = 0
    sessions_max: int = 0
    archived: int = 0
    reopened: int = 0
    held_end: dict[str, int] | None = None
    seconds: float = 0.0
    split: dict[str, float] | None = None
    monthly: list[int] | None = None


def _sweep(store: Store, fleet: Fleet, cursor: SweepCursor, day: float, age: int, cap: int):
    now = START + timedelta(days=day)
    before = cutoff(now, age)

    def evaluate(ids: Sequence[str]) -> list[Closure]:
        return [segment_closure(s, fleet.facts(fleet.index(s), day), before, FP) for s in ids]

    def members_of(ids: Sequence[str]) -> dict[str, Sequence[str] | None]:
        return {s: fleet.members(fleet.index(s)) for s in ids}

    return plan_sweep(store.instance, cursor, before, cap, evaluate, members_of)


def _reopen(store: Store, fleet: Fleet, due: np.ndarray) -> int:
    """Reopen events due today: archived ones (and their archived sessions) come back."""
    fleet.closes_at[due] = fleet.reopen_at[due] + fleet.reclose[due]
    fleet.reopen_at[due] = np.inf
    back = due[fleet.archived[due]]
    if len(back):
        fleet.archived[back] = False
        store.instance.add_dynamic_partitions(
            SEGMENT_PARTITIONS, [fleet.segment_id(int(i)) for i in back]
        )
        sessions = np.unique(back // SEGMENTS_PER_SESSION)
        sessions = sessions[fleet.session_archived[sessions]]
        fleet.session_archived[sessions] = False
        store.instance.add_dynamic_partitions(
            SESSION_PARTITIONS, [fleet.session_id(int(j)) for j in sessions]
        )
    return len(back)


def simulate_year(home: Path, days: int, per_day: int, age: int) -> tuple[Year, Store]:
    fleet = Fleet(days, per_day)
    year = Year(age, monthly=[])
    split = {"add": 0.0, "sweep": 0.0, "delete": 0.0, "count": 0.0}
    cap = 24 * DEFAULT_MAX_PER_TICK
    cursor = SweepCursor()
    clock = time.perf_counter()
    instance = DagsterInstance.local_temp(str(home), overrides={"telemetry": {"enabled": False}})
    store = Store(instance)
    for day in range(days):
        t = time.perf_counter()
        segments, sessions = fleet.add_day(day)
        instance.add_dynamic_partitions(SEGMENT_PARTITIONS, segments)
        instance.add_dynamic_partitions(SESSION_PARTITIONS, sessions)
        due = np.flatnonzero((fleet.reopen_at > day) & (fleet.reopen_at <= day + 1))
        year.reopened += _reopen(store, fleet, due)
        split["add"] += time.perf_counter() - t
        t = time.perf_counter()
        plan = _sweep(store, fleet, cursor, day + 1.0, age, cap)
        cursor = plan.cursor
        split["sweep"] += time.perf_counter() - t
        t = time.perf_counter()
        gone = [c.entity_id for c in plan.segments_to_archive]
        gone_sessions = [c.entity_id for c in plan.sessions_to_archive]
        store.delete(SEGMENT_PARTITIONS, gone)
        store.delete(SESSION_PARTITIONS, gone_sessions)
        fleet.archived[[fleet.index(s) for s in gone]] = True
        fleet.session_archived[[fleet.index(s) for s in gone_sessions]] = True
        year.archived += len(gone)
        split["delete"] += time.perf_counter() - t
        t = time.perf_counter()
        active, active_sessions = store.count(SEGMENT_PARTITIONS), store.count(SESSION_PARTITIONS)
        split["count"] += time.perf_counter() - t
        if active > year.active_max:
            year.active_max, year.active_max_day = active, day + 1
        year.sessions_max = max(year.sessions_max, active_sessions)
        year.active_end, year.sessions_end = active, active_sessions
        year.held_end = count_reasons([c for c in plan.segments if not c.closed])
        if (day + 1) % 30 == 0:
            year.monthly.append(active)  # type: ignore[union-attr]
            log(
                f"  age {age}d, day {day + 1}: {active:,} active segments, "
                f"{active_sessions:,} sessions"
            )
    year.seconds, year.split = time.perf_counter() - clock, split
    return year, store


def production_tick(store: Store, age: int, day: float) -> dict[str, float]:
    """At the end of the year: the partition side of one hourly tick as production runs it
    (cap 1000; catalog reads replaced by the synthetic facts), and the sensor daemon's per-key
    delete (has_dynamic_partition + delete_dynamic_partition) on 200 keys."""
    instance = store.instance
    before = cutoff(START + timedelta(days=day), age)
    t = time.perf_counter()
    keys = instance.get_dynamic_partitions(SEGMENT_PARTITIONS)
    list_s = time.perf_counter() - t
    t = time.perf_counter()
    walked = walk(instance, SEGMENT_PARTITIONS, None, before, DEFAULT_MAX_PER_TICK)
    walk_s = time.perf_counter() - t
    sample = list(keys[:200])
    t = time.perf_counter()
    for key in sample:
        if instance.has_dynamic_partition(SEGMENT_PARTITIONS, key):
            instance.delete_dynamic_partition(SEGMENT_PARTITIONS, key)
    per_key_ms = (time.perf_counter() - t) / max(1, len(sample)) * 1000
    instance.add_dynamic_partitions(SEGMENT_PARTITIONS, sample)
    return {
        "active": len(keys),
        "list_s": list_s,
        "walk_s": walk_s,
        "candidates": len(walked.candidates),
        "per_key_delete_ms": per_key_ms,
    }


def run(quick: bool = False, workdir: Path | None = None) -> dict[str, Any]:
    figures: dict[str, Any] = {"years": [], "quick": quick}
    (workdir or WORK_DIR).mkdir(parents=True, exist_ok=True)
    for days, per_day, age in QUICK if quick else FULL:
        with tempfile.TemporaryDirectory(dir=workdir or WORK_DIR) as home:
            log(f"partitions: {days} days x {per_day:,} segments, archive age {age} days")
            year, store = simulate_year(Path(home), days, per_day, age)
            year.days, year.per_day = days, per_day
            figures["years"].append(year)
            if len(figures["years"]) == 1:
                figures["tick"] = production_tick(store, age, float(days))
            store.instance.dispose()
            log(
                f"  {year.active_end:,} active at the end, max {year.active_max:,}, "
                f"{year.seconds:.0f} s"
            )
    return figures


def targets(figures: dict[str, Any]) -> list[Target]:
    out = []
    for year in figures["years"]:
        out.append(
            Target(
                "partitions",
                f"{year.days} days x {year.per_day:,} segments/day, archive age {year.age_days} d",
                "active segment partitions, maximum over the run",
                f"<= {TARGET:,}",
                f"{year.active_max:,}",
                year.active_max <= TARGET,
                f"{year.active_max / TARGET:.2f}x the target",
            )
        )
    return out


def markdown(figures: dict[str, Any]) -> str:
    years: list[Year] = figures["years"]
    first = years[0]
    total = first.days * first.per_day
    rows = []
    for y in years:
        split = y.split or {}
        held = ", ".join(f"{k} {v:,}" for k, v in (y.held_end or {}).items()) or "none"
        rows.append(
            (
                f"{y.age_days} d, {y.days} days x {y.per_day:,}",
                f"{y.active_end:,}",
                f"{y.active_max:,} (day {y.active_max_day})",
                f"{y.sessions_end:,} / {y.sessions_max:,}",
                f"{y.archived:,}",
                f"{y.reopened:,}",
                held,
                f"{y.seconds:.0f} (add {split.get('add', 0):.0f}, "
                f"sweep {split.get('sweep', 0):.0f}, delete {split.get('delete', 0):.0f}, "
                f"count {split.get('count', 0):.0f})",
            )
        )
    tick = figures.get("tick", {})
    monthly = " / ".join(f"{v // 1000}k" for v in (years[0].monthly or [])) if years else ""
    return "\n".join(
        [
            "## Active partitions over a year of archival (benchmark c)",
            "",
            f"{total:,} segments ({first.days} days x {first.per_day:,}) and "
            f"{total // SEGMENTS_PER_SESSION:,} media sessions through a real Dagster instance's "
            "dynamic partitions (SQLite), archived by the real sweep and closure policy over "
            "synthetic catalog facts (module docstring: the mix, and how adds and deletes are "
            "batched per simulated day). Target: at most 100,000 active partitions per asset.",
            "",
            md_table(
                [
                    "archive age, run",
                    "active segments at the end",
                    "max over the run",
                    "media sessions end / max",
                    "archived",
                    "reopened",
                    "held open at the end (last sweep's candidates)",
                    "simulation s",
                ],
                rows,
            ),
            "",
            f"Active segments at each 30th day (age {years[0].age_days} d): {monthly}.",
            "",
            "The partition side of one production tick at the end of the first run: listing "
            f"{tick.get('active', 0):,} active segment partitions took "
            f"{tick.get('list_s', 0):.2f} s, "
            f"choosing its {tick.get('candidates', 0):,} candidates {tick.get('walk_s', 0):.2f} s "
            "in all (the catalog reads come on top: up to 3 GETs a candidate, 8 at a time); "
            "the sensor daemon deletes "
            f"key by key at {tick.get('per_key_delete_ms', 0):.1f} ms a key on SQLite, so a "
            f"tick archiving its cap of {DEFAULT_MAX_PER_TICK:,} spends about "
            f"{tick.get('per_key_delete_ms', 0) * DEFAULT_MAX_PER_TICK / 1000:.0f} s in the "
            "daemon after the evaluation (not inside the 60 s evaluation timeout).",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.partitions_bench")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    figures = run(args.quick)
    print(markdown(figures))
    print(
        md_table(
            ["measure", "measured", "met"],
            [(t.measure, t.measured, t.met) for t in targets(figures)],
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
