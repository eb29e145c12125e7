"""Reading a manifest back from its JSON or Parquet form; ValueError if it is malformed.

Rows are checked (columns, types, values, duplicate keys) but not against the header: that is
``verify.verify_manifest``'s job.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from robotrace_assets.delivery.manifest.arrow_bytes import string_data
from robotrace_assets.delivery.manifest.canonical import json_rows
from robotrace_assets.delivery.manifest.model import Manifest, ManifestHeader
from robotrace_assets.delivery.manifest.rows import check_rows, conform
from robotrace_assets.delivery.manifest.schema import LOOSE_COLUMNS, PARQUET_METADATA_KEY
from robotrace_assets.delivery.manifest.steps import pipelined

try:  # orjson parses a million-row manifest several times faster; stdlib json is the fallback
    from orjson import loads as _json_loads
except ImportError:  # pragma: no cover - depends on the environment
    _json_loads = json.loads

_ARTIFACTS_OPEN = b',"artifacts":[\n'
_ARTIFACTS_CLOSE = b"\n]}\n"
_JSON_BLOCK_BYTES = 32 * 1024 * 1024


def read_manifest_file(path: Path) -> Manifest:
    """A manifest file: Parquet when its name ends in ``.parquet``, JSON otherwise."""
    data = path.read_bytes()
    if path.suffix == ".parquet":
        return read_manifest_parquet(data)
    return read_manifest_json(data)


def read_manifest_json(data: bytes) -> Manifest:
    """Parse any JSON spelling of a manifest (ours or re-formatted); ValueError if malformed.
    Rows are kept in file order; verify_manifest checks them against the header."""
    fast = _read_canonical_json(data)
    if fast is not None:
        return fast
    try:
        doc = _json_loads(data)
    except ValueError as error:  # orjson.JSONDecodeError and json's both subclass ValueError
        raise ValueError(f"manifest is not valid JSON: {error}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("artifacts"), list):
        raise ValueError('manifest JSON must be {"header": {...}, "artifacts": [...]}')
    header = ManifestHeader.from_dict(doc.get("header"))
    artifacts = doc["artifacts"]
    if not all(isinstance(row, dict) for row in artifacts):
        raise ValueError("every manifest artifact must be a JSON object")
    try:
        table = pa.Table.from_pylist(artifacts, schema=LOOSE_COLUMNS)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise ValueError(f"manifest artifacts do not match the columns: {error}") from None
    del doc, artifacts  # the dicts are the bulk of the memory: free them before validating
    return _manifest_of(header, table)


def _read_canonical_json(data: bytes) -> Manifest | None:
    """Fast path for a manifest spelled exactly as write_manifest_json spells it; None for
    anything else (re-formatted, tampered spelling, malformed), which the strict parser takes.

    Building a million Python dicts costs ~20 s and several GB; Arrow's JSON reader parses the
    artifact lines straight into columns. Only byte-exact canonical files are accepted: the
    parsed rows are written out again and must reproduce the input, so no difference between
    JSON parsers (duplicate keys, odd escapes) can make this path read something else.
    """
    if not data.startswith(b'{"header":') or not data.endswith(_ARTIFACTS_CLOSE):
        return None
    head_end = data.find(b"\n")
    if not data[: head_end + 1].endswith(_ARTIFACTS_OPEN):
        return None
    try:
        header = ManifestHeader.from_dict(_json_loads(data[:head_end] + b"]}")["header"])
    except (ValueError, KeyError, TypeError):
        return None
    body = memoryview(data)[head_end + 1 : len(data) - len(_ARTIFACTS_CLOSE)]
    bounds = [0]
    while bounds[-1] < len(body):
        cut = data.find(b"},\n{", head_end + 1 + bounds[-1] + _JSON_BLOCK_BYTES)
        bounds.append(len(body) if cut < 0 else cut - head_end + 2)  # through "},\n"
    blocks = [(body[lo:hi], hi == len(body)) for lo, hi in itertools.pairwise(bounds)]
    tables = list(pipelined(_parse_canonical_block, blocks))
    if any(table is None for table in tables):
        return None
    rows = pa.concat_tables(tables) if tables else LOOSE_COLUMNS.empty_table()
    return _manifest_of(header, rows)


def _parse_canonical_block(item: tuple[memoryview, bool]) -> pa.Table | None:
    import pyarrow.json as pj

    block, last = item
    text = bytearray(block)
    data = np.frombuffer(text, dtype=np.uint8)
    # Every LF between artifacts follows a "," (a raw LF cannot occur inside a JSON string):
    # blanking those commas turns the lines into newline-delimited JSON, in place.
    newlines = np.flatnonzero(data == 0x0A)
    if newlines.size and (newlines[0] == 0 or np.any(data[newlines - 1] != 0x2C)):
        return None
    data[newlines - 1] = 0x20
    try:
        table = pj.read_json(
            pa.BufferReader(text),
            read_options=pj.ReadOptions(block_size=4 * 1024 * 1024),
            parse_options=pj.ParseOptions(
                explicit_schema=LOOSE_COLUMNS, unexpected_field_behavior="error"
            ),
        )
        table = conform(table.combine_chunks())
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError):
        return None
    spelled = memoryview(b"".join(string_data(json_rows(table, "},\n"))))
    # The last block has no ",\n" after its last row; every other block ends with one.
    extra = 2 if last else 0
    return table if len(spelled) == len(block) + extra and spelled[: len(block)] == block else None


def read_manifest_parquet(data: bytes) -> Manifest:
    """The Parquet form: rows from the file, the header from its ``robotrace.manifest``
    schema metadata."""
    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowInvalid, OSError) as error:
        raise ValueError(f"manifest is not readable Parquet: {error}") from None
    raw = (table.schema.metadata or {}).get(PARQUET_METADATA_KEY)
    if raw is None:
        raise ValueError(f"Parquet has no {PARQUET_METADATA_KEY.decode()} header metadata")
    try:
        header_doc = json.loads(raw)
    except ValueError as error:
        raise ValueError(f"Parquet manifest header is not JSON: {error}") from None
    header = ManifestHeader.from_dict(header_doc)
    return _manifest_of(header, table.replace_schema_metadata(None))


def _manifest_of(header: ManifestHeader, rows: pa.Table) -> Manifest:
    table = conform(rows)
    return Manifest(header, table, check_rows(table, find_duplicates=True))
