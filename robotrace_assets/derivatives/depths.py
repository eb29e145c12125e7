"""The depth derivative of one segment: its proven depth object probed (no decode) and aligned to
the video frames the derivative pass counted.

No Dagster here: derivatives/assets.py publishes the files, writes the catalog record and the
materialization. A segment that declares no depth object gets the explicit no-depth record
(``depth.json`` with ``"depth": null`` and the reason), never an error. A declared depth object
outside the format (``robotrace_assets.depth``) or unreadable fails the segment's derivatives with
the depth reader's reason, like an undecodable audio track; one replaced since its proof fails
like a replaced sensor log (the caller's ``changed`` check marks the proof stale).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from robotrace_assets import catalog, layout
from robotrace_assets.depth import (
    FORMAT,
    ROLE,
    DepthAlignment,
    DepthError,
    DepthStream,
    align_depth,
    probe_depth,
)
from robotrace_assets.derivatives.labels import LabelError, frame_times
from robotrace_assets.derivatives.media import DerivativeError
from robotrace_assets.media.measure import MediaProbe
from robotrace_assets.records.proofs import ProofRecord

DEPTH_NAME, DEPTH_INDEX_NAME = "depth.json", "depth_index.parquet"
KINDS = ("depth", "depth_index")  # catalog and manifest kinds of the two files
SCHEMA = "robotrace.depth/1"
NO_DEPTH = "the segment declares no depth object"
INDEX_METADATA_KEY = b"robotrace.depth"

# (object key, proven ETag) -> a short-lived URL of exactly those bytes and the headers pinning it
PinnedSource = Callable[[str, str], tuple[str, Mapping[str, str]]]

# The catalog record (catalog.DEPTH_STREAMS), one row per segment: what clips read.
DEPTH_STREAM_SCHEMA = pa.schema(
    [
        pa.field("segment_id", pa.string(), nullable=False),
        pa.field("modality", pa.string()),  # null: the segment has no depth stream
        pa.field("reason", pa.string()),  # why it has none
        pa.field("format", pa.string()),
        pa.field("object_key", pa.string()),
        pa.field("sha256", pa.string()),
        pa.field("width", pa.int64()),
        pa.field("height", pa.int64()),
        pa.field("fps", pa.float64()),
        pa.field("frames", pa.int64()),
        pa.field("dropped_frames", pa.int64()),
        pa.field("video_frames", pa.int64()),
        pa.field("aligned_video_frames", pa.int64()),
        pa.field("unaligned_video_frames", pa.int64()),
        pa.field("max_offset_ms", pa.float64()),
        pa.field("times", pa.list_(pa.float64())),
    ]
)


@dataclass(frozen=True)
class DepthSource:
    """The declared depth object as its proof read it."""

    object_key: str
    etag: str
    sha256: str | None  # the SHA-256 the proof read
    size_bytes: int | None


@dataclass(frozen=True)
class DepthResult:
    """The segment's depth facts, and which files were written for publishing."""

    alignment: DepthAlignment | None  # None: no depth stream
    source: DepthSource | None
    reason: str | None
    files: tuple[tuple[str, str, str], ...]  # (kind, file name, content type) in out_dir

    @property
    def no_depth(self) -> bool:
        return self.alignment is None


def declared_depth(envelope: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The segment envelope's first ``objects[]`` entry with the depth role, if any."""
    return next((o for o in envelope.get("objects") or () if o.get("role") == ROLE), None)


def proven_depth(envelope: Mapping[str, Any], proof: ProofRecord) -> DepthSource | None:
    """The declared depth object pinned to what its proof read; None when none is declared."""
    declared = declared_depth(envelope)
    if declared is None:
        return None
    fmt = declared.get("format") or FORMAT
    if fmt != FORMAT:
        raise DerivativeError(f"depth: the object declares format {fmt!r}; only {FORMAT} is read")
    proven = proof.proven_object(ROLE)
    if not proven or not proven.get("etag") or proven["object_key"] != declared["object_key"]:
        raise DerivativeError("depth: the depth object was not proven; re-prove the segment")
    return DepthSource(
        proven["object_key"], proven["etag"], proven.get("read_sha256"), proven.get("size")
    )


def _document(facts: dict[str, Any] | None, reason: str | None) -> bytes:
    # No wall-clock facts: republishing the same inputs gives the same checksum.
    doc = {"schema": SCHEMA, "depth": facts, "reason": reason}
    return json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n"


def _facts(alignment: DepthAlignment, source: DepthSource) -> dict[str, Any]:
    return {
        **alignment.summary(),
        "tolerance_ms": round(alignment.tolerance_s * 1000, 3),
        "format": FORMAT,
        "object_key": source.object_key,
        "sha256": source.sha256,
        "size_bytes": source.size_bytes,
    }


def _probe(
    source: DepthSource, pinned: PinnedSource, changed: Callable[[], str | None]
) -> DepthStream:
    url, headers = pinned(source.object_key, source.etag)
    try:
        return probe_depth(url, headers)
    except DepthError as error:
        # A 412 from the pinned read means other bytes now: say so, not "unreadable".
        if (replaced := changed()) is not None:
            raise DerivativeError(f"depth: {replaced}") from None
        raise DerivativeError(f"depth: {error}") from None


def make_depth(
    envelope: Mapping[str, Any],
    proof: ProofRecord,
    probe: MediaProbe,
    pinned: PinnedSource,
    changed: Callable[[], str | None],
    out_dir: Path,
) -> DepthResult:
    """Probe the proven depth object, align it to the pass's video frames and write
    ``depth.json`` (and ``depth_index.parquet``) into ``out_dir``. ``changed`` re-checks the
    proven objects and returns why they differ now (None: unchanged)."""
    source = proven_depth(envelope, proof)
    if source is None:
        (out_dir / DEPTH_NAME).write_bytes(_document(None, NO_DEPTH))
        return DepthResult(None, None, NO_DEPTH, (("depth", DEPTH_NAME, layout.JSON_CONTENT_TYPE),))
    stream = _probe(source, pinned, changed)
    try:
        video = frame_times(probe.frames, probe.fps, probe.timestamp_gaps)
    except LabelError as error:
        raise DerivativeError(f"depth: {error}") from None
    alignment = align_depth(stream, video)
    facts = _facts(alignment, source)
    (out_dir / DEPTH_NAME).write_bytes(_document(facts, None))
    index = alignment.index_table().replace_schema_metadata(
        {INDEX_METADATA_KEY: json.dumps(facts, sort_keys=True).encode()}
    )
    pq.write_table(index, out_dir / DEPTH_INDEX_NAME, compression="zstd")
    files = (
        ("depth", DEPTH_NAME, layout.JSON_CONTENT_TYPE),
        ("depth_index", DEPTH_INDEX_NAME, layout.PARQUET_CONTENT_TYPE),
    )
    return DepthResult(alignment, source, None, files)


def depth_stream_row(segment_id: str, result: DepthResult) -> dict[str, Any]:
    """The segment's catalog.DEPTH_STREAMS row (every column; nulls without depth)."""
    row: dict[str, Any] = dict.fromkeys(DEPTH_STREAM_SCHEMA.names)
    row.update(segment_id=segment_id, reason=result.reason)
    if result.alignment is None or result.source is None:
        return row
    summary = result.alignment.summary()
    row.update({k: v for k, v in summary.items() if k in row})
    row.update(
        format=FORMAT,
        object_key=result.source.object_key,
        sha256=result.source.sha256,
        times=np.asarray(result.alignment.stream.times, dtype=np.float64).tolist(),
    )
    return row


def depth_stream_of(row: Mapping[str, Any] | None, sha256: str | None) -> DepthStream | None:
    """The stream a depth_stream_row recorded, if it measured exactly the bytes `sha256` names;
    None otherwise (a reader then probes the object itself)."""
    if not row or not row.get("modality") or not sha256 or row.get("sha256") != sha256:
        return None
    return DepthStream(
        modality=str(row["modality"]),
        width=int(row["width"]),
        height=int(row["height"]),
        fps=float(row["fps"]),
        times=tuple(float(t) for t in row["times"]),
        dropped_frames=int(row["dropped_frames"]),
    )


def depth_stream_record(segment_id: str, result: DepthResult) -> bytes:
    """The record as Parquet with its declared types, also when every depth column is null."""
    return catalog.to_parquet([depth_stream_row(segment_id, result)], DEPTH_STREAM_SCHEMA)


def depth_metadata(by_kind: Mapping[str, list[Any]], result: DepthResult) -> dict[str, Any]:
    """Materialization metadata: where the files are, what the depth stream holds."""
    document = by_kind["depth"][0]
    meta: dict[str, Any] = {
        "object_key": document.key,
        "size_bytes": document.size_bytes,
        "sha256": document.sha256,
        "verified": True,
        "no_depth": result.no_depth,
        "reason": result.reason or "",
    }
    if result.alignment is None or result.source is None:
        return meta
    index = by_kind["depth_index"][0]
    return {
        **meta,
        "index_key": index.key,
        "index_sha256": index.sha256,
        **result.alignment.summary(),
        "format": FORMAT,
        "depth_object_key": result.source.object_key,
        "depth_object_sha256": result.source.sha256 or "",
    }
