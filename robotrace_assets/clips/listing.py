"""Which clips a segment or session has, as a reviewer looks for them: one line per clip with
its window, scores, status and reasons; the reviewed status where a review exists."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from robotrace_assets import catalog
from robotrace_assets.records.store import RecordStore


@dataclass(frozen=True)
class ClipLine:
    clip_id: str
    segment_id: str
    start_s: float
    end_s: float
    safety: float
    smoothness: float
    quality: float
    status: str  # the reviewed status when the segment was reviewed, else the machine's
    reasons: tuple[str, ...]

    @classmethod
    def of(cls, row: dict[str, Any]) -> ClipLine:
        return cls(
            clip_id=row["clip_id"],
            segment_id=row["segment_id"],
            start_s=float(row["start_s"]),
            end_s=float(row["end_s"]),
            safety=float(row["machine_safety"]),
            smoothness=float(row["machine_smoothness"]),
            quality=float(row["machine_quality"]),
            status=row.get("final_status") or row["machine_status"],
            reasons=tuple(row.get("machine_reasons") or ()),
        )

    def text(self) -> str:
        window = f"{self.start_s:7.2f}-{self.end_s:7.2f}s"
        scores = f"S{self.safety:.2f} M{self.smoothness:.2f} Q{self.quality:.2f}"
        reasons = "; ".join(self.reasons)
        return f"{self.clip_id}  {window}  {scores}  {self.status:<12}  {reasons}".rstrip()


def segment_clips(store: RecordStore, segment_id: str) -> list[ClipLine]:
    """A segment's clips, reviewed rows first choice (they carry the final status)."""
    rows = store.read_record(catalog.CLIP_REVIEWS, segment_id)
    if rows is None:
        rows = store.read_record(catalog.CLIPS, segment_id) or []
    return sorted((ClipLine.of(r) for r in rows), key=lambda c: (c.segment_id, c.start_s))


def clips_of(
    store: RecordStore, segment_ids: Iterable[str], status: str | None = None
) -> Iterator[ClipLine]:
    for segment_id in segment_ids:
        for line in segment_clips(store, segment_id):
            if status is None or line.status == status:
                yield line
