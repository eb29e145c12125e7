"""The auth dependency: API keys with scopes, and the per-key rate limit.

Other routers (the LiveKit sessions API) use it as is:

    from robotrace_assets.api.auth import Principal, require
    from robotrace_assets.ingest.keys import SCOPE_ROBOTICS

    @router.post("/api/robotics/...")
    def handler(principal: Annotated[Principal, Depends(require(SCOPE_ROBOTICS))]): ...

`require(scope)` accepts `Authorization: Bearer rt_<id>_<secret>` or `X-RoboTrace-Key`, answers
the one 401 (with `WWW-Authenticate: Bearer realm="robotrace"`) for a missing, malformed, unknown
or revoked key, 403 for a valid key without the scope, 429 with an integer Retry-After past the
key's rate, and otherwise returns the Principal (tenant id, key id, scopes). Scope every query
by `principal.tenant_id` and answer 404 for another tenant's rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.orm import Session

from robotrace_assets.api.db.models import ApiKey
from robotrace_assets.api.db.session import DbSession
from robotrace_assets.api.errors import ApiError, unauthorized
from robotrace_assets.ingest import keys
from robotrace_assets.ingest.ratelimit import TokenBuckets


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    key_id: str
    scopes: frozenset[str]


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    custom = request.headers.get("x-robotrace-key")
    return custom.strip() if custom and custom.strip() else None


def authenticate(db: Session, token: str | None) -> Principal:
    """The key's principal, or the one 401. The secret is compared in constant time, also when
    the id is unknown, so timing does not tell an unknown id from a wrong secret."""
    if not token:
        raise unauthorized()
    try:
        key_id, secret = keys.parse(token)
    except keys.KeyFormatError:
        raise unauthorized() from None
    row = db.get(ApiKey, key_id)
    matches = keys.secret_matches(secret, row.secret_sha256 if row else None)
    if row is None or not matches or row.revoked_at is not None:
        raise unauthorized()
    return Principal(row.tenant_id, row.id, frozenset(row.scopes))


def require(scope: str) -> Callable[..., Principal]:
    """A FastAPI dependency admitting keys that hold `scope` (see the module docstring)."""
    if scope not in keys.ALL_SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    def dependency(request: Request, db: DbSession) -> Principal:
        principal = authenticate(db, presented_key(request))
        if scope not in principal.scopes:
            raise ApiError(403, f"This API key lacks the `{scope}` scope.")
        limiter: TokenBuckets = request.app.state.limiter
        wait = limiter.take(principal.key_id, time.monotonic())
        if wait:
            raise ApiError(429, "Rate limit exceeded for this API key.", {"Retry-After": str(wait)})
        return principal

    return dependency
