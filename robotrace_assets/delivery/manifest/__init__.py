"""Export manifests: exactly what a buyer received, signed so they can check integrity and origin.

A manifest is one header plus one row per delivered artifact (raw video, sensor log, proxy,
thumbnails, contact sheet, LeRobot files, telemetry MCAP) with its key, size, SHA-256, segment
lineage, consent and license references, safety rules version and review decision. It is
written as JSON (for buyers) and Parquet (for us and for buyers with Arrow); both carry the same
header. No Dagster. One job per module:

    schema     the columns and fixed values          model      ManifestHeader, Manifest
    signing    signed message, signers, checking     rows       row checks, canonical order
    canonical  rows as JCS JSON (vectorized)         digest     bundle_sha256, rows_sha256
    steps      ordered, threaded passes over rows    build      build_manifest
    write      JSON and Parquet writers              read       JSON and Parquet readers
    verify     the buyer-side checks (public)        compute    typed Arrow kernels

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
