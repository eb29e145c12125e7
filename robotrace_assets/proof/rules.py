"""The provider-proof rules: what must hold before a segment may be proxied, reviewed or sold.

This module is the one place that decides. Each rule compares what the envelope declares with
what the store holds and returns a Finding with expected and actual values, so a failure
explains itself. No Dagster, no I/O: the proof asset gathers an Observation and the checks
report these findings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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
SESSION = "segment_belongs_to_session"
OBJECTS = "declared_objects_proven"
UNCHANGED = "object_unchanged_since_proof"

CHECK_DESCRIPTIONS = {
    SIZE: "The stored object's size equals the size the segment envelope declares.",
    SHA256: "The SHA-256 of the stored bytes, read in full, equals the envelope's (when the "
    "client declared none, the SHA-256 read is recorded as observed, not declared).",
    PARTS: "Multipart parts are numbered 1..N with no gaps, N equals the store's part count, and "
    "their byte ranges tile the object (CompleteMultipartUpload can silently drop a part). The "
    "declared part size is a hint: a client's own part size is reported, not refused.",
    ETAG: "The store's multipart ETag equals md5(concat(md5(part)))-N computed from the bytes.",
    CONTENT_TYPE: "The stored Content-Type is the one the envelope declares.",
    TENANT_PREFIX: "The raw key lies inside robotics/raw/<tenant_id>/ with no unsafe segments.",
    SESSION: "The segment's media session exists, belongs to the same tenant and lists this "
    "segment: consent, license and provenance are taken from that session only.",
    OBJECTS: "Every other object the segment declares (sensor log, actions, depth...) exists "
    "inside the tenant prefix with its declared size, content type and SHA-256 (when declared).",
    UNCHANGED: "No proven object (raw video or declared object) has been replaced or deleted "
    "since its proof was recorded (ETag, size, last-modified).",
}
CHECK_NAMES: tuple[str, ...] = tuple(CHECK_DESCRIPTIONS)
# Bump when a rule above changes what it accepts: the provider_proof asset's code version, so
# the UI shows which proofs were made under older rules.
RULES_VERSION = "2026.11-9checks"

VERIFIED = "verified"
MISMATCH = "mismatch"
UNREADABLE = "unreadable"
MISSING = "missing"
UNSAFE_KEY = "unsafe_key"
STALE = "stale"  # proven once, then an object was replaced or deleted
PROVEN_STATES = (VERIFIED, STALE)  # a segment that passed its proof once: its envelope is final


@dataclass(frozen=True)
class ObjectExpectation:
    """An object a segment declares besides its raw video (sensor log, actions, depth...)."""

    role: str
    object_key: str
    size_bytes: int
    sha256: str | None
    content_type: str | None  # None: not declared (the sensors block names a format instead)


@dataclass(frozen=True)
class Expectation:
    """What the segment envelope declares."""

    segment_id: str
    tenant_id: str
    object_key: str
    size_bytes: int
    sha256: str | None  # None: the client declared no hash; the proof records what it read
    content_type: str
    part_count: int
    part_size_bytes: int
    media_session_id: str = ""
    objects: tuple[ObjectExpectation, ...] = ()


@dataclass(frozen=True)
class ObjectObservation:
    """What the store holds for one declared object: HEAD, then one full read."""

    role: str
    object_key: str
    exists: bool
    size: int | None = None
    etag: str | None = None
    content_type: str | None = None
    last_modified: str | None = None
    read_sha256: str | None = None
    read_error: str | None = None
    skipped: str | None = None


@dataclass(frozen=True)
class SessionFacts:
    """What the segment's media session envelope says about the segment."""

    media_session_id: str
    found: bool
    tenant_id: str | None = None
    lists_segment: bool = False
    error: str | None = None


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
    objects: tuple[ObjectObservation, ...] = ()
    session: SessionFacts | None = None


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
        return Finding(
            check, False, expected, None, f"raw object missing: {expect.object_key} does not exist"
        )
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
    declared = expect.sha256 or "(not declared by the client)"
    if (missing := _unread(expect, obs, SHA256, declared)) is not None:
        return missing
    if obs.read_error:
        return Finding(SHA256, False, declared, None, f"bytes unreadable: {obs.read_error}")
    if obs.read_sha256 is None:
        return Finding(SHA256, False, declared, None, "bytes were not read")
    if expect.sha256 is None:
        return Finding(
            SHA256, True, declared, obs.read_sha256, "observed only: the client declared no SHA-256"
        )
    if obs.read_sha256 == expect.sha256:
        return Finding(SHA256, True, declared, obs.read_sha256, "SHA-256 of the bytes matches")
    return Finding(SHA256, False, declared, obs.read_sha256, "SHA-256 of the stored bytes differs")


def check_parts(expect: Expectation, obs: Observation) -> Finding:
    """Parts must be complete and tile the object. The layout is the store's: a client that chose
    its own part size (aws-cli uses 8 MiB) passes, with the disagreement reported."""
    expected = "parts 1..N without gaps tiling the object"
    if (missing := _unread(expect, obs, PARTS, expected)) is not None:
        return missing
    parts = sorted(obs.parts, key=lambda p: p.part_number)
    problems: list[str] = []
    numbers = [p.part_number for p in parts]
    if numbers != list(range(1, len(parts) + 1)):
        gaps = sorted(set(range(1, max(numbers, default=0) + 1)) - set(numbers))
        problems.append(f"part numbers {numbers} have gaps {gaps}")
    stored_count = etag_part_count(obs.etag)
    if stored_count is not None and stored_count != len(parts):
        problems.append(f"{len(parts)} parts found but the store's ETag says {stored_count}")
    position = 0
    for part in parts:
        if part.offset != position:
            problems.append(f"part {part.part_number} starts at {part.offset}, not {position}")
        position = part.offset + part.size
    if obs.size is not None and position != obs.size:
        problems.append(f"parts cover {position} of {obs.size} bytes")
    if obs.parts_source == "declared" and len(parts) != expect.part_count:
        problems.append(f"{len(parts)} of {expect.part_count} declared parts are in the object")
    actual = f"{len(parts)} parts covering {position} bytes ({obs.parts_source})"
    if problems:
        return Finding(PARTS, False, expected, actual, "; ".join(problems))
    hint = layout_hint(expect, parts)
    return Finding(PARTS, True, expected, actual, f"parts complete and contiguous{hint}")


def etag_part_count(etag: str | None) -> int | None:
    """N of a multipart ETag `md5-N`; 1 for a single PUT; None when there is no ETag."""
    if not etag:
        return None
    _, dash, count = etag.strip('"').partition("-")
    return int(count) if dash and count.isdigit() else 1


def layout_hint(expect: Expectation, parts: Sequence[PartRow]) -> str:
    """How the store's part layout differs from the declared one (a hint, never a refusal)."""
    actual_size = parts[0].size if len(parts) > 1 else None
    notes = []
    if len(parts) != expect.part_count:
        notes.append(f"{len(parts)} parts, {expect.part_count} declared")
    if actual_size is not None and actual_size != expect.part_size_bytes:
        notes.append(f"part size {actual_size}, {expect.part_size_bytes} declared")
    return f" (layout differs from the declared hint: {'; '.join(notes)})" if notes else ""


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


def check_session(expect: Expectation, obs: Observation) -> Finding:
    """A segment takes consent, license and provenance from its media session: that session must
    be of the same tenant and list the segment, or a tenant-B segment could ride tenant A's
    license to a buyer of A."""
    expected = f"media session {expect.media_session_id} of {expect.tenant_id} listing the segment"
    facts = obs.session
    if facts is None:
        return Finding(SESSION, False, expected, None, "the media session was not looked up")
    if not facts.found:
        why = facts.error or "no envelope"
        return Finding(SESSION, False, expected, None, f"media session unusable: {why}")
    actual = f"media session {facts.media_session_id} of {facts.tenant_id}"
    problems = []
    if facts.tenant_id != expect.tenant_id:
        problems.append(f"session belongs to {facts.tenant_id}, segment to {expect.tenant_id}")
    if not facts.lists_segment:
        problems.append("the session envelope does not list this segment")
    if problems:
        return Finding(SESSION, False, expected, actual, "; ".join(problems))
    return Finding(SESSION, True, expected, actual, "same tenant; the session lists the segment")


def object_key_is_safe(expect: Expectation, key: str) -> tuple[bool, str]:
    try:
        layout.check_key_within(key, layout.tenant_raw_prefix(expect.tenant_id))
    except layout.UnsafeKey as error:
        return False, str(error)
    return True, "inside the tenant prefix"


def object_problems(want: ObjectExpectation, seen: ObjectObservation | None) -> list[str]:
    """What is wrong with one declared object; empty when it is proven."""
    if seen is None:
        return ["not inspected"]
    if seen.skipped:
        return [f"not inspected: {seen.skipped}"]
    if not seen.exists:
        return ["missing"]
    problems = []
    if seen.size != want.size_bytes:
        problems.append(f"size {seen.size}, {want.size_bytes} declared")
    if want.content_type and seen.content_type != want.content_type:
        problems.append(f"content type {seen.content_type}, {want.content_type} declared")
    if seen.read_error:
        problems.append(f"unreadable: {seen.read_error}")
    elif want.sha256 and seen.read_sha256 != want.sha256:
        problems.append("SHA-256 of the stored bytes differs from the declared one")
    return problems


def check_objects(expect: Expectation, obs: Observation) -> Finding:
    expected = {o.role: o.object_key for o in expect.objects}
    if not expect.objects:
        return Finding(OBJECTS, True, expected, {}, "the segment declares no other objects")
    seen = {o.role: o for o in obs.objects}
    problems = {
        want.role: found
        for want in expect.objects
        if (found := object_problems(want, seen.get(want.role)))
    }
    actual = {role: o.read_sha256 for role, o in seen.items()}
    if problems:
        text = "; ".join(f"{role}: {', '.join(p)}" for role, p in sorted(problems.items()))
        return Finding(OBJECTS, False, expected, actual, text)
    proven = f"{len(expect.objects)} declared objects proven"
    return Finding(OBJECTS, True, expected, actual, proven)


RULES: dict[str, Callable[[Expectation, Observation], Finding]] = {
    SIZE: check_size,
    SHA256: check_sha256,
    PARTS: check_parts,
    ETAG: check_etag,
    CONTENT_TYPE: check_content_type,
    TENANT_PREFIX: check_tenant_prefix,
    SESSION: check_session,
    OBJECTS: check_objects,
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


def pin_of(observed: Observation | ObjectObservation) -> dict[str, Any]:
    return {"etag": observed.etag, "size": observed.size, "last_modified": observed.last_modified}


def check_unchanged(
    recorded: Mapping[str, dict[str, Any]], current: Mapping[str, Observation | ObjectObservation]
) -> Finding:
    """Compare every proven object now (HEAD) with the object as its proof recorded it. Both
    maps go from an object key to its pin (etag, size, last-modified)."""
    actual = {key: pin_of(obs) if obs.exists else None for key, obs in current.items()}
    deleted = [key for key in recorded if actual.get(key) is None]
    changed = [
        f"{key} ({', '.join(f for f in pin if pin[f] != (actual[key] or {}).get(f))})"
        for key, pin in recorded.items()
        if key not in deleted and actual[key] != pin
    ]
    if deleted or changed:
        parts = [f"deleted: {', '.join(deleted)}"] if deleted else []
        parts += [f"replaced: {', '.join(changed)}"] if changed else []
        return Finding(
            UNCHANGED,
            False,
            dict(recorded),
            actual,
            f"object {'; '.join(parts)} after its proof: re-prove the segment",
        )
    return Finding(UNCHANGED, True, dict(recorded), actual, "objects unchanged since proof")


def proven_pins(expect: Expectation, obs: Observation) -> dict[str, dict[str, Any]]:
    """What the proof pins every later read to: each object's key -> etag, size, last-modified."""
    pins = {expect.object_key: pin_of(obs)} if obs.exists else {}
    pins.update({o.object_key: pin_of(o) for o in obs.objects if o.exists})
    return pins


def declared_parts(size: int, part_size: int, count_hint: int | None = None) -> list[PartRow]:
    """Part ranges implied by equal parts of `part_size` (the fallback when the store cannot
    report part boundaries)."""
    count = count_hint or max(1, -(-size // part_size))
    rows = []
    for number in range(1, count + 1):
        offset = (number - 1) * part_size
        rows.append(PartRow(number, offset, max(0, min(part_size, size - offset))))
    return rows
