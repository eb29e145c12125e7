"""Faults of the multi-process topology (issue 13, item 5): each injected while segments flow;
afterwards every segment is proven or failed with a reason, none twice, none missing."""

from __future__ import annotations

import pytest

from robotrace_assets.topology.topology import Topology
from robotrace_assets_tests.topology.landing import land
from robotrace_assets_tests.topology.outcomes import by_state, problems, wait_settled

pytestmark = pytest.mark.slow


def test_batch_flows_through_the_topology(topology: Topology) -> None:
    ids = land(topology.s3_client(), topology.config.bucket, segments=4, seed=1)
    found = wait_settled(topology.instance(), ids, timeout_s=240)
    assert not problems(found), problems(found)
    assert set(by_state(found)) == {"proven"}, by_state(found)
