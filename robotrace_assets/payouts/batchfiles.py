"""A payout batch's files (pure): rows as Parquet and CSV, and a signed header (batch.json).

Signed like export manifests (delivery/manifest/signing.py): the same HMAC-SHA256 or Ed25519
signers and keys, over a message of `name=value` lines with its own prefix, so a manifest
signature can never be replayed as a batch signature. The header pins both files by SHA-256.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from robotrace_assets.delivery.manifest.signing import Signer, verify_message

FORMAT_VERSION = "1"
SIGNING_PREFIX = b"robotrace-payout-batch\n"
SIGNED_FIELDS = (
    "format_version",
    "batch_id",
    "created_at",
    "created_by",
    "reason",
    "row_count",
    "currency_totals",
    "rate_card_sha256",
    "parquet_sha256",
    "csv_sha256",
    "signature_algorithm",
    "key_id",
)
BATCH_COLUMNS = pa.schema(
    [
        ("batch_id", pa.string()),
        ("segment_id", pa.string()),
        ("media_session_id", pa.string()),
        ("tenant_id", pa.string()),
        ("operator_id", pa.string()),
        ("task_brief_id", pa.string()),
        ("device_tier", pa.int32()),
        ("currency", pa.string()),
        ("approved_minutes", pa.decimal128(14, 4)),
        ("amount", pa.decimal128(18, 2)),
        ("approved_by", pa.string()),
        ("approved_at", pa.string()),
        ("approval_reason", pa.string()),
    ]
)


def table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist([dict(r) for r in rows], BATCH_COLUMNS)


def parquet_bytes(rows: Sequence[Mapping[str, Any]]) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table(rows), buffer, compression="zstd")
    return buffer.getvalue()


def csv_bytes(rows: Sequence[Mapping[str, Any]]) -> bytes:
    buffer = io.BytesIO()
    pacsv.write_csv(table(rows), buffer)  # decimals are written as exact text
    return buffer.getvalue()


def currency_totals(rows: Sequence[Mapping[str, Any]]) -> str:
    totals: dict[str, Decimal] = {}
    for row in rows:
        totals[row["currency"]] = totals.get(row["currency"], Decimal(0)) + row["amount"]
    return json.dumps({k: str(v) for k, v in sorted(totals.items())}, separators=(",", ":"))


def signing_message(header: Mapping[str, Any]) -> bytes:
    lines = [SIGNING_PREFIX]
    for name in SIGNED_FIELDS:
        value = header.get(name)
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(text, str) or "\n" in text or "\r" in text:
            raise ValueError(f"batch header field {name!r} must be one line of text or a number")
        lines.append(f"{name}={text}\n".encode())
    return b"".join(lines)


def signed_header(fields: Mapping[str, Any], parquet: bytes, csv: bytes, signer: Signer) -> dict:
    header = {
        "format_version": FORMAT_VERSION,
        **fields,
        "parquet_sha256": hashlib.sha256(parquet).hexdigest(),
        "csv_sha256": hashlib.sha256(csv).hexdigest(),
        "signature_algorithm": signer.algorithm,
        "key_id": signer.key_id,
    }
    header["signature"] = signer.sign(signing_message(header))
    return header


def verify_batch(
    header: Mapping[str, Any],
    parquet: bytes,
    csv: bytes,
    *,
    hmac_key: bytes | None = None,
    ed25519_public: bytes | None = None,
) -> list[str]:
    """Problems with a received batch ([]: its signature and both files check out)."""
    problems = []
    for name, data in (("parquet", parquet), ("csv", csv)):
        if hashlib.sha256(data).hexdigest() != header.get(f"{name}_sha256"):
            problems.append(f"{name} file does not match the signed SHA-256")
    try:
        message = signing_message(header)
        valid = verify_message(
            str(header.get("signature_algorithm")),
            str(header.get("signature", "")),
            message,
            what=f"payout batch {header.get('batch_id')}",
            hmac_key=hmac_key,
            ed25519_public_key=ed25519_public,
        )
    except ValueError as error:
        return [*problems, str(error)]
    return problems if valid else [*problems, "signature does not verify"]
