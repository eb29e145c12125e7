"""The provider-proof rules: what must hold before a segment may be proxied, reviewed or sold.

This module is the one place that decides. Each rule compares what the envelope declares with
what the store holds and returns a Finding with expected and actual values, so a failure
explains itself. No Dagster, no I/O: the proof asset gathers an Observation and the checks
report these findings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from robotrace_assets import layout
from robotrace_assets.objectstore.multipart import multipart_etag

SIZE = "size_matches_envelope"
SHA256 = "sha256_matches_envelope"
PARTS = "parts_complete_and_contiguous"
ETAG = "multipart_etag_matches_parts"
CONTENT_TYPE = "content_type_expected"
TENANT_PREFIX = "raw_key_in_tenant_prefix"
UNCHANGED = "object_unchanged_since_proof"

CHECK_DESCRIPTIONS = {
    SIZE: "The stored object's size equals the size the segment envelope declares.",
    SHA256: "The SHA-256 of the stored bytes, read in full, equals the envelope's.",
    PARTS: "Multipart parts are numbered 1..N with no gaps, N equals the declared part count, "
    "and their byte ranges tile the object (CompleteMultipartUpload can silently drop a part).",
    ETAG: "The store's multipart ETag equals md5(concat(md5(part)))-N computed from the bytes.",
    CONTENT_TYPE: "The stored Content-Type is the one the envelope declares.",
    TENANT_PREFIX: "The raw key lies inside robotics/raw/<tenant_id>/ with no unsafe segments.",
    UNCHANGED: "The object has not been replaced since its proof was recorded (ETag, size, "
    "last-modified).",
}
CHECK_NAMES: tuple[str, ...] = tuple(CHECK_DESCRIPTIONS)

VERIFIED = "verified"
MISMATCH = "mismatch"
UNREADABLE = "unreadable"
MISSING = "missing"
UNSAFE_KEY = "unsafe_key"


@dataclass(frozen=True)
class Expectation:
    """What the segment envelope declares."""

    segment_id: str
    tenant_id: str
    object_key: str
    size_bytes: int
    sha256: str
    content_type: str
    part_count: int
    part_size_bytes: int


@dataclass(frozen=True)
class PartRow:
    part_number: int
    offset: int
    size: int
    md5: str | None = None


@dataclass(frozen=True)
class Observation:
    """What the store holds, from HEAD (ChecksumMode) and one full read of the bytes."""

    exists: bool
    size: int | None = None
    etag: str | None = None
    content_type: str | None = None
    last_modified: str | None = None
    checksum_sha256: str | None = None
    read_size: int | None = None
    read_sha256: str | None = None
    read_error: str | None = None
    parts: tuple[PartRow, ...] = ()
    parts_source: str | None = None  # "head_part_number" | "declared"
    skipped: str | None = None  # why the object was deliberately not inspected


@dataclass(frozen=True)
class Finding:
    check: str
    passed: bool
    expected: Any
    actual: Any
    description: str

    def metadata(self) -> dict[str, Any]:
        return {"expected": str(self.expected), "actual": str(self.actual)}


def key_is_safe(expect: Expectation) -> tuple[bool, str]:
    try:
        layout.check_key_within(expect.object_key, layout.tenant_raw_prefix(expect.tenant_id))
    except layout.UnsafeKey as error:
        return False, str(error)
    return True, "inside the tenant prefix"


def _unread(expect: Expectation, obs: Observation, check: str, expected: Any) -> Finding | None:
    """The finding for a check that cannot pass because the bytes were never seen."""
    if obs.skipped:
        return Finding(check, False, expected, None, f"not inspected: {obs.skipped}")
    if not obs.exists:
        return Finding(check, False, expected, None, f"object {expect.object_key} does not exist")
    return None


def check_size(expect: Expectation, obs: Observation) -> Finding:
    if (missing := _unread(expect, obs, SIZE, expect.size_bytes)) is not None:
        return missing
    actual = obs.size
    if obs.read_size is not None and obs.read_size != obs.size:
        return Finding(
            SIZE,
            False,
            expect.size_bytes,
            obs.read_size,
            f"HEAD says {obs.size} bytes but the read returned {obs.read_size}",
        )
    if actual == expect.size_bytes:
        return Finding(SIZE, True, expect.size_bytes, actual, "size matches")
    delta = (actual or 0) - expect.size_bytes
    what = f"{-delta} bytes short" if delta < 0 else f"{delta} extra bytes"
    return Finding(SIZE, False, expect.size_bytes, actual, f"object is {what}")


def check_sha256(expect: Expectation, obs: Observation) -> Finding:
    if (missing := _unread(expect, obs, SHA256, expect.sha256)) is not None:
        return missing
    if obs.read_error:
        return Finding(SHA256, False, expect.sha256, None, f"bytes unreadable: {obs.read_error}")
    if obs.read_sha256 is None:
        return Finding(SHA256, False, expect.sha256, None, "bytes were not read")
    if obs.read_sha256 == expect.sha256:
        return Finding(SHA256, True, expect.sha256, obs.read_sha256, "SHA-256 of the bytes matches")
    return Finding(
        SHA256, False, expect.sha256, obs.read_sha256, "SHA-256 of the stored bytes differs"
    )


def check_parts(expect: Expectation, obs: Observation) -> Finding:
    expected = f"{expect.part_count} parts tiling {expect.size_bytes} bytes"
    if (missing := _unread(expect, obs, PARTS, expected)) is not None:
        return missing
    parts = sorted(obs.parts, key=lambda p: p.part_number)
    problems: list[str] = []
    numbers = [p.part_number for p in parts]
    if numbers != list(range(1, len(parts) + 1)):
        gaps = sorted(set(range(1, max(numbers, default=0) + 1)) - set(numbers))
        problems.append(f"part numbers {numbers} have gaps {gaps}")
    if len(parts) != expect.part_count:
        problems.append(f"{len(parts)} of {expect.part_count} declared parts are in the object")
    position = 0
    for part in parts:
        if part.offset != position:
            problems.append(f"part {part.part_number} starts at {part.offset}, not {position}")
        position = part.offset + part.size
    if obs.size is not None and position != obs.size:
        problems.append(f"parts cover {position} of {obs.size} bytes")
    unequal = [p.part_number for p in parts[:-1] if p.size != expect.part_size_bytes]
    if unequal:
        problems.append(f"parts {unequal} are not {expect.part_size_bytes} bytes")
    actual = f"{len(parts)} parts covering {position} bytes ({obs.parts_source})"
    if problems:
        return Finding(PARTS, False, expected, actual, "; ".join(problems))
    return Finding(PARTS, True, expected, actual, "parts complete and contiguous")


def check_etag(expect: Expectation, obs: Observation) -> Finding:
    if (missing := _unread(expect, obs, ETAG, "md5 of the parts")) is not None:
        return missing
    md5s = [p.md5 for p in obs.parts]
    if obs.read_error or not md5s or any(m is None for m in md5s):
        return Finding(ETAG, False, obs.etag, None, "part digests unavailable: bytes not read")
    stored = (obs.etag or "").strip('"')
    if "-" in stored:
        computed = multipart_etag([bytes.fromhex(m) for m in md5s])  # type: ignore[arg-type]
    else:  # a single PUT: the ETag is the MD5 of the whole object
        computed = md5s[0] if len(md5s) == 1 else "(several parts, but a single-PUT ETag)"
    if computed == stored:
        return Finding(ETAG, True, stored, computed, "ETag matches the part digests")
    return Finding(ETAG, False, stored, computed, "store ETag differs from the part digests")


def check_content_type(expect: Expectation, obs: Observation) -> Finding:
    if (missing := _unread(expect, obs, CONTENT_TYPE, expect.content_type)) is not None:
        return missing
    passed = obs.content_type == expect.content_type
    return Finding(
        CONTENT_TYPE,
        passed,
        expect.content_type,
        obs.content_type,
        "content type matches" if passed else "unexpected content type",
    )


def check_tenant_prefix(expect: Expectation, obs: Observation) -> Finding:
    passed, why = key_is_safe(expect)
    return Finding(
        TENANT_PREFIX, passed, layout.tenant_raw_prefix(expect.tenant_id), expect.object_key, why
    )


RULES: dict[str, Callable[[Expectation, Observation], Finding]] = {
    SIZE: check_size,
    SHA256: check_sha256,
    PARTS: check_parts,
    ETAG: check_etag,
    CONTENT_TYPE: check_content_type,
    TENANT_PREFIX: check_tenant_prefix,
}


@dataclass(frozen=True)
class ProofVerdict:
    findings: tuple[Finding, ...]
    status: str = field(default=VERIFIED)

    @property
    def passed(self) -> bool:
        return self.status == VERIFIED

    def failed(self) -> list[Finding]:
        return [f for f in self.findings if not f.passed]


def evaluate(expect: Expectation, obs: Observation) -> ProofVerdict:
    findings = tuple(rule(expect, obs) for rule in RULES.values())
    if not key_is_safe(expect)[0]:
        status = UNSAFE_KEY
    elif not obs.exists:
        status = MISSING
    elif obs.read_error:
        status = UNREADABLE
    elif all(f.passed for f in findings):
        status = VERIFIED
    else:
        status = MISMATCH
    return ProofVerdict(findings, status)


def check_unchanged(recorded: dict[str, Any], current: Observation) -> Finding:
    """Compare the object now with the object as it was when its proof was recorded."""
    expected = {
        "etag": recorded.get("etag"),
        "size": recorded.get("byte_size"),
        "last_modified": recorded.get("last_modified"),
    }
    actual = {"etag": current.etag, "size": current.size, "last_modified": current.last_modified}
    if not current.exists:
        return Finding(UNCHANGED, False, expected, None, "the proven object has been deleted")
    changed = [k for k in expected if expected[k] != actual[k]]
    if changed:
        return Finding(
            UNCHANGED,
            False,
            expected,
            actual,
            f"object replaced after its proof ({', '.join(changed)} changed): re-prove it",
        )
    return Finding(UNCHANGED, True, expected, actual, "object unchanged since proof")


def declared_parts(size: int, part_size: int, count_hint: int | None = None) -> list[PartRow]:
    """Part ranges implied by equal parts of `part_size` (the fallback when the store cannot
    report part boundaries)."""
    count = count_hint or max(1, -(-size // part_size))
    rows = []
    for number in range(1, count + 1):
        offset = (number - 1) * part_size
        rows.append(PartRow(number, offset, max(0, min(part_size, size - offset))))
    return rows


def parts_from_rows(rows: Sequence[dict[str, Any]]) -> tuple[PartRow, ...]:
    return tuple(PartRow(r["part_number"], r["offset"], r["size"], r.get("md5")) for r in rows)
