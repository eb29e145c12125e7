"""API keys `rt_<id>_<secret>`: minting, parsing, hashing and constant-time comparison.

The id (10 lowercase hex, as RoboTrace's `rt_8a4f01c2b3_...`) names the row; the secret (32
random bytes, URL-safe base64) is shown once and only its SHA-256 is stored. The secret has 256
bits of entropy, so a plain SHA-256 is as strong as a slow hash here and keeps every request cheap.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

PREFIX = "rt"
SCOPE_INGEST = "ingest:write"  # open, regenerate URLs, finalize episodes
SCOPE_READ = "episodes:read"  # episode reads and auth-gated artifact reads
SCOPE_MEDIA = "media:write"  # large-media sessions, segments and parts
SCOPE_ROBOTICS = "robotics:write"  # teleop sessions API (/v1/robotics)
ALL_SCOPES = (SCOPE_INGEST, SCOPE_READ, SCOPE_MEDIA, SCOPE_ROBOTICS)
DEFAULT_SCOPES = (SCOPE_INGEST, SCOPE_READ, SCOPE_MEDIA)

_KEY_RE = re.compile(r"^rt_([0-9a-f]{10})_([A-Za-z0-9_-]{43})$")
# Compared against when the id is unknown, so that path costs the same as a wrong secret.
_DUMMY_HASH = hashlib.sha256(b"robotrace-no-such-key").hexdigest()


class KeyFormatError(ValueError):
    pass


@dataclass(frozen=True)
class MintedKey:
    key_id: str
    secret: str

    @property
    def token(self) -> str:
        """The full key, shown once to its owner and never stored or logged."""
        return f"{PREFIX}_{self.key_id}_{self.secret}"

    @property
    def secret_sha256(self) -> str:
        return hash_secret(self.secret)


def mint() -> MintedKey:
    return MintedKey(key_id=secrets.token_hex(5), secret=secrets.token_urlsafe(32))


def parse(token: str) -> tuple[str, str]:
    """(key id, secret) of a well-formed key; KeyFormatError otherwise."""
    match = _KEY_RE.match(token)
    if not match:
        raise KeyFormatError("not an rt_<id>_<secret> key")
    return match.group(1), match.group(2)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_sha256: str | None) -> bool:
    """Constant-time comparison of a presented secret with a stored hash (None: unknown id)."""
    expected = stored_sha256 if stored_sha256 is not None else _DUMMY_HASH
    ok = hmac.compare_digest(hash_secret(secret), expected)
    return ok and stored_sha256 is not None


def check_scopes(scopes: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    unknown = sorted(set(scopes) - set(ALL_SCOPES))
    if unknown:
        raise ValueError(f"unknown scopes {unknown}; known: {list(ALL_SCOPES)}")
    return tuple(dict.fromkeys(scopes))
