"""Checking a delivery as its buyer: is the manifest ours and intact, and are the files exact?

What a buyer needs: the manifest (``manifest.json``, or ``manifest.parquet``, which carries the
same signed header in its schema metadata) and the key named by the header's ``key_id``: the
shared HMAC key for ``hmac-sha256`` manifests, or our Ed25519 public key (PEM or 32 raw bytes)
for ``ed25519`` ones. Nothing here needs the object store, Dagster or network access.

What is checked:

- the rows are well formed (every column of the right type, hex digests, unique keys);
- ``artifact_count`` and ``total_bytes`` match the rows;
- ``bundle_sha256`` and ``rows_sha256`` match digests recomputed from the rows (the recipes are
  in the package doc, ``robotrace_assets/delivery/manifest/__init__.py``), so no row can be
  added, dropped or edited, its lineage, consent, license and review fields included;
- the signature is valid for the header under the given key (the ``key_id`` is signed too);
- every delivered file has the manifest's size and SHA-256 (``verify_delivered`` reads them
  through any fetch function; ``verify_delivery_directory`` from a directory on disk).

What comes back: a list of problems, one sentence each, naming the artifact key or header field
at fault; an empty list means all is well. Nothing raises for a bad delivery; reading a
malformed manifest file (``read.read_manifest_file``) raises ValueError. Keys never appear in a
problem: only their ``key_id``.

On disk, an artifact is looked for at its key with the delivery prefix
``robotics/deliveries/<buyer_id>/<delivery_id>/`` taken off (what
``aws s3 sync s3://<bucket>/robotics/deliveries/<buyer_id>/<delivery_id>/ <directory>`` lays
out), and a key outside that prefix (a presigned-link delivery) at the whole key.
``robotrace verify <directory>`` runs all of this from the command line.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

from robotrace_assets import layout
from robotrace_assets.delivery.manifest import compute as ac
from robotrace_assets.delivery.manifest.digest import digests
from robotrace_assets.delivery.manifest.model import Manifest, ManifestHeader
from robotrace_assets.delivery.manifest.rows import check_rows, conform
from robotrace_assets.delivery.manifest.schema import FORMAT_VERSION
from robotrace_assets.delivery.manifest.signing import verify_signature

_READ_BYTES = 1024 * 1024


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
        table = conform(manifest.table)
        # Recomputed, never taken from the manifest: a forged order must not hide a row.
        bundle, canonical = digests(table, check_rows(table, find_duplicates=False))
    except ValueError as error:
        return [*problems, f"rows are invalid: {error}"]
    if header.artifact_count != table.num_rows:
        problems.append(f"artifact_count {header.artifact_count} but {table.num_rows} rows")
    total = ac.total(table.column("size_bytes"))
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


def artifact_path(directory: Path, header: ManifestHeader, artifact_key: str) -> Path:
    """Where a received artifact lies under ``directory`` (module doc); ValueError for a key
    that would lead outside it (``..``, an absolute path)."""
    prefix = layout.delivery_prefix(header.buyer_id, header.delivery_id)
    relative = PurePosixPath(artifact_key.removeprefix(prefix))
    if relative.is_absolute() or not relative.parts or ".." in relative.parts:
        raise ValueError(f"artifact key {artifact_key!r} leads outside the delivery directory")
    return directory.joinpath(*relative.parts)


def directory_fetcher(directory: Path, header: ManifestHeader) -> Callable[[str], Iterator[bytes]]:
    """``fetch`` for verify_delivered that reads received files under ``directory``."""

    def fetch(artifact_key: str) -> Iterator[bytes]:
        path = artifact_path(directory, header, artifact_key)
        if not path.is_file():
            raise FileNotFoundError(f"no file at {path}")
        with path.open("rb") as handle:
            while chunk := handle.read(_READ_BYTES):
                yield chunk

    return fetch


def verify_delivery_directory(
    directory: Path,
    manifest: Manifest,
    *,
    hmac_key: bytes | None = None,
    ed25519_public_key: bytes | None = None,
    workers: int = 4,
) -> list[str]:
    """verify_manifest, then every file's size and SHA-256 under ``directory`` against it.
    Files are hashed only when the manifest itself holds: otherwise its sizes and digests
    prove nothing."""
    problems = verify_manifest(manifest, hmac_key=hmac_key, ed25519_public_key=ed25519_public_key)
    if problems:
        return [*problems, "files not checked: the manifest itself does not verify"]
    fetch = directory_fetcher(directory, manifest.header)
    return verify_delivered(manifest, fetch, workers=workers)
