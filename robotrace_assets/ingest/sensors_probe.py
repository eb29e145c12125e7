"""Is a RoboTrace `sensors` upload our Parquet trajectory log? Decided from its footer alone.

A RoboTrace client uploads sensors as opaque bytes (`application/octet-stream`). When they are
a Parquet file in our trajectory schema (``sensorlog``: `robotrace.schema_version`,
`robotrace.hz`, host and device clocks) the segment envelope names them as its `sensors` block,
so clips get their safety signals; anything else stays a declared object with role `sensors`.
Only the last 8 bytes and the footer are read (two ranged GETs, a bounded size), so finalize
stays independent of the file's size.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import pyarrow as pa
import pyarrow.parquet as pq

from robotrace_assets.sensorlog import SCHEMA_VERSION

MAGIC = b"PAR1"
MAX_FOOTER_BYTES = 1024 * 1024
MIN_HZ = 30.0  # the envelope's sensors block requires at least this rate
REQUIRED_COLUMNS = {"host_time_ns", "device_time_ns"}

# (offset, length) -> bytes
ReadRange = Callable[[int, int], bytes]


def trajectory_hz(size: int, read_range: ReadRange) -> float | None:
    """The log's sample rate when the object is our Parquet trajectory log; None otherwise."""
    if size < 2 * len(MAGIC) + 4:
        return None
    tail = read_range(size - 8, 8)
    if len(tail) != 8 or tail[4:] != MAGIC:
        return None
    footer_len = int.from_bytes(tail[:4], "little")
    if not 0 < footer_len <= min(MAX_FOOTER_BYTES, size - 12):
        return None
    footer = read_range(size - 8 - footer_len, footer_len)
    if len(footer) != footer_len:
        return None
    try:
        # The footer parses on its own: a buffer of magic + footer + length + magic is enough.
        schema = pq.read_metadata(pa.BufferReader(MAGIC + footer + tail)).schema.to_arrow_schema()
    except (pa.ArrowException, OSError, ValueError):
        return None
    meta = schema.metadata or {}
    if meta.get(b"robotrace.schema_version") != SCHEMA_VERSION.encode():
        return None
    if not set(schema.names) >= REQUIRED_COLUMNS:
        return None
    try:
        hz = float(json.loads(meta.get(b"robotrace.hz", b"null")))
    except (TypeError, ValueError):
        return None
    return hz if math.isfinite(hz) and hz >= MIN_HZ else None
