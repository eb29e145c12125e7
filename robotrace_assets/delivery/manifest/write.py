"""Writing a manifest as JSON (for buyers) and Parquet (for us and buyers with Arrow).

JSON: ``{"header": {...}, "artifacts": [...]}``, one artifact per line in canonical order and
canonical (JCS) form. Parquet: zstd, the header JSON in the schema metadata under
``robotrace.manifest``, rows in canonical order. Both carry the same header.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from robotrace_assets.delivery.manifest.arrow_bytes import string_data
from robotrace_assets.delivery.manifest.canonical import json_rows
from robotrace_assets.delivery.manifest.model import Manifest, ManifestHeader
from robotrace_assets.delivery.manifest.schema import MANIFEST_COLUMNS, PARQUET_METADATA_KEY
from robotrace_assets.delivery.manifest.steps import pipelined, steps

_ROW_GROUP_ROWS = 65_536  # Parquet row groups: steps are gathered up to this many rows


def header_json(header: ManifestHeader) -> bytes:
    """The header as the JSON manifest and the Parquet metadata spell it."""
    return json.dumps(header.to_dict(), ensure_ascii=False, separators=(",", ":")).encode()


def write_manifest_files(
    manifest: Manifest,
    json_out: BinaryIO | None = None,
    parquet_out: BinaryIO | str | os.PathLike[str] | None = None,
) -> None:
    """Write the JSON and/or the Parquet form in one ordered pass over the rows (each step is
    taken and formatted once for both). Memory stays at a few steps, whatever the size."""
    with_json = json_out is not None

    def work(take: Callable[[], pa.Table]) -> tuple[pa.Table, pa.ChunkedArray | None]:
        chunk = take()
        # Each row already followed by ",\n": the step's text is one buffer, written as is.
        return chunk, json_rows(chunk, "},\n") if with_json else None

    schema = MANIFEST_COLUMNS.with_metadata({PARQUET_METADATA_KEY: header_json(manifest.header)})
    writer = None
    if parquet_out is not None:
        writer = pq.ParquetWriter(parquet_out, schema, compression="zstd")
    try:
        if json_out is not None:
            json_out.write(b'{"header":' + header_json(manifest.header) + b',"artifacts":[\n')
        held: memoryview | None = None  # the last view, to drop the final ",\n" at the end
        group: list[pa.Table] = []
        for chunk, text in pipelined(work, steps(manifest.table, manifest.order)):
            if writer is not None:
                group.append(chunk)
                if sum(part.num_rows for part in group) >= _ROW_GROUP_ROWS:
                    _write_group(writer, schema, group)
            if json_out is not None and text is not None:
                for view in string_data(text):
                    if held is not None:
                        json_out.write(held)
                    held = view
        if writer is not None and group:
            _write_group(writer, schema, group)
        if json_out is not None:
            if held is not None:
                json_out.write(held[:-2])
            json_out.write(b"\n]}\n")
    finally:
        if writer is not None:
            writer.close()


def _write_group(writer: pq.ParquetWriter, schema: pa.Schema, group: list[pa.Table]) -> None:
    # Every write_table call starts a row group: steps are small, so a few go in together.
    table = pa.concat_tables(group).replace_schema_metadata(schema.metadata)
    writer.write_table(table, row_group_size=max(1, table.num_rows))
    group.clear()


def write_manifest_json(manifest: Manifest, out: BinaryIO) -> None:
    """Stream the JSON form to ``out`` (see write_manifest_files)."""
    write_manifest_files(manifest, json_out=out)


def manifest_json_bytes(manifest: Manifest) -> bytes:
    buffer = io.BytesIO()
    write_manifest_json(manifest, buffer)
    return buffer.getvalue()


def write_manifest_parquet(manifest: Manifest, out: BinaryIO | str | os.PathLike[str]) -> None:
    """Stream the Parquet form to ``out`` (see write_manifest_files)."""
    write_manifest_files(manifest, parquet_out=out)


def manifest_parquet_bytes(manifest: Manifest) -> bytes:
    sink = pa.BufferOutputStream()
    write_manifest_parquet(manifest, sink)
    return sink.getvalue().to_pybytes()
