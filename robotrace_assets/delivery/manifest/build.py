"""Building a manifest: check the rows, find their canonical order, digest them, sign."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from robotrace_assets.delivery.manifest import compute as ac
from robotrace_assets.delivery.manifest.digest import digests
from robotrace_assets.delivery.manifest.model import Manifest, ManifestHeader, one_line
from robotrace_assets.delivery.manifest.rows import as_table, check_rows, conform, normalize_hex
from robotrace_assets.delivery.manifest.schema import FORMAT_VERSION
from robotrace_assets.delivery.manifest.signing import ALGORITHMS, Signer, sign


def _check_header_text(name: str, value: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string")
    return one_line(name, value)


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
    return one_line("created_at", value)


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
    table = normalize_hex(conform(as_table(rows)))
    order = check_rows(table, find_duplicates=False)  # the digest pass finds duplicates
    bundle, canonical = digests(table, order)
    header_fields: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        **texts,
        "created_at": _iso_time(created_at),
        "artifact_count": table.num_rows,
        "total_bytes": ac.total(table.column("size_bytes")),
        "bundle_sha256": bundle,
        "rows_sha256": canonical,
        "signature_algorithm": signer.algorithm,
        "key_id": signer.key_id,
    }
    header = ManifestHeader(**header_fields, signature=sign(header_fields, signer))
    return Manifest(header, table, order)
