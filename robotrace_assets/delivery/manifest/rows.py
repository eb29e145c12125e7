"""The manifest's rows: shaped to MANIFEST_COLUMNS, checked, and put in canonical order.

Every check raises ValueError naming the column and the first offending artifact keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from robotrace_assets.delivery.manifest import compute as ac
from robotrace_assets.delivery.manifest.arrow_bytes import all_lower_hex64, has_control
from robotrace_assets.delivery.manifest.schema import (
    HEX_COLUMNS,
    KINDS,
    MANIFEST_COLUMNS,
    MAX_SIZE_BYTES,
    MULTI_SEGMENT_KINDS,
    REQUIRED_COLUMNS,
    SEGMENT_LINEAGE_COLUMNS,
)

_HEX64_RE2 = "^[0-9a-f]{64}$"


def table_from_rows(rows: pa.Table | Sequence[Mapping[str, Any]]) -> pa.Table:
    """Rows as a table of exactly MANIFEST_COLUMNS (extra columns dropped), validated.

    Raises ValueError naming the column and the first offending artifact keys.
    """
    table = conform(as_table(rows))
    check_rows(table, find_duplicates=True)
    return table


def as_table(rows: pa.Table | Sequence[Mapping[str, Any]]) -> pa.Table:
    if isinstance(rows, pa.Table):
        return rows
    rows = list(rows)
    if not rows:
        return MANIFEST_COLUMNS.empty_table()
    if not all(isinstance(row, Mapping) for row in rows):
        raise ValueError("manifest rows must be mappings of column name to value")
    try:
        return pa.Table.from_pylist(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise ValueError(f"manifest rows do not form a table: {error}") from None


def _string_like(data_type: pa.DataType) -> bool:
    if pa.types.is_dictionary(data_type):
        return _string_like(data_type.value_type)
    return (
        pa.types.is_null(data_type)
        or pa.types.is_string(data_type)
        or pa.types.is_large_string(data_type)
        or pa.types.is_string_view(data_type)
    )


def _compatible(actual: pa.DataType, expected: pa.DataType) -> bool:
    """Casts we allow: same kind of value only (no "12" -> 12, no 12 -> "12")."""
    if pa.types.is_null(actual):
        return True
    if pa.types.is_integer(expected):
        return pa.types.is_integer(actual)
    if pa.types.is_list(expected):
        is_list = (
            pa.types.is_list(actual)
            or pa.types.is_large_list(actual)
            or pa.types.is_list_view(actual)
            or pa.types.is_large_list_view(actual)
        )
        return is_list and _string_like(actual.value_type)
    return _string_like(actual)


def conform(table: pa.Table) -> pa.Table:
    """The table with exactly MANIFEST_COLUMNS: missing optional columns all null, extra ones
    dropped, compatible types cast; ValueError on a missing required column or a wrong type."""
    names = set(table.column_names)
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        raise ValueError(f"manifest rows lack required column(s): {', '.join(missing)}")
    columns = []
    for field in MANIFEST_COLUMNS:
        if field.name not in names:  # an optional column nobody filled: all null
            columns.append(pa.chunked_array([pa.nulls(table.num_rows, field.type)]))
            continue
        column = table.column(field.name)
        if column.type != field.type:
            if not _compatible(column.type, field.type):
                raise ValueError(f"column {field.name!r} is {column.type}, expected {field.type}")
            try:
                column = column.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as error:
                raise ValueError(f"column {field.name!r}: {error}") from None
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=MANIFEST_COLUMNS)


def _examples(table: pa.Table, mask: ac.Values) -> str:
    """The first few rows a check failed on, by artifact key (or row number without one)."""
    mask = pc.fill_null(mask, False)
    hits = ac.indices_nonzero(mask.combine_chunks() if isinstance(mask, pa.ChunkedArray) else mask)
    rows = hits.slice(0, 3).to_pylist()
    keys = table.column("artifact_key").take(rows).to_pylist() if rows else []
    shown = [repr(k) if k is not None else f"row {r}" for r, k in zip(rows, keys, strict=True)]
    more = f" and {len(hits) - len(rows)} more" if len(hits) > len(rows) else ""
    return ", ".join(shown) + more


def _fail_if(table: pa.Table, mask: ac.Values, what: str) -> None:
    if ac.any_true(mask):
        raise ValueError(f"{what}: {_examples(table, mask)}")


def check_rows(table: pa.Table, *, find_duplicates: bool) -> pa.Array | None:
    """Validate a conformed table; return its canonical order (None: already in order).

    With find_duplicates False, duplicate keys in an unsorted table are left to the ordered
    digest pass, which sees them as equal neighbours for free (a separate check would gather
    every key once more).
    """
    for name in REQUIRED_COLUMNS:
        _fail_if(table, ac.is_null(table.column(name)), f"column {name!r} has nulls")
    kind = table.column("kind")
    _fail_if(table, ac.invert(ac.is_in(kind, pa.array(KINDS))), f"kind not one of {KINDS}")
    segment_bound = ac.invert(ac.is_in(kind, pa.array(MULTI_SEGMENT_KINDS)))
    for name in SEGMENT_LINEAGE_COLUMNS:
        missing = ac.and_(segment_bound, ac.is_null(table.column(name)))
        _fail_if(table, missing, f"column {name!r} is null for a single-segment artifact")
    for name in ("clip_ids", "allowed_use"):
        if ac.list_flatten(table.column(name)).null_count:
            raise ValueError(f"column {name!r} has null list elements")
    key = table.column("artifact_key")
    _fail_if(table, ac.equal(ac.binary_length(key), 0), "empty artifact_key")
    if has_control(key):
        bad = ac.match_substring_regex(key, r"[\x00-\x1f]")
        _fail_if(table, bad, "artifact_key contains control characters (TAB, LF, ...)")
    for name in HEX_COLUMNS:
        if not all_lower_hex64(table.column(name)):
            bad = ac.invert(ac.match_substring_regex(table.column(name), _HEX64_RE2))
            _fail_if(table, bad, f"column {name!r} is not 64 lowercase hex digits")
    size = table.column("size_bytes")
    _fail_if(table, ac.less(size, 0), "negative size_bytes")
    _fail_if(table, ac.greater(size, MAX_SIZE_BYTES), "size_bytes above 2**53-1")
    return canonical_order(key, find_duplicates=find_duplicates)


def canonical_order(keys: pa.ChunkedArray, *, find_duplicates: bool) -> pa.Array | None:
    """Indices sorting rows by artifact_key (UTF-8 bytes); None when already strictly sorted,
    which also rules out duplicates."""
    count = len(keys)
    if count < 2:
        return None
    # Already strictly ascending (a manifest we wrote, read back): no sort, no copy.
    if ac.all_true(ac.less(keys.slice(0, count - 1), keys.slice(1))):
        return None
    order = ac.sort_indices(keys)
    if find_duplicates:
        check_neighbours(keys.take(order), None)
    return order


def check_neighbours(ordered_keys: pa.ChunkedArray, previous: str | None) -> None:
    """ValueError if sorted keys repeat (equal neighbours, or the previous step's last)."""
    count = len(ordered_keys)
    if count and previous is not None and ordered_keys[0].as_py() == previous:
        raise ValueError(f"duplicate artifact_key: {previous!r}")
    if count < 2:
        return
    duplicate = ac.equal(ordered_keys.slice(0, count - 1), ordered_keys.slice(1))
    if ac.any_true(duplicate):
        dupes = ac.unique(ordered_keys.slice(1).filter(duplicate)).slice(0, 3).to_pylist()
        raise ValueError(f"duplicate artifact_key: {', '.join(map(repr, dupes))}")


def normalize_hex(table: pa.Table) -> pa.Table:
    """Lower-case hex digests from producers that spell them in upper case (build only: a
    manifest read back must already be canonical, or its digests would not be the buyer's)."""
    for name in HEX_COLUMNS:
        column = table.column(name)
        if not all_lower_hex64(column):
            index = table.schema.get_field_index(name)
            table = table.set_column(index, MANIFEST_COLUMNS.field(name), ac.ascii_lower(column))
    return table
