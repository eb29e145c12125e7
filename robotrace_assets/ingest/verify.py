"""Finalize verification: cheap checks on what the store says (HEAD), never on the bytes.

RoboTrace's finalize trusted the client ("don't assume ready means the artifacts uploaded").
Ours checks every requested artifact exists with its kind's Content-Type, that the video is not
empty, and that the sizes add up to `bytes_total` when the client sends it. A requested slot the
client left empty is accepted only when `bytes_total` accounts for exactly what was uploaded (the
SDK's documented flow uploads just the video of three requested slots and sends that total);
without `bytes_total` every requested slot must be filled, and a requested video always must
(it is what the proof proves). The full-byte proof (SHA-256 of what
was read) runs later in the Dagster graph; this answers in milliseconds whatever the sizes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Observed:
    """What a HEAD of one artifact returned."""

    size: int
    content_type: str
    etag: str


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    reason: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "passed": self.passed, "reason": self.reason}


@dataclass(frozen=True)
class Outcome:
    checks: tuple[CheckResult, ...]
    present: tuple[str, ...]  # kinds found in the store, in request order

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def provable(self) -> bool:
        """Something to hand to the graph: the checks passed and the video is there."""
        return self.passed and "video" in self.present


def verify_artifacts(
    requested: Sequence[str],
    observed: Mapping[str, Observed | None],
    content_types: Mapping[str, str],
    bytes_total: int | None,
) -> Outcome:
    present = tuple(k for k in requested if observed.get(k) is not None)
    sizes = {k: observed[k].size for k in present}  # type: ignore[union-attr]
    total_matches = bytes_total is not None and sum(sizes.values()) == bytes_total
    checks: list[CheckResult] = []
    for kind in requested:
        seen = observed.get(kind)
        if seen is None:
            if total_matches and kind != "video":
                reason = "not uploaded; bytes_total accounts for the artifacts that were"
                checks.append(CheckResult(f"{kind}_uploaded", True, reason))
            else:
                checks.append(
                    CheckResult(f"{kind}_uploaded", False, f"{kind} was requested but not uploaded")
                )
            continue
        checks.append(CheckResult(f"{kind}_uploaded", True))
        expected = content_types[kind]
        if seen.content_type.split(";")[0].strip().lower() != expected:
            reason = f"stored Content-Type {seen.content_type!r}, expected {expected!r}"
            checks.append(CheckResult(f"{kind}_content_type", False, reason))
        if kind == "video" and seen.size == 0:
            checks.append(CheckResult("video_not_empty", False, "the stored video is 0 bytes"))
    if bytes_total is not None:
        stored = sum(sizes.values())
        if stored == bytes_total:
            checks.append(CheckResult("bytes_total_matches", True))
        else:
            detail = ", ".join(f"{k} {v}" for k, v in sizes.items()) or "nothing"
            reason = f"bytes_total {bytes_total} but the store holds {stored} ({detail})"
            checks.append(CheckResult("bytes_total_matches", False, reason))
    return Outcome(tuple(checks), present)
