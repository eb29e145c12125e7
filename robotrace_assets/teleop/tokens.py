"""LiveKit room tokens with exactly the powers each role needs, signed with livekit-api.

- operator: publishes camera, microphone and data (the robot's telemetry data track);
- coach: publishes the microphone only, no data;
- observer (a safety reviewer): subscribes only, cannot publish media or data, hidden.

Every token is scoped to one room (room_join on that room; no create, list, record or admin
grant) and short-lived. LiveKit's grant defaults are permissive (can_publish, can_subscribe and
can_publish_data default to true), so every flag is set explicitly here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from livekit import api

from robotrace_assets.teleop.config import LiveKitConfig

_SUBJECT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ROLE_ATTRIBUTE = "robotrace.role"


class Role(StrEnum):
    OPERATOR = "operator"
    COACH = "coach"
    OBSERVER = "observer"


class TokenError(ValueError):
    pass


def participant_identity(role: Role, subject: str) -> str:
    """`<role>:<subject>`: the identity says the role, so a recording or a join can be told
    apart by identity alone (only `operator:` tracks ever become capture media)."""
    if not isinstance(subject, str) or not _SUBJECT_RE.match(subject):
        raise TokenError(f"participant id must be 1-64 of [A-Za-z0-9_.-], got {subject!r}")
    return f"{Role(role).value}:{subject}"


def role_of(identity: str) -> Role | None:
    head, _, subject = identity.partition(":")
    try:
        return Role(head) if subject else None
    except ValueError:
        return None


def grants_for(role: Role, room: str) -> api.VideoGrants:
    common: dict[str, Any] = {
        "room_join": True,
        "room": room,
        "room_create": False,
        "room_list": False,
        "room_record": False,
        "room_admin": False,
        "can_update_own_metadata": False,
        "can_subscribe": True,
    }
    if role is Role.OPERATOR:
        return api.VideoGrants(
            **common,
            can_publish=True,
            can_publish_data=True,
            can_publish_sources=["camera", "microphone"],
            hidden=False,
        )
    if role is Role.COACH:
        return api.VideoGrants(
            **common,
            can_publish=True,
            can_publish_data=False,
            can_publish_sources=["microphone"],
            hidden=False,
        )
    if role is Role.OBSERVER:
        return api.VideoGrants(
            **common,
            can_publish=False,
            can_publish_data=False,
            can_publish_sources=[],
            hidden=True,
        )
    raise TokenError(f"unknown role {role!r}")


@dataclass(frozen=True)
class MintedToken:
    jwt: str  # a credential: hand it to the participant, never log or store it
    room: str
    identity: str
    role: Role
    expires_at: datetime

    def audit_details(self) -> dict[str, Any]:
        """What the audit log keeps about a token: never the token itself."""
        grants = grants_for(self.role, self.room)
        return {
            "room": self.room,
            "expires_at": self.expires_at.isoformat(),
            "can_publish": grants.can_publish,
            "can_publish_data": grants.can_publish_data,
            "can_publish_sources": list(grants.can_publish_sources or []),
            "hidden": bool(grants.hidden),
        }


def mint_token(
    config: LiveKitConfig,
    room: str,
    role: Role,
    subject: str,
    *,
    name: str | None = None,
    ttl: timedelta | None = None,
) -> MintedToken:
    identity = participant_identity(role, subject)
    ttl = ttl or config.token_ttl
    if ttl > config.token_ttl:
        raise TokenError(f"token TTL {ttl} exceeds the configured maximum {config.token_ttl}")
    issued = datetime.now(UTC).replace(microsecond=0)
    token = (
        api.AccessToken(config.api_key, config.api_secret)
        .with_identity(identity)
        .with_name(name or identity)
        .with_kind("standard")
        .with_attributes({ROLE_ATTRIBUTE: role.value})
        .with_grants(grants_for(role, room))
        .with_ttl(ttl)
    )
    return MintedToken(
        jwt=token.to_jwt(), room=room, identity=identity, role=role, expires_at=issued + ttl
    )
