"""``bundle_sha256`` and ``rows_sha256`` (package doc), computed in one ordered pass."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from robotrace_assets.delivery.manifest import compute as ac
from robotrace_assets.delivery.manifest.arrow_bytes import string_data
from robotrace_assets.delivery.manifest.canonical import json_rows
from robotrace_assets.delivery.manifest.rows import (
    as_table,
    canonical_order,
    check_neighbours,
    check_rows,
    conform,
)
from robotrace_assets.delivery.manifest.schema import MANIFEST_COLUMNS
from robotrace_assets.delivery.manifest.steps import pipelined, steps

_BUNDLE_COLUMNS = ("artifact_key", "size_bytes", "sha256")


def _bundle_lines(chunk: pa.Table) -> ac.Values:
    sizes = pc.cast(chunk.column("size_bytes"), pa.string())
    return ac.binary_join_element_wise(
        chunk.column("artifact_key"), "\t", sizes, "\t", chunk.column("sha256"), "\n", ""
    )


@dataclass(frozen=True)
class _DigestStep:
    first_key: str | None
    last_key: str | None
    bundle_lines: ac.Values
    json_rows: pa.ChunkedArray | None


def digests(table: pa.Table, order: pa.Array | None, *, rows: bool = True) -> tuple[str, str]:
    """(bundle_sha256, rows_sha256) of a conformed table in one ordered pass, which also finds
    duplicate keys (ValueError). With ``rows`` False only the bundle digest is computed."""

    def work(take: Callable[[], pa.Table]) -> _DigestStep:
        chunk = take()
        keys = chunk.column("artifact_key")
        check_neighbours(keys, None)
        return _DigestStep(
            keys[0].as_py() if len(keys) else None,
            keys[-1].as_py() if len(keys) else None,
            _bundle_lines(chunk),
            json_rows(chunk) if rows else None,
        )

    bundle, canonical = hashlib.sha256(), hashlib.sha256()
    previous: str | None = None
    for step in pipelined(work, steps(table, order)):
        if step.first_key is not None and step.first_key == previous:
            raise ValueError(f"duplicate artifact_key: {previous!r}")
        previous = step.last_key if step.last_key is not None else previous
        for view in string_data(step.bundle_lines):
            bundle.update(view)
        if step.json_rows is not None:
            for view in string_data(step.json_rows):
                canonical.update(view)
    return bundle.hexdigest(), canonical.hexdigest()


def bundle_sha256(rows: pa.Table) -> str:
    """The canonical bundle digest (package doc) of rows in any order; columns artifact_key,
    size_bytes and sha256 are required, others ignored. Vectorized: no per-row Python.
    ValueError on duplicate keys (the digest would be ambiguous)."""
    missing = [n for n in _BUNDLE_COLUMNS if n not in rows.column_names]
    if missing:
        raise ValueError(f"rows lack column(s): {', '.join(missing)}")
    fields_ = [MANIFEST_COLUMNS.field(n) for n in _BUNDLE_COLUMNS]
    narrow = pa.Table.from_arrays(
        [rows.column(f.name).cast(f.type) for f in fields_], schema=pa.schema(fields_)
    )
    order = canonical_order(narrow.column("artifact_key"), find_duplicates=False)
    return digests(narrow, order, rows=False)[0]


def rows_sha256(rows: pa.Table | Sequence[Mapping[str, Any]]) -> str:
    """The canonical digest of every column of every row (package doc), rows in any order."""
    table = conform(as_table(rows))
    return digests(table, check_rows(table, find_duplicates=False))[1]
