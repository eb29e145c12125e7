"""``robotrace verify DIRECTORY (--hmac-key-file FILE | --public-key FILE) [--manifest PATH]``.

What a buyer runs on a received delivery: checks the manifest's signature and digests and every
file's size and SHA-256 (robotrace_assets/delivery/manifest/verify.py says exactly what). Exit 0
with a one-paragraph summary when all is well, 1 with the list of problems when not, 2 when it
cannot start (no manifest, no key, a key of the wrong kind). Keys are never printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from robotrace_assets.delivery.manifest.model import ManifestHeader

COMMANDS = ("verify",)
_SHOWN_PROBLEMS = 100  # a delivery with every file missing would otherwise print them all


class _Refused(Exception):
    """The check cannot start; the message says why (never with key material)."""


def register(commands: argparse._SubParsersAction) -> None:
    verify = commands.add_parser(
        "verify", help="check a received delivery against its signed manifest"
    )
    verify.add_argument("directory", type=Path, help="the delivery as received (synced prefix)")
    verify.add_argument(
        "--manifest",
        type=Path,
        metavar="PATH",
        help="manifest.json or manifest.parquet, a path or a name in the directory "
        "(default: manifest.json there, else manifest.parquet)",
    )
    keys = verify.add_mutually_exclusive_group(required=True)
    keys.add_argument(
        "--hmac-key-file",
        type=Path,
        metavar="FILE",
        help="file holding the shared HMAC key (hmac-sha256)",
    )
    keys.add_argument(
        "--public-key",
        type=Path,
        metavar="FILE",
        help="our Ed25519 public key, PEM or 32 raw bytes (ed25519)",
    )
    verify.add_argument("--workers", type=int, default=4, metavar="N", help="files hashed at once")


def run(args: argparse.Namespace) -> int:
    from robotrace_assets.delivery.manifest.read import read_manifest_file
    from robotrace_assets.delivery.manifest.signing import HMAC_SHA256
    from robotrace_assets.delivery.manifest.verify import verify_delivery_directory

    try:
        manifest_path = _manifest_path(args.directory, args.manifest)
        keys = _keys(args)
    except _Refused as error:
        print(f"refused: {error}", file=sys.stderr)
        return 2
    try:
        manifest = read_manifest_file(manifest_path)
    except OSError as error:
        print(f"refused: cannot read {manifest_path}: {error.strerror}", file=sys.stderr)
        return 2
    except ValueError as error:  # a damaged manifest is a failed check, not a usage error
        print(f"NOT verified: {manifest_path} is not a readable manifest: {error}", file=sys.stderr)
        return 1
    header = manifest.header
    hmac_signed = header.signature_algorithm == HMAC_SHA256
    if ("hmac_key" in keys) != hmac_signed:
        option = "--hmac-key-file" if hmac_signed else "--public-key"
        print(
            f"refused: the manifest is signed with {header.signature_algorithm} "
            f"(key id {header.key_id}): give {option}",
            file=sys.stderr,
        )
        return 2
    problems = verify_delivery_directory(
        args.directory, manifest, workers=max(1, args.workers), **keys
    )
    return _report(header, manifest_path.name, problems)


def _report(header: ManifestHeader, manifest_name: str, problems: list[str]) -> int:
    what = (
        f"delivery {header.delivery_id} for {header.buyer_id}, manifest {header.manifest_id} "
        f"({manifest_name})"
    )
    if problems:
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        print(f"NOT verified: {what}: {count}", file=sys.stderr)
        for problem in problems[:_SHOWN_PROBLEMS]:
            print(f"  - {problem}", file=sys.stderr)
        if len(problems) > _SHOWN_PROBLEMS:
            print(f"  ... and {len(problems) - _SHOWN_PROBLEMS} more", file=sys.stderr)
        return 1
    print(
        f"verified: {what}\n"
        f"  signature: {header.signature_algorithm} by key {header.key_id}, valid\n"
        "  digests: bundle_sha256 and rows_sha256 recomputed from the rows, equal\n"
        f"  files: all {header.artifact_count} ({header.total_bytes} bytes) have the manifest's "
        "size and SHA-256\n"
        f"  bundle_sha256 {header.bundle_sha256}"
    )
    return 0


def _manifest_path(directory: Path, given: Path | None) -> Path:
    if not directory.is_dir():
        raise _Refused(f"{directory} is not a directory")
    if given is not None:
        for candidate in (given, directory / given):
            if candidate.is_file():
                return candidate
        raise _Refused(f"no manifest at {given} (nor in {directory})")
    for name in ("manifest.json", "manifest.parquet"):
        if (directory / name).is_file():
            return directory / name
    raise _Refused(f"no manifest.json or manifest.parquet in {directory}; give --manifest")


def _keys(args: argparse.Namespace) -> dict[str, bytes]:
    """The key given, by verify_manifest's keyword. Errors name the file, never its bytes."""
    path, name = (
        (args.hmac_key_file, "hmac_key")
        if args.hmac_key_file is not None
        else (args.public_key, "ed25519_public_key")
    )
    try:
        data = path.read_bytes()
    except OSError as error:
        raise _Refused(f"cannot read the key file {path}: {error.strerror}") from None
    if name == "hmac_key":
        data = data.removesuffix(b"\n").removesuffix(b"\r")  # as `echo KEY > file` leaves it
    if not data:
        raise _Refused(f"the key file {path} is empty")
    if name == "ed25519_public_key":
        from cryptography.exceptions import UnsupportedAlgorithm

        from robotrace_assets.delivery.manifest.signing import ed25519_public_key

        try:
            ed25519_public_key(data)
        except (ValueError, UnsupportedAlgorithm) as error:
            raise _Refused(f"{path}: {error}") from None
    return {name: data}
