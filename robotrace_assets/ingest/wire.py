"""The RoboTrace ingest wire shapes, field by field, as the RoboTrace ingest API defines them.

Every request field is optional with RoboTrace's default, limit and type; types are strict (a
string is not a number) like RoboTrace's Zod validation. Fields the docs do not list are accepted
and kept (`model_extra`): the official SDK sends `otel` and `failure_time_s`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

ArtifactKind = Literal["video", "sensors", "actions"]
KINDS: tuple[ArtifactKind, ...] = ("video", "sensors", "actions")
CONTENT_TYPES: dict[str, str] = {
    "video": "video/mp4",
    "sensors": "application/octet-stream",
    "actions": "application/octet-stream",
}
BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1


def _integral(value: Any) -> Any:
    """JSON has one number type: 8124.0 is the integer 8124 (as for JSON Schema and Zod), but a
    boolean or a string is not a number."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# A JSON number is a double to most clients (RoboTrace's server is JavaScript): a bigint bound
# printed by one is the shortest decimal of that double, e.g. -9223372036854776000 for -2**63.
_BOUND_AS_DOUBLE = {int(Decimal(repr(float(b)))): b for b in (BIGINT_MIN, BIGINT_MAX)}


def _bigint(value: Any) -> Any:
    """Exactly those two renderings name the bounds; any other out-of-range number is refused."""
    value = _integral(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return _BOUND_AS_DOUBLE.get(value, value)
    return value


# Put it after the Field in Annotated[...]: constraints must come before a before-validator for
# pydantic to state them in the JSON Schema.
INTEGRAL = BeforeValidator(_integral)


PositiveNumber = Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)]
NonNegativeNumber = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]


def has_nul(value: Any, depth: int = 0) -> bool:
    """A NUL character anywhere (keys included): PostgreSQL text and jsonb cannot store one."""
    if depth > 200:
        return False  # deeper documents were already refused by the JSON parser's limits
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return any(has_nul(v, depth + 1) for v in value)
    return False


class WireModel(BaseModel):
    """Request bodies: unlisted fields are kept; NUL characters are refused everywhere."""

    model_config = ConfigDict(extra="allow")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        if has_nul(data):
            raise ValueError("strings may not contain NUL (\\u0000) characters")
        return data


def _text(limit: int) -> Any:
    return Field(default=None, max_length=limit, strict=True)


class EpisodeCreate(WireModel):
    """POST /api/ingest/episode. An empty body opens a metadata-only run with the defaults."""

    name: str | None = _text(200)
    source: Literal["real", "sim", "replay"] = "real"
    robot: str | None = _text(120)
    policy_version: str | None = _text(120)
    env_version: str | None = _text(120)
    git_sha: str | None = _text(64)
    seed: (
        Annotated[int, Field(strict=True, ge=BIGINT_MIN, le=BIGINT_MAX), BeforeValidator(_bigint)]
        | None
    ) = None
    fps: PositiveNumber | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    request_uploads: list[ArtifactKind] = Field(
        default_factory=lambda: list(KINDS), max_length=3, json_schema_extra={"uniqueItems": True}
    )

    @field_validator("request_uploads")
    @classmethod
    def _unique(cls, kinds: list[ArtifactKind]) -> list[ArtifactKind]:
        if len(set(kinds)) != len(kinds):
            raise ValueError("each kind may be requested once")
        return kinds


class EpisodeFinalize(WireModel):
    """POST /api/ingest/episode/{id}/finalize. Omitted fields leave the episode unchanged."""

    status: Literal["ready", "failed"] = "ready"
    duration_s: NonNegativeNumber | None = None
    fps: PositiveNumber | None = None
    bytes_total: (
        Annotated[int, Field(strict=True, ge=0, le=BIGINT_MAX), BeforeValidator(_bigint)] | None
    ) = None
    metadata: dict[str, Any] | None = None


class UploadUrlsRequest(WireModel):
    """POST /api/ingest/episode/{id}/upload-urls (beyond RoboTrace): fresh signed PUT URLs for
    the same episode and object keys; `kinds` defaults to every kind requested at create."""

    kinds: list[ArtifactKind] | None = Field(default=None, max_length=3)


class UploadUrl(BaseModel):
    kind: ArtifactKind
    url: str
    expires_at: str
    public_url: str | None


class EpisodeCreated(BaseModel):
    episode_id: str
    status: Literal["recording"]
    storage: Literal["r2", "unconfigured"]
    upload_urls: list[UploadUrl]


class Check(BaseModel):
    name: str
    passed: bool
    reason: str | None = None


class Verification(BaseModel):
    """Where the proof of an episode stands (beyond RoboTrace).

    state: `not_applicable` (nothing to prove: metadata-only, failed run or no video),
    `failed` (a finalize check or the full-byte proof failed; `checks` say which and why),
    `pending` (handed to the graph, no proof record yet) or `verified` (the proof verified).
    """

    state: Literal["not_applicable", "pending", "verified", "failed"]
    checks: list[Check] = Field(default_factory=list)
    sha256_declared_by_client: bool = False
    media_session_id: str | None = None
    segment_id: str | None = None


class EpisodeFinalized(BaseModel):
    episode_id: str
    status: Literal["ready", "failed"]
    updated_at: str
    verification: Verification


class ErrorBody(BaseModel):
    error: str
    request_id: str | None = None
