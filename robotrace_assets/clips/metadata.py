"""What a clip partition shows in the Dagster UI: a table of its clips (id, window, scores,
status, reasons) so a reviewer can find a clip id, and the jerk sparkline drawn inline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

from robotrace_assets.clips.plots import ClipTrace
from robotrace_assets.clips.sparkline import sparkline_markdown

MAX_TABLE_ROWS = 200  # a long segment cut into fixed windows; the catalog has them all

CLIP_TABLE_SCHEMA = TableSchema(
    columns=[
        TableColumn("clip_id", "string", description="Name it in `robotrace review`."),
        TableColumn("start_s", "float", description="Window start, seconds into the segment."),
        TableColumn("end_s", "float", description="Window end, seconds into the segment."),
        TableColumn("status", "string", description="Machine status under rules_version."),
        TableColumn("safety", "float"),
        TableColumn("smoothness", "float"),
        TableColumn("quality", "float"),
        TableColumn("label", "string", description="Task step, if the envelope names steps."),
        TableColumn("reasons", "string", description="Why the machine did not approve."),
    ]
)


def clip_table(rows: Sequence[dict[str, Any]]) -> MetadataValue:
    records = [
        TableRecord(
            {
                "clip_id": row["clip_id"],
                "start_s": round(float(row["start_s"]), 3),
                "end_s": round(float(row["end_s"]), 3),
                "status": row["machine_status"],
                "safety": round(float(row["machine_safety"]), 3),
                "smoothness": round(float(row["machine_smoothness"]), 3),
                "quality": round(float(row["machine_quality"]), 3),
                "label": row.get("label") or "",
                "reasons": "; ".join(row.get("machine_reasons") or []),
            }
        )
        for row in list(rows)[:MAX_TABLE_ROWS]
    ]
    return MetadataValue.table(records, schema=CLIP_TABLE_SCHEMA)


def clip_view_metadata(
    rows: Sequence[dict[str, Any]], traces: Sequence[ClipTrace], jerk_limit: float | None
) -> dict[str, Any]:
    """The clip table, and the jerk sparkline when it fits the UI's inline limit."""
    metadata: dict[str, Any] = {"clip_table": clip_table(rows)}
    if (sparkline := sparkline_markdown(traces, jerk_limit)) is not None:
        metadata["jerk_sparkline"] = MetadataValue.md(sparkline)
    return metadata
