"""Rows as RFC 8785 (JCS) canonical JSON, built column by column: no per-row Python.

The same strings are hashed into ``rows_sha256`` and written as the JSON manifest's lines.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from robotrace_assets.delivery.manifest import compute as ac
from robotrace_assets.delivery.manifest.arrow_bytes import (
    byte_arrays,
    has_control,
    has_quote_or_backslash,
)
from robotrace_assets.delivery.manifest.schema import MANIFEST_COLUMNS

_JSON_SHORT_ESCAPES = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
_JSON_ORDER = tuple(sorted(MANIFEST_COLUMNS.names))  # JCS sorts keys; all are ASCII


def _json_escape(strings: ac.Values) -> ac.Values:
    """JSON string contents as JCS spells them: escape only quote, backslash and controls."""
    if has_quote_or_backslash(strings):
        strings = ac.replace_substring(strings, "\\", "\\\\")  # first: later escapes survive
        strings = ac.replace_substring(strings, '"', '\\"')
    if has_control(strings):
        present = set()
        for data in byte_arrays(strings):
            present.update(np.unique(data[data < 0x20]).tolist())
        for code in sorted(present):
            char = chr(code)
            escaped = _JSON_SHORT_ESCAPES.get(char, f"\\u{code:04x}")
            strings = ac.replace_substring(strings, char, escaped)
    return strings


def _json_string_list(lists: pa.ChunkedArray) -> pa.ChunkedArray:
    """Each list of strings as a JSON array (``["a","b"]``, ``[]``); a null list stays null."""
    out = []
    for chunk in lists.chunks:
        flat = ac.list_flatten(chunk)  # a null list contributes no values
        escaped = _json_escape(flat)
        if escaped is not flat:  # rare: rebuild the lists around the escaped values
            lengths = pc.fill_null(ac.list_value_length(chunk), 0).to_numpy(zero_copy_only=False)
            offsets = np.zeros(len(chunk) + 1, dtype=np.int32)
            np.cumsum(lengths, out=offsets[1:])
            mask = ac.is_null(chunk) if chunk.null_count else None
            chunk = pa.ListArray.from_arrays(pa.array(offsets), escaped, mask=mask)
        # '","' between items and '["' ... '"]' around: every item quoted, no per-item pass.
        text = ac.binary_join_element_wise('["', ac.binary_join(chunk, '","'), '"]', "")
        empty = ac.equal(ac.list_value_length(chunk), 0)
        if ac.any_true(empty):
            text = ac.if_else(empty, "[]", text)
        out.append(text)
    return pa.chunked_array(out, pa.string())


def json_rows(chunk: pa.Table, close: str = "}") -> pa.ChunkedArray:
    """Every row's JCS canonical JSON object (then ``close`` minus its brace), one string per
    row, built column by column: no per-row Python."""
    pieces: list[Any] = []
    for position, name in enumerate(_JSON_ORDER):
        field = MANIFEST_COLUMNS.field(name)
        column = chunk.column(name)
        lead = ("{" if position == 0 else ",") + f'"{name}":'
        if pa.types.is_integer(field.type):
            opening, value, closing = "", pc.cast(column, pa.string()), ""
        elif pa.types.is_list(field.type):
            opening, value, closing = "", _json_string_list(column), ""
        else:
            opening, value, closing = '"', _json_escape(column), '"'
        if column.null_count:
            if opening:
                value = ac.binary_join_element_wise(opening, value, closing, "")
            value = ac.coalesce(value, "null")
            opening = closing = ""
        pieces += [lead + opening, value, closing]
    pieces.append(close)
    merged: list[Any] = []  # adjacent literals joined: fewer arguments, same bytes
    for piece in pieces:
        if isinstance(piece, str) and merged and isinstance(merged[-1], str):
            merged[-1] += piece
        elif not (isinstance(piece, str) and not piece):
            merged.append(piece)
    return ac.binary_join_element_wise(*merged, "")
