"""Domain identifiers: `<kind>_<ULID>`, e.g. `sess_01J...` (session), `seg_01J...` (segment).

Ids become Dagster partition keys and object-key path segments, so they are validated strictly:
Crockford base32 only, which rules out `/`, `..`, `,` and `|` by construction.
"""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ULID_PATTERN = r"[0-9A-HJKMNP-TV-Z]{26}"

KINDS = (
    "sess",  # capture session (the session_id of a clip object)
    "msess",  # media session: the parent of segments
    "seg",
    "cap",
    "op",
    "ten",
    "tb",
    "consent",
    "lic",
    "clip",
    "dec",  # a reviewer decision
)
_ID_RE = {kind: re.compile(rf"^{kind}_{ULID_PATTERN}$") for kind in KINDS}


class InvalidId(ValueError):
    pass


def ulid(at: datetime, rng: random.Random) -> str:
    """A ULID for `at` whose 80 random bits come from `rng` (deterministic for a seeded rng)."""
    millis = int(at.timestamp() * 1000)
    value = (millis << 80) | rng.getrandbits(80)
    chars = []
    for _ in range(26):
        chars.append(CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_id(kind: str, at: datetime, rng: random.Random) -> str:
    if kind not in _ID_RE:
        raise InvalidId(f"unknown id kind {kind!r}")
    return f"{kind}_{ulid(at, rng)}"


def is_id(kind: str, value: object) -> bool:
    return isinstance(value, str) and bool(_ID_RE[kind].match(value))


def check_id(kind: str, value: object) -> str:
    if not is_id(kind, value):
        raise InvalidId(f"{value!r} is not a valid {kind} id (expected {kind}_<26-char ULID>)")
    return value  # type: ignore[return-value]


def id_time(value: str) -> datetime:
    """When the id was minted: the 48-bit millisecond time at the head of its ULID.

    Segment and session ids are minted at capture, so this is the capture time without reading
    a record; lifecycle ages and the daily partitions of the review sets key off it.
    """
    ulid_part = value.rsplit("_", 1)[-1]
    millis = 0
    for char in ulid_part[:10]:
        millis = millis * 32 + CROCKFORD.index(char)
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


def id_day(value: str) -> str:
    """The UTC day (YYYY-MM-DD) the id was minted."""
    return id_time(value).strftime("%Y-%m-%d")


def derived_id(kind: str, parent_id: str, salt: str) -> str:
    """A stable child id: the parent's ULID time part and 80 bits from hashing (parent, salt).

    Re-cutting a segment gives its clips the same ids, so reviewer decisions stay attached.
    """
    import hashlib

    time_part = parent_id.rsplit("_", 1)[-1][:10]
    digest = int.from_bytes(hashlib.sha256(f"{parent_id}:{salt}".encode()).digest()[:10], "big")
    chars = []
    for _ in range(16):
        chars.append(CROCKFORD[digest & 31])
        digest >>= 5
    return f"{kind}_{time_part}{''.join(reversed(chars))}"
