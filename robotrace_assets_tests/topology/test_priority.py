"""Run workers yield the CPU: a real multiprocessing spawn child (as DefaultRunLauncher starts a
run worker) lowers its priority; main processes (code server, CLI, tests) never do."""

from __future__ import annotations

import multiprocessing
import os

from robotrace_assets.topology.config import TopologyConfig
from robotrace_assets.topology.priority import (
    NICENESS_ENV,
    run_worker_niceness,
    yield_cpu_in_run_worker,
)


def _child(env: dict[str, str], out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    out.put((os.nice(0), yield_cpu_in_run_worker(env)))


def niceness_in_spawned_child(env: dict[str, str]) -> tuple[int, int]:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    child = ctx.Process(target=_child, args=(env, out))
    child.start()
    result = out.get(timeout=60)
    child.join(60)
    return result


def test_a_spawned_run_worker_lowers_its_priority_by_the_setting() -> None:
    before, after = niceness_in_spawned_child({NICENESS_ENV: "10"})
    assert after == min(19, before + 10)


def test_unset_or_nonsense_settings_leave_priority_alone() -> None:
    before, after = niceness_in_spawned_child({NICENESS_ENV: "lots"})
    assert after == before
    assert run_worker_niceness({}) == 0
    assert run_worker_niceness({NICENESS_ENV: "99"}) == 19


def test_the_main_process_never_lowers_itself() -> None:
    before = os.nice(0)
    assert yield_cpu_in_run_worker({NICENESS_ENV: "10"}) == before


def test_the_local_topology_sets_it_for_every_process(tmp_path) -> None:
    assert TopologyConfig.from_env(root=tmp_path).environment()[NICENESS_ENV] == "10"
