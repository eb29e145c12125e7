"""A burst of tiny segments written straight into the bucket, and what the instance says about
how the topology took it: intake tick durations, heavy runs at once, time inside steps.

Used by the burst test and the orchestration benchmark. The media are the capture simulator's
(envelopes, raw video, trajectory, inbox entries, exactly as a capture client writes them), made
small; the one encoded clip is reused for every segment, since ffmpeg would otherwise dominate
the writer, not the system under test.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from robotrace_assets.capture.media import VideoInfo
from robotrace_assets.capture.simulator import CaptureSimulator, SimulationConfig
from robotrace_assets.topology.outcomes import INTAKE_SENSOR

TINY = {"seconds": 1.0, "fps": 10, "width": 64, "height": 48, "codec": "h264", "sensor_hz": 30.0}
HEAVY_TAG = ("robotrace/io", "heavy")

_clip_lock = threading.Lock()
_clip: tuple[Path, VideoInfo] | None = None


class ReusedClipSimulator(CaptureSimulator):
    """Encodes one clip, then copies it for every further segment."""

    def _encode_video(self, path: Path, seed: int, defects: set[str]) -> VideoInfo:
        global _clip
        with _clip_lock:
            if _clip is None or not _clip[0].exists():
                info = super()._encode_video(path, seed, defects)
                keep = Path(self.workdir or "/tmp") / f"robotrace-burst-clip-{id(self)}.mp4"
                shutil.copyfile(path, keep)
                _clip = (keep, info)
                return info
            source, info = _clip
        shutil.copyfile(source, path)
        return replace(info, path=path)


def land_burst(
    client_factory: Any,
    bucket: str,
    segments: int,
    seed: int = 0,
    per_session: int = 50,
    threads: int = 4,
) -> list[str]:
    """Write `segments` tiny segments (sessions of `per_session`) in `threads` writers; ids."""
    base = datetime.now(UTC) - timedelta(minutes=5)
    sessions = [min(per_session, segments - start) for start in range(0, segments, per_session)]

    def write(index: int, count: int) -> list[str]:
        config = SimulationConfig(
            sessions=1,
            segments=count,
            seed=seed * 100_000 + index,
            base_time=base + timedelta(minutes=index),
            **TINY,  # type: ignore[arg-type]
        )
        done = ReusedClipSimulator(client_factory(), bucket, config).run()
        return [s.segment_id for session in done for s in session.segments]

    with ThreadPoolExecutor(threads) as pool:
        parts = pool.map(lambda args: write(*args), enumerate(sessions))
        return [segment_id for part in parts for segment_id in part]


@dataclass(frozen=True)
class TickFigures:
    ticks: int
    max_s: float
    durations_s: tuple[float, ...]


def intake_ticks(instance: Any, since: float) -> TickFigures:
    """Durations of the intake sensor's ticks that started after `since` (epoch seconds)."""
    from dagster._core.scheduler.instigation import TickStatus

    states = [s for s in instance.all_instigator_state() if s.instigator_name == INTAKE_SENSOR]
    durations: list[float] = []
    for state in states:
        for tick in instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=10_000):
            if tick.timestamp < since or tick.status == TickStatus.STARTED:
                continue
            if tick.end_timestamp is not None:
                durations.append(tick.end_timestamp - tick.timestamp)
    return TickFigures(len(durations), max(durations, default=0.0), tuple(sorted(durations)))


def heavy_runs_started(instance: Any) -> int:
    from dagster import DagsterRunStatus, RunsFilter

    key, value = HEAVY_TAG
    return len(
        instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.STARTED], tags={key: value}))
    )


def step_seconds(instance: Any, run_ids: Iterable[str]) -> float:
    """Seconds spent inside steps (STEP_START to STEP_SUCCESS/FAILURE) over the runs."""
    from dagster import DagsterEventType

    total = 0.0
    kinds = {
        DagsterEventType.STEP_START,
        DagsterEventType.STEP_SUCCESS,
        DagsterEventType.STEP_FAILURE,
    }
    for run_id in run_ids:
        started: dict[str, float] = {}
        for record in instance.all_logs(run_id, of_type=kinds):
            event = record.dagster_event
            if event is None or event.step_key is None:
                continue
            if event.event_type == DagsterEventType.STEP_START:
                started[event.step_key] = record.timestamp
            elif event.step_key in started:
                total += record.timestamp - started.pop(event.step_key)
    return total
