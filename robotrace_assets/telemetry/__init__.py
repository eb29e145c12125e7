"""A media session mirrored back into telemetry: one MCAP with Foxglove schemas (trajectory,
clip boundaries, safety signals, machine scores, review decisions) beside its proxy videos.
Plain Python: no Dagster here."""

from robotrace_assets.telemetry.collect import (
    SegmentTelemetry,
    SessionTelemetry,
    TelemetryError,
    collect_session,
    select_clips,
)
from robotrace_assets.telemetry.export import ExportSummary, proxy_filename, write_session_mcap

__all__ = [
    "ExportSummary",
    "SegmentTelemetry",
    "SessionTelemetry",
    "TelemetryError",
    "collect_session",
    "proxy_filename",
    "select_clips",
    "write_session_mcap",
]
