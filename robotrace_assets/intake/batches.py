"""How ready segments are grouped into runs (pure; no Dagster).

A run costs seconds to start, so under a burst the intake asks for ranged runs of several segment
partitions. A Dagster partition range over dynamic partitions runs in the order the partitions
were added, so only segments registered in this very tick (added in sorted order, one request)
form contiguous ranges; a segment seen before (a new version of its upload) runs alone, and so
does a segment arriving alone, at once. A failed batch is re-run one segment per run
(`split_batch`), where each segment meets its own verdict.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from robotrace_assets.intake.discovery import SegmentReady

# Dagster's documented run tags for a partition range (the backfill daemon sets the same).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
WILL_RETRY_TAG = "dagster/will_retry"  # set on a failed run that run retries will launch again


@dataclass(frozen=True)
class SegmentBatch:
    segments: tuple[SegmentReady, ...]

    @property
    def first(self) -> str:
        return self.segments[0].segment_id

    @property
    def last(self) -> str:
        return self.segments[-1].segment_id

    @property
    def run_key(self) -> str:
        """Names exactly these segment versions: a tick repeated after a crash asks again for
        the same run, which Dagster then refuses as a duplicate."""
        versions = "\n".join(f"{s.segment_id}:{s.version}" for s in self.segments)
        return (
            f"segments:{self.first}:{len(self.segments)}:"
            + hashlib.sha256(versions.encode()).hexdigest()[:16]
        )

    def tags(self) -> dict[str, str]:
        return {
            RANGE_START_TAG: self.first,
            RANGE_END_TAG: self.last,
            "robotrace/batch": f"{len(self.segments)} segments",
        }


def latest_versions(ready: Iterable[SegmentReady]) -> list[SegmentReady]:
    """One entry per segment (its last version found this tick), sorted by segment id."""
    by_id = {segment.segment_id: segment for segment in ready}
    return [by_id[segment_id] for segment_id in sorted(by_id)]


def plan_runs(
    ready: Sequence[SegmentReady], is_new: Callable[[str], bool], batch_size: int
) -> tuple[list[SegmentBatch], list[SegmentReady]]:
    """(batches of new segments, segments that run alone)."""
    segments = latest_versions(ready)
    new = [s for s in segments if is_new(s.segment_id)]
    alone = [s for s in segments if not is_new(s.segment_id)]
    if batch_size <= 1 or len(new) <= 1:
        return [], alone + new
    batches = [SegmentBatch(tuple(new[i : i + batch_size])) for i in range(0, len(new), batch_size)]
    # A lone remainder is still a (one-segment) batch in name only: run it as a plain run.
    single = [b.segments[0] for b in batches if len(b.segments) == 1]
    return [b for b in batches if len(b.segments) > 1], alone + single


def range_of(tags: dict[str, str]) -> tuple[str, str] | None:
    """The (first, last) segment of a ranged run, from its tags."""
    start, end = tags.get(RANGE_START_TAG), tags.get(RANGE_END_TAG)
    return (start, end) if start and end else None
