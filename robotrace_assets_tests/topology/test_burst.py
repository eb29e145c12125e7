"""A burst: ROBOTRACE_BURST_SEGMENTS tiny segments (opt-in; the issue asks 2,000) land at once
in the topology.

Asserted on every segment: discovered exactly once (one partition, one intake run covering it),
every intake sensor tick ends within the 60 s sensor timeout (tick records), and the run queue
never has more STARTED runs tagged robotrace/io=heavy than deploy/dagster.yaml allows (run
storage sampled while the queue drains). The end state: every segment whose run finished in the
sampling window is proven (none twice, none failed without a reason) and every other one is
queued or running exactly once, never lost. Draining all 2,000 takes ~90 min of step work on 2
cores; ROBOTRACE_BURST_FULL=1 waits for that and asserts the whole end state: every segment
proven (or failed with a reason), none missing, none in flight.
"""

from __future__ import annotations

import os
import time
from collections import Counter

import pytest

from robotrace_assets.topology import burst
from robotrace_assets.topology.outcomes import outcomes, problems, summary, wait_settled
from robotrace_assets.topology.topology import Topology

SEGMENTS = int(os.environ.get("ROBOTRACE_BURST_SEGMENTS") or 0)

# Opt-in: on a 2-core CI machine even 200 segments passed the 600 s per-test timeout, which would
# fail the whole suite; run it with ROBOTRACE_BURST_SEGMENTS=200 (or 2000, the size).
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not SEGMENTS, reason="set ROBOTRACE_BURST_SEGMENTS to land a burst (200: ~10 min here)"
    ),
]
FULL = os.environ.get("ROBOTRACE_BURST_FULL") == "1"
SAMPLE_S = 60  # how long run storage is sampled once every segment is discovered
# Generous bounds, not timing assertions: a tick takes at most 100 inbox entries, and a tiny
# segment's steps cost ~2.6 s of this 2-core machine's wall under a burst.
DISCOVER_S = max(600.0, SEGMENTS * 0.6)
SETTLE_S = max(3600.0, SEGMENTS * 6.0)


def heavy_limit(topology: Topology) -> int:
    limits = topology.config.instance_config()["run_coordinator"]["config"]
    return next(
        rule["limit"]
        for rule in limits["tag_concurrency_limits"]
        if (rule["key"], rule.get("value")) == burst.HEAVY_TAG
    )


# The suite's 600 s per-test timeout would cut a large burst short; its own bounds above apply.
@pytest.mark.timeout(int(DISCOVER_S + SAMPLE_S + (SETTLE_S if FULL else 0) + 900))
def test_burst_lands_at_once(topology: Topology) -> None:
    instance, bucket = topology.instance(), topology.config.bucket
    # Written while the daemon is down, the whole burst is new to the first intake tick.
    topology.stop_component("daemon")
    ids = burst.land_burst(topology.s3_client, bucket, SEGMENTS, seed=7)
    assert len(set(ids)) == SEGMENTS
    since = time.time()
    topology.start_component("daemon")

    limit, most_heavy = heavy_limit(topology), 0
    deadline = time.monotonic() + DISCOVER_S
    while time.monotonic() < deadline:  # until every segment has its run
        most_heavy = max(most_heavy, burst.heavy_runs_started(instance))
        if all(o.runs for o in outcomes(instance, ids, with_proofs=False).values()):
            break
        time.sleep(1.0)
    sample_end = time.monotonic() + SAMPLE_S
    while time.monotonic() < sample_end:
        most_heavy = max(most_heavy, burst.heavy_runs_started(instance))
        time.sleep(0.5)

    keys = instance.get_dynamic_partitions("segment")
    assert not [k for k, n in Counter(keys).items() if n > 1]
    assert set(ids) <= set(keys), "segments never registered as partitions"
    ticks = burst.intake_ticks(instance, since)
    assert ticks.ticks and ticks.max_s < 60, ticks
    assert 0 < most_heavy <= limit, (most_heavy, limit)

    found = wait_settled(instance, ids, SETTLE_S) if FULL else outcomes(instance, ids)
    drained_s = time.time() - since
    # Discovered once: the intake sensor created exactly one run covering each segment (run
    # retries and split re-runs of a failed batch are not the intake's).
    discovered = Counter(o.intake_runs for o in found.values())
    assert set(discovered) == {1}, discovered
    finished = {s: o for s, o in found.items() if not o.in_flight}
    assert not problems(finished), problems(finished)
    if FULL:
        assert len(finished) == SEGMENTS, Counter(o.state for o in found.values())
    print(
        f"\nburst {SEGMENTS}: ticks {ticks.ticks} (max {ticks.max_s:.1f} s), heavy runs at once "
        f"max {most_heavy} (limit {limit}), finished {len(finished)}, "
        f"queued or running {SEGMENTS - len(finished)}, states {summary(found)}, "
        f"{drained_s:.0f} s from the daemon's start"
    )
