"""Records as Parquet: the pipeline's catalog lives in the bucket, queryable outside Dagster.

Each table is one Parquet file per partition under robotics/catalog/<table>/, so a record is
rewritten whole when its partition is re-materialized and anyone can read the tables with
pyarrow, DuckDB or Spark. No Dagster import here.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

SESSIONS = "media_sessions"
SEGMENTS = "segments"
PARTS = "segment_parts"
PROOFS = "provider_proofs"
DERIVATIVES = "derivatives"
MEDIA_PROBES = "media_probes"
DEPTH_STREAMS = "depth_streams"  # per segment: the depth stream and its alignment, or none
CLIPS = "clips"
CLIP_REVIEWS = "clip_reviews"
REVIEW_COMPLETE = "review_complete"
REGRESSION_BANK = "regression_bank"
PAYOUT_EVENTS = "payouts/events"  # append-only: one file per event, under a folder per segment


def _cell(value: Any) -> Any:
    # Nested dicts become JSON text: one flat, stable schema a buyer's tools can read.
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def to_parquet(rows: Sequence[Mapping[str, Any]], schema: pa.Schema | None = None) -> bytes:
    table = pa.Table.from_pylist([{k: _cell(v) for k, v in row.items()} for row in rows], schema)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def from_parquet(data: bytes) -> list[dict[str, Any]]:
    return pq.read_table(io.BytesIO(data)).to_pylist()
