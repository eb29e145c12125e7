"""Export manifests: exactly what a buyer received, signed so they can check integrity and origin.

A manifest is one header plus one row per delivered artifact (raw video, sensor log, proxy,
thumbnails, contact sheet, LeRobot files) with its key, size, SHA-256, segment lineage, consent
and license references, safety rules version and review decision. It is written as JSON (for
buyers) and Parquet (for us and for buyers with Arrow); both carry the same header. No Dagster.

Canonical forms (format_version "1"). A buyer can recompute everything from the JSON alone:

Row order
    Rows are ordered by ``artifact_key`` compared as UTF-8 bytes, which is the same as Unicode
    code point order (Python: ``sorted(rows, key=lambda r: r["artifact_key"].encode())``).
    Artifact keys are unique, non-empty and never contain control characters (U+0000 to
    U+001F: no TAB, CR or LF), so the lines below cannot be ambiguous.

``bundle_sha256`` (what the delivered bytes are)
    SHA-256, lowercase hex, of the UTF-8 concatenation, over the rows in that order, of the line
    ``f"{artifact_key}\\t{size_bytes}\\t{sha256}\\n"``: size in decimal without sign or leading
    zeros, sha256 as 64 lowercase hex digits. An empty manifest hashes the empty string.

``rows_sha256`` (everything else the rows say: lineage, consent, license, review)
    SHA-256, lowercase hex, of the concatenation, over the rows in the same order and with no
    separator, of each row's RFC 8785 (JCS) canonical JSON: all 19 columns as keys (nulls
    included), keys sorted, no whitespace, strings with only ``"``, ``\\`` and control
    characters escaped. For these value types (strings, integers below 2**53, lists of strings,
    null) Python's ``json.dumps(row, sort_keys=True, separators=(",", ":"),
    ensure_ascii=False).encode()`` gives the same bytes, and so does any JCS library.

Signing message
    The UTF-8 bytes of ``"robotrace-export-manifest\\n"`` followed by one ``f"{name}={value}\\n"``
    line per header field except ``signature``, in this order: format_version, manifest_id,
    buyer_id, delivery_id, created_at, artifact_count, total_bytes, bundle_sha256, rows_sha256,
    signature_algorithm, key_id. Integers in decimal; no value may contain CR or LF.

``signature``
    Lowercase hex: HMAC-SHA256(key, message) (64 digits) for ``hmac-sha256``, or the 64-byte
    Ed25519 (RFC 8032, pure) signature of the message (128 digits) for ``ed25519``.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import itertools
import json
import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import Any, BinaryIO, Protocol, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

try:  # orjson parses a million-row manifest several times faster; stdlib json is the fallback
    from orjson import loads as _json_loads
except ImportError:  # pragma: no cover - depends on the environment
    _json_loads = json.loads

FORMAT_VERSION = "1"
HMAC_SHA256 = "hmac-sha256"
ED25519 = "ed25519"
ALGORITHMS = (HMAC_SHA256, ED25519)
PARQUET_METADATA_KEY = b"robotrace.manifest"
SIGNING_PREFIX = b"robotrace-export-manifest\n"
MIN_HMAC_KEY_BYTES = 16  # shorter keys are guessable; RFC 2104 recommends the hash length (32)
MAX_SIZE_BYTES = 2**53 - 1  # sizes stay exact as JSON numbers in every language (JavaScript too)

KINDS = (
    "raw_video",
    "sensor_log",
    "declared_object",  # any other object a segment declares (actions, depth...), proven alike
    "proxy",
    "thumbnail",
    "contact_sheet",
    "lerobot_file",
    "telemetry_mcap",  # one MCAP per media session (Foxglove schemas)
)
# A LeRobot dataset file spans clips of many segments: its clip_ids carry the lineage, so these
# segment-level columns may be null for it. Every other kind belongs to exactly one segment.
MULTI_SEGMENT_KINDS = ("lerobot_file", "telemetry_mcap")

MANIFEST_COLUMNS = pa.schema(
    [
        pa.field("artifact_key", pa.string(), nullable=False),  # the key as delivered
        pa.field("source_key", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("size_bytes", pa.int64(), nullable=False),
        pa.field("sha256", pa.string(), nullable=False),  # lowercase hex of the artifact
        pa.field("clip_ids", pa.list_(pa.string()), nullable=False),  # clips it serves
        pa.field("segment_id", pa.string()),
        pa.field("media_session_id", pa.string()),
        pa.field("tenant_id", pa.string()),
        pa.field("raw_sha256", pa.string()),  # the source segment's proven SHA-256
        pa.field("proof_status", pa.string()),
        pa.field("proof_verified_at", pa.string()),  # ISO 8601
        pa.field("consent_receipt_id", pa.string()),
        pa.field("license_scope_id", pa.string()),
        pa.field("allowed_use", pa.list_(pa.string())),
        pa.field("safety_rules_version", pa.string()),
        pa.field("review_status", pa.string()),
        pa.field("reviewed_by", pa.string()),
        pa.field("review_rationale", pa.string()),
    ]
)
REQUIRED_COLUMNS = tuple(f.name for f in MANIFEST_COLUMNS if not f.nullable)
# Null only for MULTI_SEGMENT_KINDS; reviewed_by and review_rationale may always be null.
SEGMENT_LINEAGE_COLUMNS = (
    "segment_id",
    "media_session_id",
    "tenant_id",
    "raw_sha256",
    "proof_status",
    "proof_verified_at",
    "consent_receipt_id",
    "license_scope_id",
    "allowed_use",
    "safety_rules_version",
    "review_status",
)
HEX_COLUMNS = ("sha256", "raw_sha256")

_HEX64_RE2 = "^[0-9a-f]{64}$"
_JSON_SHORT_ESCAPES = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
_JSON_ORDER = tuple(sorted(MANIFEST_COLUMNS.names))  # JCS sorts keys; all are ASCII
# Rows per vectorized step: big enough that per-call overhead vanishes, small enough that a
# step's intermediates stay tens of MB (and its string offsets far below 2 GiB).
_STEP_BYTES = 8 * 1024 * 1024
_MAX_STEP_ROWS = 65_536
_WORKERS = max(1, min(4, os.cpu_count() or 1))
_ROW_GROUP_ROWS = 65_536  # Parquet row groups: steps are gathered up to this many rows


# --------------------------------------------------------------------------------- header


@dataclass(frozen=True)
class ManifestHeader:
    """What the manifest is and who signed it; ``signature`` is lowercase hex (see module doc)."""

    manifest_id: str
    buyer_id: str
    delivery_id: str
    created_at: str  # ISO 8601 with a UTC offset
    artifact_count: int
    total_bytes: int
    bundle_sha256: str
    rows_sha256: str
    signature_algorithm: str  # "hmac-sha256" | "ed25519"
    signature: str
    key_id: str  # which key signed, so the buyer knows which one to verify with
    format_version: str = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> ManifestHeader:
        """A header from its JSON form; ValueError on missing, unknown or mistyped fields."""
        if not isinstance(doc, Mapping):
            raise ValueError("manifest header is not an object")
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in doc and n != "format_version"]
        unknown = sorted(set(doc) - set(names))
        if missing or unknown:
            raise ValueError(f"manifest header: missing {missing or '-'}, unknown {unknown or '-'}")
        values = {n: doc[n] for n in names if n in doc}
        for name, value in values.items():
            expected = int if name in ("artifact_count", "total_bytes") else str
            # bool is an int subclass: refuse it, a count of True is a corrupted header.
            if not isinstance(value, expected) or isinstance(value, bool):
                raise ValueError(f"manifest header field {name!r} must be {expected.__name__}")
        header = cls(**values)
        if header.format_version != FORMAT_VERSION:
            raise ValueError(f"unsupported manifest format_version {header.format_version!r}")
        return header

    def signing_fields(self) -> dict[str, Any]:
        fields_ = self.to_dict()
        del fields_["signature"]
        return fields_


SIGNED_FIELDS = (
    "format_version",
    "manifest_id",
    "buyer_id",
    "delivery_id",
    "created_at",
    "artifact_count",
    "total_bytes",
    "bundle_sha256",
    "rows_sha256",
    "signature_algorithm",
    "key_id",
)


def signing_message(header_fields: Mapping[str, Any]) -> bytes:
    """The canonical bytes a signature covers (module doc): every field but the signature."""
    missing = [name for name in SIGNED_FIELDS if name not in header_fields]
    if missing:
        raise ValueError(f"cannot sign: header fields missing: {', '.join(missing)}")
    lines = [SIGNING_PREFIX]
    for name in SIGNED_FIELDS:
        value = header_fields[name]
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(text, str) or "\n" in text or "\r" in text:
            raise ValueError(f"header field {name!r} must be text on one line or an integer")
        lines.append(f"{name}={text}\n".encode())
    return b"".join(lines)


# -------------------------------------------------------------------------------- signing


class Signer(Protocol):
    @property
    def algorithm(self) -> str: ...

    @property
    def key_id(self) -> str: ...

    def sign(self, message: bytes) -> str: ...


class HmacSigner:
    """HMAC-SHA256 with a shared secret: the buyer verifies with the same key."""

    algorithm = HMAC_SHA256

    def __init__(self, key: bytes, key_id: str) -> None:
        if not isinstance(key, bytes | bytearray) or len(key) < MIN_HMAC_KEY_BYTES:
            raise ValueError(f"HMAC key must be at least {MIN_HMAC_KEY_BYTES} bytes")
        self._key = bytes(key)
        self.key_id = _one_line("key_id", key_id)

    def sign(self, message: bytes) -> str:
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def __repr__(self) -> str:  # never show the secret in logs or tracebacks
        return f"HmacSigner(key_id={self.key_id!r})"


class Ed25519Signer:
    """Ed25519: the buyer verifies with our public key and cannot forge manifests."""

    algorithm = ED25519

    def __init__(self, private_key: bytes | str, key_id: str) -> None:
        # Imported here: deployments that only sign with HMAC do not need cryptography.
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        if isinstance(private_key, str):  # PEM text, e.g. from a secret store
            private_key = private_key.encode()
        if private_key.lstrip().startswith(b"-----BEGIN"):
            try:
                key = serialization.load_pem_private_key(private_key, password=None)
            except (TypeError, ValueError) as error:  # encrypted or malformed PEM
                raise ValueError(f"cannot load the Ed25519 PEM key: {error}") from None
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError("the PEM key is not an Ed25519 private key")
        elif len(private_key) == 32:
            key = Ed25519PrivateKey.from_private_bytes(private_key)
        else:
            raise ValueError("Ed25519 private key must be PEM or 32 raw bytes")
        self._key = key
        self.key_id = _one_line("key_id", key_id)

    @classmethod
    def generate(cls, key_id: str) -> Ed25519Signer:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return cls(Ed25519PrivateKey.generate().private_bytes_raw(), key_id)

    def public_key_bytes(self) -> bytes:
        """The raw 32-byte public key to hand to buyers."""
        return self._key.public_key().public_bytes_raw()

    def public_key_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, message: bytes) -> str:
        return self._key.sign(message).hex()

    def __repr__(self) -> str:
        return f"Ed25519Signer(key_id={self.key_id!r})"


def sign(header_fields: Mapping[str, Any], signer: Signer) -> str:
    """Signature over ``signing_message``; algorithm and key id come from the signer."""
    merged = dict(header_fields)
    for name, value in (("signature_algorithm", signer.algorithm), ("key_id", signer.key_id)):
        if merged.setdefault(name, value) != value:
            raise ValueError(f"header says {name}={merged[name]!r}, the signer has {value!r}")
    return signer.sign(signing_message(merged))


def verify_signature(
    header: ManifestHeader,
    *,
    hmac_key: bytes | None = None,
    ed25519_public_key: bytes | None = None,
) -> bool:
    """True if the header's signature is valid for its fields under the given key.

    ValueError if no key of the header's algorithm was given (a caller error, not a forgery).
    """
    try:
        message = signing_message(header.signing_fields())
    except ValueError:  # a field we would never have signed (a line break): not ours
        return False
    if header.signature_algorithm == HMAC_SHA256:
        if hmac_key is None:
            raise ValueError(
                f"manifest is signed with {HMAC_SHA256} (key {header.key_id}): pass hmac_key"
            )
        expected = hmac.new(hmac_key, message, hashlib.sha256).hexdigest().encode()
        # Constant time: a byte-by-byte compare would leak how much of a forgery is right.
        return hmac.compare_digest(expected, header.signature.encode())
    if header.signature_algorithm == ED25519:
        if ed25519_public_key is None:
            raise ValueError(
                f"manifest is signed with {ED25519} (key {header.key_id}): pass ed25519_public_key"
            )
        from cryptography.exceptions import InvalidSignature

        public = _ed25519_public_key(ed25519_public_key)
        # Exactly 128 lowercase hex digits: bytes.fromhex alone would also accept spaces and
        # upper case, so differently spelled headers would verify alike.
        if not re.fullmatch(r"[0-9a-f]{128}", header.signature):
            return False
        try:
            public.verify(bytes.fromhex(header.signature), message)
        except InvalidSignature:
            return False
        return True
    raise ValueError(f"unknown signature algorithm {header.signature_algorithm!r}")


def _ed25519_public_key(data: bytes) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if data.lstrip().startswith(b"-----BEGIN"):
        key = serialization.load_pem_public_key(data)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("the PEM key is not an Ed25519 public key")
        return key
    if len(data) != 32:
        raise ValueError("Ed25519 public key must be PEM or 32 raw bytes")
    return Ed25519PublicKey.from_public_bytes(data)


# ------------------------------------------------------------------------- rows and checks


@dataclass(frozen=True)
class Manifest:
    """A header and its rows. ``table`` keeps the rows in the order they came (a sorted copy
    of a million-row table would double the memory); ``order`` gives the canonical order:
    canonical row i is ``table`` row ``order[i]``, and None means ``table`` is already in it.
    Writers emit rows in canonical order, so a manifest read back has ``order`` None."""

    header: ManifestHeader
    table: pa.Table  # MANIFEST_COLUMNS
    order: pa.Array | None = None

    def canonical_table(self) -> pa.Table:
        """The rows in canonical order (a copy when they are not already in it)."""
        return self.table if self.order is None else self.table.take(self.order)


def table_from_rows(rows: pa.Table | Sequence[Mapping[str, Any]]) -> pa.Table:
    """Rows as a table of exactly MANIFEST_COLUMNS (extra columns dropped), validated.

    Raises ValueError naming the column and the first offending artifact keys.
    """
    table = _conform(_as_table(rows))
    _check_rows(table, find_duplicates=True)
    return table


def _as_table(rows: pa.Table | Sequence[Mapping[str, Any]]) -> pa.Table:
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


def _conform(table: pa.Table) -> pa.Table:
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


def _string_data(array: pa.Array | pa.ChunkedArray) -> Iterator[memoryview]:
    """The concatenated UTF-8 bytes of a string array's values, without copying."""
    chunks = array.chunks if isinstance(array, pa.ChunkedArray) else [array]
    for chunk in chunks:
        if len(chunk) == 0:
            continue
        _, offsets_buffer, data = chunk.buffers()
        offsets = np.frombuffer(offsets_buffer, dtype=np.int32)
        start, end = int(offsets[chunk.offset]), int(offsets[chunk.offset + len(chunk)])
        if data is not None and end > start:
            yield memoryview(data)[start:end]


def _byte_arrays(strings: pa.Array | pa.ChunkedArray) -> Iterator[np.ndarray]:
    # numpy over the raw value bytes scans 5-10x faster than a per-value regex kernel.
    for view in _string_data(strings):
        yield np.frombuffer(view, dtype=np.uint8)


def _has_control(strings: pa.Array | pa.ChunkedArray) -> bool:
    return any(int(data.min()) < 0x20 for data in _byte_arrays(strings))


def _has_quote_or_backslash(strings: pa.Array | pa.ChunkedArray) -> bool:
    for view in _string_data(strings):
        data = bytes(view)  # bytes' own search (memchr) beats numpy compares here
        if b'"' in data or b"\\" in data:
            return True
    return False


def _all_lower_hex64(strings: pa.ChunkedArray) -> bool:
    """Every non-null value is exactly 64 of [0-9a-f] (fast path; the regex names culprits)."""
    if not pc.all(pc.equal(pc.binary_length(strings), 64)).as_py():
        return False
    # Deleting every hex digit leaves nothing: one C loop over the bytes, 5x faster than RE2.
    return not any(
        bytes(view).translate(None, b"0123456789abcdef") for view in _string_data(strings)
    )


def _examples(table: pa.Table, mask: pa.ChunkedArray | pa.Array) -> str:
    """The first few rows a check failed on, by artifact key (or row number without one)."""
    mask = pc.fill_null(mask, False)
    hits = pc.indices_nonzero(mask.combine_chunks() if isinstance(mask, pa.ChunkedArray) else mask)
    rows = hits.slice(0, 3).to_pylist()
    keys = table.column("artifact_key").take(rows).to_pylist() if rows else []
    shown = [repr(k) if k is not None else f"row {r}" for r, k in zip(rows, keys, strict=True)]
    more = f" and {len(hits) - len(rows)} more" if len(hits) > len(rows) else ""
    return ", ".join(shown) + more


def _fail_if(table: pa.Table, mask: pa.ChunkedArray | pa.Array, what: str) -> None:
    if pc.any(mask).as_py():
        raise ValueError(f"{what}: {_examples(table, mask)}")


def _check_rows(table: pa.Table, *, find_duplicates: bool) -> pa.Array | None:
    """Validate a conformed table; return its canonical order (None: already in order).

    With find_duplicates False, duplicate keys in an unsorted table are left to the ordered
    digest pass, which sees them as equal neighbours for free (a separate check would gather
    every key once more).
    """
    for name in REQUIRED_COLUMNS:
        _fail_if(table, pc.is_null(table.column(name)), f"column {name!r} has nulls")
    kind = table.column("kind")
    _fail_if(table, pc.invert(pc.is_in(kind, pa.array(KINDS))), f"kind not one of {KINDS}")
    segment_bound = pc.invert(pc.is_in(kind, pa.array(MULTI_SEGMENT_KINDS)))
    for name in SEGMENT_LINEAGE_COLUMNS:
        missing = pc.and_(segment_bound, pc.is_null(table.column(name)))
        _fail_if(table, missing, f"column {name!r} is null for a single-segment artifact")
    for name in ("clip_ids", "allowed_use"):
        if pc.list_flatten(table.column(name)).null_count:
            raise ValueError(f"column {name!r} has null list elements")
    key = table.column("artifact_key")
    _fail_if(table, pc.equal(pc.binary_length(key), 0), "empty artifact_key")
    if _has_control(key):
        bad = pc.match_substring_regex(key, r"[\x00-\x1f]")
        _fail_if(table, bad, "artifact_key contains control characters (TAB, LF, ...)")
    for name in HEX_COLUMNS:
        if not _all_lower_hex64(table.column(name)):
            bad = pc.invert(pc.match_substring_regex(table.column(name), _HEX64_RE2))
            _fail_if(table, bad, f"column {name!r} is not 64 lowercase hex digits")
    size = table.column("size_bytes")
    _fail_if(table, pc.less(size, 0), "negative size_bytes")
    _fail_if(table, pc.greater(size, MAX_SIZE_BYTES), "size_bytes above 2**53-1")
    return _canonical_order(key, find_duplicates=find_duplicates)


def _canonical_order(keys: pa.ChunkedArray, *, find_duplicates: bool) -> pa.Array | None:
    """Indices sorting rows by artifact_key (UTF-8 bytes); None when already strictly sorted,
    which also rules out duplicates."""
    count = len(keys)
    if count < 2:
        return None
    # Already strictly ascending (a manifest we wrote, read back): no sort, no copy.
    if pc.all(pc.less(keys.slice(0, count - 1), keys.slice(1))).as_py():
        return None
    order = pc.sort_indices(keys)
    if find_duplicates:
        _check_neighbours(keys.take(order), None)
    return order


def _check_neighbours(ordered_keys: pa.ChunkedArray, previous: str | None) -> None:
    """ValueError if sorted keys repeat (equal neighbours, or the previous step's last)."""
    count = len(ordered_keys)
    if count and previous is not None and ordered_keys[0].as_py() == previous:
        raise ValueError(f"duplicate artifact_key: {previous!r}")
    if count < 2:
        return
    duplicate = pc.equal(ordered_keys.slice(0, count - 1), ordered_keys.slice(1))
    if pc.any(duplicate).as_py():
        dupes = pc.unique(ordered_keys.slice(1).filter(duplicate)).slice(0, 3).to_pylist()
        raise ValueError(f"duplicate artifact_key: {', '.join(map(repr, dupes))}")


def _normalize_hex(table: pa.Table) -> pa.Table:
    """Lower-case hex digests from producers that spell them in upper case (build only: a
    manifest read back must already be canonical, or its digests would not be the buyer's)."""
    for name in HEX_COLUMNS:
        column = table.column(name)
        if not _all_lower_hex64(column):
            index = table.schema.get_field_index(name)
            table = table.set_column(index, MANIFEST_COLUMNS.field(name), pc.ascii_lower(column))
    return table


# ------------------------------------------------------------------------ ordered, in steps


def _step_rows(table: pa.Table) -> int:
    if table.num_rows == 0:
        return 1
    per_row = max(1, table.nbytes // table.num_rows)
    return int(max(1, min(_MAX_STEP_ROWS, _STEP_BYTES // per_row)))


def _steps(table: pa.Table, order: pa.Array | None) -> list[Callable[[], pa.Table]]:
    """The table in canonical order as lazily taken slices (taken in the worker threads)."""
    step = _step_rows(table)
    starts = range(0, table.num_rows, step)
    if order is None:
        return [(lambda start=start: table.slice(start, step)) for start in starts]
    take = _batch_taker(table)
    indices = order.to_numpy().astype(np.int64)  # uint64 minus int64 would turn float
    return [(lambda start=start: take(indices[start : start + step])) for start in starts]


def _batch_taker(table: pa.Table) -> Callable[[np.ndarray], pa.Table]:
    """Rows by global index, gathered batch by batch.

    Table.take on a multi-chunk table concatenates every column first, on every call: a full
    copy of the table per step. Here each batch gives its own rows, then one small take puts
    them back in the requested order.
    """
    batches = table.to_batches()  # zero-copy; aligns columns chunked differently
    if len(batches) <= 1:
        single = batches[0] if batches else table
        return lambda indices: pa.Table.from_batches([single.take(pa.array(indices))])
    bounds = np.cumsum([0] + [batch.num_rows for batch in batches], dtype=np.int64)

    def take(indices: np.ndarray) -> pa.Table:
        batch_of = np.searchsorted(bounds, indices, side="right") - 1
        grouped = np.argsort(batch_of, kind="stable")
        edges = np.searchsorted(batch_of[grouped], np.arange(len(batches) + 1))
        parts = [
            batch.take(pa.array(indices[grouped[lo:hi]] - bounds[number]))
            for number, (batch, lo, hi) in enumerate(
                zip(batches, edges[:-1], edges[1:], strict=True)
            )
            if hi > lo
        ]
        restore = np.empty_like(grouped)
        restore[grouped] = np.arange(len(grouped))
        return pa.Table.from_batches(parts, schema=table.schema).take(pa.array(restore))

    return take


_T = TypeVar("_T")
_R = TypeVar("_R")


def _pipelined(func: Callable[[_T], _R], items: Sequence[_T]) -> Iterator[_R]:
    """func over items on worker threads, results in order, at most a few steps in flight.

    Arrow kernels and hashlib release the GIL, so on N cores N steps really run at once; the
    bound keeps memory at a few steps' worth whatever the table size.
    """
    if _WORKERS == 1 or len(items) < 2:
        yield from map(func, items)
        return
    with ThreadPoolExecutor(_WORKERS) as pool:
        pending: deque[Any] = deque()
        for item in items:
            pending.append(pool.submit(func, item))
            if len(pending) > _WORKERS:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


# ------------------------------------------------------------------------------- digests


def _bundle_lines(chunk: pa.Table) -> pa.ChunkedArray:
    sizes = pc.cast(chunk.column("size_bytes"), pa.string())
    return pc.binary_join_element_wise(
        chunk.column("artifact_key"), "\t", sizes, "\t", chunk.column("sha256"), "\n", ""
    )


@dataclass(frozen=True)
class _DigestStep:
    first_key: str | None
    last_key: str | None
    bundle_lines: pa.ChunkedArray
    json_rows: pa.ChunkedArray | None


def _digests(table: pa.Table, order: pa.Array | None, *, rows: bool = True) -> tuple[str, str]:
    """(bundle_sha256, rows_sha256) in one ordered pass, which also finds duplicate keys."""

    def work(take: Callable[[], pa.Table]) -> _DigestStep:
        chunk = take()
        keys = chunk.column("artifact_key")
        _check_neighbours(keys, None)
        return _DigestStep(
            keys[0].as_py() if len(keys) else None,
            keys[-1].as_py() if len(keys) else None,
            _bundle_lines(chunk),
            _json_rows(chunk) if rows else None,
        )

    bundle, canonical = hashlib.sha256(), hashlib.sha256()
    previous: str | None = None
    for step in _pipelined(work, _steps(table, order)):
        if step.first_key is not None and step.first_key == previous:
            raise ValueError(f"duplicate artifact_key: {previous!r}")
        previous = step.last_key if step.last_key is not None else previous
        for view in _string_data(step.bundle_lines):
            bundle.update(view)
        if step.json_rows is not None:
            for view in _string_data(step.json_rows):
                canonical.update(view)
    return bundle.hexdigest(), canonical.hexdigest()


def bundle_sha256(rows: pa.Table) -> str:
    """The canonical bundle digest (module doc) of rows in any order; columns artifact_key,
    size_bytes and sha256 are required, others ignored. Vectorized: no per-row Python.
    ValueError on duplicate keys (the digest would be ambiguous)."""
    missing = [n for n in ("artifact_key", "size_bytes", "sha256") if n not in rows.column_names]
    if missing:
        raise ValueError(f"rows lack column(s): {', '.join(missing)}")
    fields_ = [MANIFEST_COLUMNS.field(n) for n in ("artifact_key", "size_bytes", "sha256")]
    narrow = pa.Table.from_arrays(
        [rows.column(f.name).cast(f.type) for f in fields_], schema=pa.schema(fields_)
    )
    order = _canonical_order(narrow.column("artifact_key"), find_duplicates=False)
    return _digests(narrow, order, rows=False)[0]


def rows_sha256(rows: pa.Table | Sequence[Mapping[str, Any]]) -> str:
    """The canonical digest of every column of every row (module doc), rows in any order."""
    table = _conform(_as_table(rows))
    return _digests(table, _check_rows(table, find_duplicates=False))[1]


# ------------------------------------------------------------------------- JSON, vectorized


def _json_escape(strings: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """JSON string contents as JCS spells them: escape only quote, backslash and controls."""
    if _has_quote_or_backslash(strings):
        strings = pc.replace_substring(strings, "\\", "\\\\")  # first: later escapes survive
        strings = pc.replace_substring(strings, '"', '\\"')
    if _has_control(strings):
        present = set()
        for data in _byte_arrays(strings):
            present.update(np.unique(data[data < 0x20]).tolist())
        for code in sorted(present):
            char = chr(code)
            escaped = _JSON_SHORT_ESCAPES.get(char, f"\\u{code:04x}")
            strings = pc.replace_substring(strings, char, escaped)
    return strings


def _json_string_list(lists: pa.ChunkedArray) -> pa.ChunkedArray:
    """Each list of strings as a JSON array (``["a","b"]``, ``[]``); a null list stays null."""
    out = []
    for chunk in lists.chunks:
        flat = pc.list_flatten(chunk)  # a null list contributes no values
        escaped = _json_escape(flat)
        if escaped is not flat:  # rare: rebuild the lists around the escaped values
            lengths = pc.fill_null(pc.list_value_length(chunk), 0).to_numpy(zero_copy_only=False)
            offsets = np.zeros(len(chunk) + 1, dtype=np.int32)
            np.cumsum(lengths, out=offsets[1:])
            mask = pc.is_null(chunk) if chunk.null_count else None
            chunk = pa.ListArray.from_arrays(pa.array(offsets), escaped, mask=mask)
        # '","' between items and '["' ... '"]' around: every item quoted, no per-item pass.
        text = pc.binary_join_element_wise('["', pc.binary_join(chunk, '","'), '"]', "")
        empty = pc.equal(pc.list_value_length(chunk), 0)
        if pc.any(empty).as_py():
            text = pc.if_else(empty, "[]", text)
        out.append(text)
    return pa.chunked_array(out, pa.string())


def _json_rows(chunk: pa.Table, close: str = "}") -> pa.ChunkedArray:
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
                value = pc.binary_join_element_wise(opening, value, closing, "")
            value = pc.coalesce(value, "null")
            opening = closing = ""
        pieces += [lead + opening, value, closing]
    pieces.append(close)
    merged: list[Any] = []  # adjacent literals joined: fewer arguments, same bytes
    for piece in pieces:
        if isinstance(piece, str) and merged and isinstance(merged[-1], str):
            merged[-1] += piece
        elif not (isinstance(piece, str) and not piece):
            merged.append(piece)
    return pc.binary_join_element_wise(*merged, "")


# --------------------------------------------------------------------------- build and I/O


def _check_header_text(name: str, value: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string")
    return _one_line(name, value)


def _one_line(name: str, value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError(f"{name} must not contain CR or LF")
    return value


def _iso_time(value: str | datetime) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("created_at must be timezone-aware")
        return value.astimezone(UTC).isoformat()
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"created_at {value!r} is not ISO 8601") from None
    if parsed.tzinfo is None:
        raise ValueError("created_at must carry a UTC offset")
    return _one_line("created_at", value)


def build_manifest(
    rows: pa.Table | Sequence[Mapping[str, Any]],
    *,
    manifest_id: str,
    buyer_id: str,
    delivery_id: str,
    created_at: str | datetime,
    signer: Signer,
) -> Manifest:
    """Validate rows, find their canonical order, digest them and sign the header.

    The rows are not copied: the manifest keeps the given table and the order.
    """
    texts = {"manifest_id": manifest_id, "buyer_id": buyer_id, "delivery_id": delivery_id}
    for name, value in texts.items():
        _check_header_text(name, value)
    if signer.algorithm not in ALGORITHMS:  # a buyer could not verify anything else
        raise ValueError(f"signature algorithm {signer.algorithm!r} is not one of {ALGORITHMS}")
    table = _normalize_hex(_conform(_as_table(rows)))
    order = _check_rows(table, find_duplicates=False)  # the digest pass finds duplicates
    bundle, canonical = _digests(table, order)
    header_fields: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        **texts,
        "created_at": _iso_time(created_at),
        "artifact_count": table.num_rows,
        "total_bytes": int(pc.sum(table.column("size_bytes")).as_py() or 0),
        "bundle_sha256": bundle,
        "rows_sha256": canonical,
        "signature_algorithm": signer.algorithm,
        "key_id": signer.key_id,
    }
    header = ManifestHeader(**header_fields, signature=sign(header_fields, signer))
    return Manifest(header, table, order)


def _header_json(header: ManifestHeader) -> bytes:
    return json.dumps(header.to_dict(), ensure_ascii=False, separators=(",", ":")).encode()


def _parquet_schema(header: ManifestHeader) -> pa.Schema:
    return MANIFEST_COLUMNS.with_metadata({PARQUET_METADATA_KEY: _header_json(header)})


def write_manifest_files(
    manifest: Manifest,
    json_out: BinaryIO | None = None,
    parquet_out: BinaryIO | str | os.PathLike[str] | None = None,
) -> None:
    """Write the JSON and/or the Parquet form in one ordered pass over the rows (each step is
    taken and formatted once for both). Memory stays at a few steps, whatever the size.

    JSON: ``{"header": {...}, "artifacts": [...]}``, one artifact per line in canonical order
    and canonical (JCS) form. Parquet: zstd, the header JSON in the schema metadata under
    ``robotrace.manifest``, rows in canonical order.
    """
    with_json = json_out is not None

    def work(take: Callable[[], pa.Table]) -> tuple[pa.Table, pa.ChunkedArray | None]:
        chunk = take()
        # Each row already followed by ",\n": the step's text is one buffer, written as is.
        return chunk, _json_rows(chunk, "},\n") if with_json else None

    schema = _parquet_schema(manifest.header)
    writer = None
    if parquet_out is not None:
        writer = pq.ParquetWriter(parquet_out, schema, compression="zstd")
    try:
        if json_out is not None:
            json_out.write(b'{"header":' + _header_json(manifest.header) + b',"artifacts":[\n')
        held: memoryview | None = None  # the last view, to drop the final ",\n" at the end
        group: list[pa.Table] = []
        for chunk, text in _pipelined(work, _steps(manifest.table, manifest.order)):
            if writer is not None:
                group.append(chunk)
                if sum(part.num_rows for part in group) >= _ROW_GROUP_ROWS:
                    _write_group(writer, schema, group)
            if json_out is not None and text is not None:
                for view in _string_data(text):
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
        table = pa.Table.from_pylist(artifacts, schema=_LOOSE_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise ValueError(f"manifest artifacts do not match the columns: {error}") from None
    del doc, artifacts  # the dicts are the bulk of the memory: free them before validating
    return _manifest_of(header, table)


_ARTIFACTS_OPEN = b',"artifacts":[\n'
_ARTIFACTS_CLOSE = b"\n]}\n"
_JSON_BLOCK_BYTES = 32 * 1024 * 1024


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
    tables = list(_pipelined(_parse_canonical_block, blocks))
    if any(table is None for table in tables):
        return None
    rows = pa.concat_tables(tables) if tables else _LOOSE_SCHEMA.empty_table()
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
                explicit_schema=_LOOSE_SCHEMA, unexpected_field_behavior="error"
            ),
        )
        table = _conform(table.combine_chunks())
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError):
        return None
    spelled = memoryview(b"".join(_string_data(_json_rows(table, "},\n"))))
    # The last block has no ",\n" after its last row; every other block ends with one.
    extra = 2 if last else 0
    return table if len(spelled) == len(block) + extra and spelled[: len(block)] == block else None


# Every column nullable while parsing, so a missing value becomes a clear null error in
# _check_rows rather than an opaque conversion failure.
_LOOSE_SCHEMA = pa.schema([f.with_nullable(True) for f in MANIFEST_COLUMNS])


def read_manifest_parquet(data: bytes) -> Manifest:
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
    table = _conform(rows)
    return Manifest(header, table, _check_rows(table, find_duplicates=True))


# ------------------------------------------------------------------------------ verification


def verify_manifest(
    manifest: Manifest,
    *,
    hmac_key: bytes | None = None,
    ed25519_public_key: bytes | None = None,
) -> list[str]:
    """Everything wrong with a manifest: rows against the header, header against its
    signature. An empty list means it is intact and was signed by the given key."""
    header = manifest.header
    problems = []
    if header.format_version != FORMAT_VERSION:
        problems.append(f"unsupported format_version {header.format_version!r}")
    try:
        table = _conform(manifest.table)
        # Recomputed, never taken from the manifest: a forged order must not hide a row.
        bundle, canonical = _digests(table, _check_rows(table, find_duplicates=False))
    except ValueError as error:
        return [*problems, f"rows are invalid: {error}"]
    if header.artifact_count != table.num_rows:
        problems.append(f"artifact_count {header.artifact_count} but {table.num_rows} rows")
    total = int(pc.sum(table.column("size_bytes")).as_py() or 0)
    if header.total_bytes != total:
        problems.append(f"total_bytes {header.total_bytes} but rows sum to {total}")
    if header.bundle_sha256 != bundle:
        problems.append(f"bundle_sha256 {header.bundle_sha256} but rows give {bundle}")
    if header.rows_sha256 != canonical:
        problems.append(f"rows_sha256 {header.rows_sha256} but rows give {canonical}")
    try:
        valid = verify_signature(header, hmac_key=hmac_key, ed25519_public_key=ed25519_public_key)
    except ValueError as error:
        problems.append(f"signature not checked: {error}")
    else:
        if not valid:
            problems.append(
                f"signature does not verify ({header.signature_algorithm}, key {header.key_id})"
            )
    return problems


def verify_delivered(
    manifest: Manifest,
    fetch: Callable[[str], Iterable[bytes]],
    *,
    workers: int = 1,
) -> list[str]:
    """Re-read every delivered artifact through ``fetch(artifact_key)`` (an iterable of byte
    chunks) and report each one whose size or SHA-256 differs from the manifest or that cannot
    be fetched. ``workers`` > 1 fetches in threads (network-bound stores). Problems come in
    the table's row order; an empty list means every copy is exact."""
    table = manifest.table
    expected = zip(
        table.column("artifact_key").to_pylist(),
        table.column("size_bytes").to_pylist(),
        table.column("sha256").to_pylist(),
        strict=True,
    )

    def check(item: tuple[str, int, str]) -> str | None:
        key, size, sha256 = item
        digest, seen = hashlib.sha256(), 0
        try:
            for chunk in fetch(key):
                digest.update(chunk)
                seen += len(chunk)
        except Exception as error:  # any failure leaves the copy unverified: report, go on
            return f"{key}: cannot be fetched ({type(error).__name__}: {error})"
        if seen != size:
            return f"{key}: {seen} bytes delivered, manifest says {size}"
        if digest.hexdigest() != sha256:
            return f"{key}: SHA-256 {digest.hexdigest()} delivered, manifest says {sha256}"
        return None

    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(check, expected))
    else:
        results = [check(item) for item in expected]
    return [problem for problem in results if problem is not None]
