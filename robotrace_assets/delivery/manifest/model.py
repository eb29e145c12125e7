"""What a manifest is: its header (which a signature covers) and its rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import pyarrow as pa

from robotrace_assets.delivery.manifest.schema import FORMAT_VERSION


def one_line(name: str, value: str) -> str:
    """``value`` unchanged; ValueError if it holds CR or LF (a signed line would be ambiguous)."""
    if "\n" in value or "\r" in value:
        raise ValueError(f"{name} must not contain CR or LF")
    return value


@dataclass(frozen=True)
class ManifestHeader:
    """What the manifest is and who signed it; ``signature`` is lowercase hex (package doc)."""

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
    def from_dict(cls, doc: object) -> ManifestHeader:
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
