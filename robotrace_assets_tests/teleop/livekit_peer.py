"""Our side driven the way a LiveKit server drives it: events built from livekit's own protocol
messages, serialized with protobuf's JSON mapping and signed with livekit-api (an AccessToken
whose sha256 claim is the body's hash), as the server's webhook notifier does."""

from __future__ import annotations

import base64
import hashlib
import itertools
import time
from datetime import timedelta

from google.protobuf.json_format import MessageToJson
from livekit import api
from livekit.protocol import egress as egress_pb
from livekit.protocol import models
from livekit.protocol.webhook import WebhookEvent

KEY = "APItestkey"
SECRET = "test-secret-" + "x" * 32
_ids = itertools.count(1)


def grants(token: str, key: str = KEY, secret: str = SECRET) -> tuple[str, api.VideoGrants]:
    """(identity, video grants) of a room token, verified with livekit-api's own verifier."""
    claims = api.TokenVerifier(key, secret).verify(token)
    assert claims.video is not None
    return claims.identity, claims.video


def sign(body: str, key: str = KEY, secret: str = SECRET) -> str:
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    return api.AccessToken(key, secret).with_sha256(digest).with_ttl(timedelta(minutes=5)).to_jwt()


def event(kind: str, *, created_at: int | None = None, event_id: str | None = None, **fields):
    message = WebhookEvent(
        event=kind,
        id=event_id or f"EV_{next(_ids):06d}",
        created_at=created_at if created_at is not None else int(time.time()),
        **fields,
    )
    return MessageToJson(message)


def room(name: str, sid: str = "RM_test") -> models.Room:
    return models.Room(name=name, sid=sid)


def participant(identity: str, hidden: bool = False) -> models.ParticipantInfo:
    return models.ParticipantInfo(
        identity=identity,
        sid=f"PA_{identity.replace(':', '_')}",
        permission=models.ParticipantPermission(hidden=hidden),
    )


def egress_info(
    room_name: str,
    egress_id: str,
    identity: str,
    status: str,
    filename: str = "",
    size: int = 0,
    started_ns: int = 0,
    ended_ns: int = 0,
) -> egress_pb.EgressInfo:
    info = egress_pb.EgressInfo(
        egress_id=egress_id,
        room_name=room_name,
        status=status,  # protobuf accepts the enum value's name
        participant=egress_pb.ParticipantEgressRequest(room_name=room_name, identity=identity),
        started_at=started_ns,
        ended_at=ended_ns,
    )
    if filename:
        info.file_results.append(
            egress_pb.FileInfo(
                filename=filename, size=size, started_at=started_ns, ended_at=ended_ns
            )
        )
    return info
