"""Large media (beyond RoboTrace): wire models and the plan of a segment's multipart upload.

A client opens a media session, then each segment as a multipart upload: it declares the size,
the part size and every part's SHA-256, and gets one UploadPart URL per part with that SHA-256
bound into the signature (the store refuses a part whose bytes differ). It can list the parts
the store holds and get fresh URLs for the rest (resume), then asks the service to complete:
the service checks every part (number, size, checksum) before it completes the upload and hands
the segment to the graph. No web framework here.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from robotrace_assets.ingest.wire import INTEGRAL, has_nul
from robotrace_assets.objectstore.multipart import (
    MAX_PART_SIZE,
    MIN_PART_SIZE,
    MultipartError,
    PartRange,
    plan_parts,
)

Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Sha256B64 = Annotated[str, Field(min_length=44, max_length=44)]
MAX_SEGMENT_BYTES = 5 * 1024**4  # S3/R2's object limit
# Strict integers (JSON-integral floats count), their limits stated in the OpenAPI document.
SensorsSize = Annotated[int, Field(strict=True, ge=1, le=MAX_PART_SIZE), INTEGRAL]
SegmentIndex = Annotated[int, Field(strict=True, ge=0, le=100_000), INTEGRAL]
SegmentSize = Annotated[int, Field(strict=True, ge=1, le=MAX_SEGMENT_BYTES), INTEGRAL]
PartSize = Annotated[int, Field(strict=True, ge=MIN_PART_SIZE, le=MAX_PART_SIZE), INTEGRAL]
PositiveInt = Annotated[int, Field(strict=True, ge=1), INTEGRAL]
NonNegativeInt = Annotated[int, Field(strict=True, ge=0), INTEGRAL]


class Consent(BaseModel):
    """The data model's consent object (media session envelope)."""

    model_config = ConfigDict(extra="forbid")

    receipt_id: str = Field(pattern=r"^consent_[0-9A-HJKMNP-TV-Z]{26}$")
    brief_accepted_at: AwareDatetime
    co_resident_required: bool


class License(BaseModel):
    """The data model's license object: a scope and the uses it allows."""

    model_config = ConfigDict(extra="forbid")

    scope_id: str = Field(pattern=r"^lic_[0-9A-HJKMNP-TV-Z]{26}$")
    allowed_use: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]] = Field(
        max_length=64, json_schema_extra={"uniqueItems": True}
    )

    @model_validator(mode="after")
    def _unique(self) -> License:
        if len(set(self.allowed_use)) != len(self.allowed_use):
            raise ValueError("allowed_use items must be unique")
        return self


class MediaSessionCreate(BaseModel):
    """POST /api/media/sessions. Provenance defaults (operator, task brief, device, safety rules
    version, consent, license) come from the tenant unless given here."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        if has_nul(data):
            raise ValueError("strings may not contain NUL (\\u0000) characters")
        return data

    task_name: str | None = Field(default=None, min_length=1, max_length=200)
    task_steps: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=64
    )
    consent: Consent | None = None
    license: License | None = None
    provenance: dict[str, Any] = Field(default_factory=dict, max_length=48)


class SensorsDeclared(BaseModel):
    model_config = ConfigDict(extra="forbid")

    size_bytes: SensorsSize
    sha256: Sha256Hex | None = None
    format: Literal["parquet", "mcap", "ros1bag", "ros2bag"]
    hz: float = Field(ge=30, allow_inf_nan=False)


class TaskStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, max_length=200)
    start_s: float = Field(ge=0, allow_inf_nan=False)
    end_s: float = Field(ge=0, allow_inf_nan=False)


class SegmentOpen(BaseModel):
    """POST /api/media/sessions/{id}/segments: declare the segment and its parts."""

    model_config = ConfigDict(extra="forbid")

    segment_index: SegmentIndex
    size_bytes: SegmentSize
    sha256: Sha256Hex | None = None
    content_type: Literal["video/mp4", "video/quicktime"] = "video/mp4"
    part_size_bytes: PartSize
    part_sha256: list[Sha256B64] = Field(min_length=1, max_length=10_000)
    started_at: AwareDatetime
    ended_at: AwareDatetime
    boundary_reason: Literal["task_step", "time_limit", "operator_stop", "end_of_session"] = (
        "end_of_session"
    )
    codec: Literal["hevc", "h264"] | None = None
    fps: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    width: PositiveInt | None = None
    height: PositiveInt | None = None
    frames: NonNegativeInt | None = None
    task_steps: list[TaskStep] = Field(default_factory=list, max_length=256)
    sensors: SensorsDeclared | None = None

    @model_validator(mode="after")
    def _consistent(self) -> SegmentOpen:
        if self.ended_at < self.started_at:
            raise ValueError("ended_at is before started_at")
        parts = plan(self.size_bytes, self.part_size_bytes)
        if len(parts) != len(self.part_sha256):
            raise ValueError(
                f"size_bytes and part_size_bytes make {len(parts)} parts, "
                f"but {len(self.part_sha256)} part_sha256 were given"
            )
        for index, value in enumerate(self.part_sha256):
            if not is_sha256_b64(value):
                raise ValueError(f"part_sha256[{index}] is not a base64 SHA-256")
        return self


def plan(size: int, part_size: int) -> list[PartRange]:
    try:
        return plan_parts(size, part_size)
    except MultipartError as error:
        raise ValueError(str(error)) from None


def is_sha256_b64(value: str) -> bool:
    try:
        return len(base64.b64decode(value, validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


def part_problems(
    planned: list[PartRange], declared_b64: list[str], stored: dict[int, dict[str, Any]]
) -> list[str]:
    """Why the stored parts cannot be completed into the declared object (empty: they can)."""
    problems = []
    for part, sha in zip(planned, declared_b64, strict=True):
        have = stored.get(part.number)
        if have is None:
            problems.append(f"part {part.number} is missing")
        elif int(have["Size"]) != part.size:
            problems.append(f"part {part.number} is {have['Size']} bytes, expected {part.size}")
        elif have.get("ChecksumSHA256") and have["ChecksumSHA256"] != sha:
            problems.append(f"part {part.number} has another SHA-256 than declared")
    extra = sorted(set(stored) - {p.number for p in planned})
    if extra:
        problems.append(f"parts {extra} were not declared")
    return problems


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")
