"""LiveKit webhook verification over the raw request body.

A LiveKit server signs each webhook with a JWT (issuer = API key, HS256 with the API secret)
whose `sha256` claim is the base64 SHA-256 of the body, sent in the Authorization header.
livekit-api's WebhookReceiver checks the signature, expiry and body hash; on top of it we
refuse events that are stale (created_at outside the tolerance window) and leave replay
detection (an event id seen before) to the caller's store, with `replay_key`.

The raw body is hashed exactly as received: never re-serialize it before verifying.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf.json_format import ParseError
from livekit import api
from livekit.protocol.webhook import WebhookEvent

from robotrace_assets.teleop.config import LiveKitConfig

MAX_WEBHOOK_BYTES = 1024 * 1024  # LiveKit events are a few KiB


class WebhookRejected(ValueError):
    """A webhook we refuse. `reason` is a short code safe to log; never the body or token."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class VerifiedEvent:
    event: WebhookEvent
    event_id: str
    kind: str
    created_at: datetime

    @property
    def room_name(self) -> str:
        return self.event.room.name or self.event.egress_info.room_name


def _bearer(header: str | None) -> str:
    if not header or not header.strip():
        raise WebhookRejected("unsigned", "no Authorization header")
    token = header.strip()
    if token.lower().startswith("bearer "):  # LiveKit sends the bare JWT; accept both
        token = token[7:].strip()
    return token


def verify_webhook(
    config: LiveKitConfig,
    raw_body: bytes,
    authorization: str | None,
    *,
    now: datetime | None = None,
) -> VerifiedEvent:
    """The parsed event, or WebhookRejected(unsigned | bad_signature | tampered | malformed |
    stale | too_large)."""
    token = _bearer(authorization)
    if len(raw_body) > MAX_WEBHOOK_BYTES:
        raise WebhookRejected("too_large", f"{len(raw_body)} bytes")
    try:
        body = raw_body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookRejected("malformed", "body is not UTF-8") from None
    verifier = api.TokenVerifier(config.api_key, config.api_secret)
    try:
        claims = verifier.verify(token)  # signature, issuer, expiry (told apart from tampering)
    except Exception as error:  # PyJWT raises many subclasses; all mean "not ours"
        raise WebhookRejected("bad_signature", type(error).__name__) from None
    if not claims.sha256:
        raise WebhookRejected("unsigned", "token carries no body hash")
    try:
        event = api.WebhookReceiver(verifier).receive(body, token)
    except ParseError as error:
        raise WebhookRejected("malformed", str(error)[:200]) from None
    except Exception as error:  # the library raises a bare Exception on a hash mismatch
        if "hash mismatch" in str(error):
            raise WebhookRejected("tampered", "body does not match its signed hash") from None
        raise WebhookRejected("bad_signature", type(error).__name__) from None
    return _checked(config, event, now or datetime.now(UTC))


def _checked(config: LiveKitConfig, event: WebhookEvent, now: datetime) -> VerifiedEvent:
    if not event.id or not event.event:
        raise WebhookRejected("malformed", "event without id or type")
    if event.created_at <= 0:
        raise WebhookRejected("stale", "event without created_at")
    created = datetime.fromtimestamp(event.created_at, UTC)
    if abs(now - created) > config.webhook_tolerance:
        raise WebhookRejected("stale", f"created_at {created.isoformat()} outside the window")
    return VerifiedEvent(event=event, event_id=event.id, kind=event.event, created_at=created)
