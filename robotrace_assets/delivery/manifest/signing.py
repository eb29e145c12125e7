"""Signing a manifest header: the signed message, HMAC-SHA256 and Ed25519 signers, checking.

``cryptography`` is imported only where Ed25519 is used: deployments that sign with HMAC alone
do not need it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from robotrace_assets.delivery.manifest.model import ManifestHeader, one_line

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

HMAC_SHA256 = "hmac-sha256"
ED25519 = "ed25519"
ALGORITHMS = (HMAC_SHA256, ED25519)
SIGNING_PREFIX = b"robotrace-export-manifest\n"
MIN_HMAC_KEY_BYTES = 16  # shorter keys are guessable; RFC 2104 recommends the hash length (32)
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
    """The canonical bytes a signature covers (package doc): every field but the signature."""
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
        self.key_id = one_line("key_id", key_id)

    def sign(self, message: bytes) -> str:
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def __repr__(self) -> str:  # never show the secret in logs or tracebacks
        return f"HmacSigner(key_id={self.key_id!r})"


class Ed25519Signer:
    """Ed25519: the buyer verifies with our public key and cannot forge manifests."""

    algorithm = ED25519

    def __init__(self, private_key: bytes | str, key_id: str) -> None:
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
        self.key_id = one_line("key_id", key_id)

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
    return verify_message(
        header.signature_algorithm,
        header.signature,
        message,
        what=f"manifest (key {header.key_id})",
        hmac_key=hmac_key,
        ed25519_public_key=ed25519_public_key,
    )


def verify_message(
    algorithm: str,
    signature: str,
    message: bytes,
    *,
    what: str,
    hmac_key: bytes | None = None,
    ed25519_public_key: bytes | None = None,
) -> bool:
    """True if `signature` signs `message` under the given key of `algorithm`: the one check
    behind manifests and payout batches. ValueError if no key of that algorithm was given."""
    if algorithm == HMAC_SHA256:
        if hmac_key is None:
            raise ValueError(f"{what} is signed with {HMAC_SHA256}: pass hmac_key")
        expected = hmac.new(hmac_key, message, hashlib.sha256).hexdigest().encode()
        # Constant time: a byte-by-byte compare would leak how much of a forgery is right.
        return hmac.compare_digest(expected, signature.encode())
    if algorithm == ED25519:
        if ed25519_public_key is None:
            raise ValueError(f"{what} is signed with {ED25519}: pass ed25519_public_key")
        return _ed25519_valid(signature, message, ed25519_public_key)
    raise ValueError(f"unknown signature algorithm {algorithm!r}")


def _ed25519_valid(signature: str, message: bytes, public_key: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature

    public = ed25519_public_key(public_key)
    # Exactly 128 lowercase hex digits: bytes.fromhex alone would also accept spaces and
    # upper case, so differently spelled headers would verify alike.
    if not re.fullmatch(r"[0-9a-f]{128}", signature):
        return False
    try:
        public.verify(bytes.fromhex(signature), message)
    except InvalidSignature:
        return False
    return True


def ed25519_public_key(data: bytes) -> Ed25519PublicKey:
    """A public key from PEM (SubjectPublicKeyInfo) or 32 raw bytes; ValueError otherwise."""
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
