"""Webhook verification (unsigned, tampered, stale, foreign-signed) with events signed by
livekit-api as a LiveKit server signs them; the lifecycle under duplicated, late and
out-of-order events."""

import itertools
import time
from datetime import timedelta

import pytest
from google.protobuf.json_format import Parse
from livekit.protocol.webhook import WebhookEvent

from robotrace_assets.teleop import lifecycle
from robotrace_assets.teleop.config import LiveKitConfig
from robotrace_assets.teleop.lifecycle import RoomState, SessionRoom, apply_event
from robotrace_assets.teleop.webhooks import WebhookRejected, verify_webhook
from robotrace_assets_tests.teleop.livekit_peer import (
    KEY,
    SECRET,
    egress_info,
    event,
    participant,
    room,
    sign,
)

CONFIG = LiveKitConfig(url="wss://lk.example.test", api_key=KEY, api_secret=SECRET)
ROOM = "sess_01KT9WNH80AAAAAAAAAAAAAAAA"
OPERATOR = "operator:op_01KT9WNH80AAAAAAAAAAAAAAAB"
PREFIX = "robotics/raw/ten_01KT9WNH80AAAAAAAAAAAAAAAC/msess_01KT9WNH80AAAAAAAAAAAAAAAD/egress/"
SESSION = SessionRoom(ROOM, OPERATOR, PREFIX)


def reason(body: str, auth: str | None) -> str:
    with pytest.raises(WebhookRejected) as caught:
        verify_webhook(CONFIG, body.encode(), auth)
    return caught.value.reason


def test_signed_event_verifies() -> None:
    body = event("room_started", room=room(ROOM))
    verified = verify_webhook(CONFIG, body.encode(), sign(body))
    assert verified.kind == "room_started" and verified.room_name == ROOM


def test_unsigned_tampered_foreign_stale_and_malformed_are_refused() -> None:
    body = event("room_finished", room=room(ROOM))
    assert reason(body, None) == "unsigned"
    assert reason(body, "") == "unsigned"
    assert reason(body.replace(ROOM, ROOM[:-1] + "B"), sign(body)) == "tampered"
    assert reason(body, sign(body, secret="another-" + "z" * 32)) == "bad_signature"
    assert reason(body, sign(body, key="APIother")) == "bad_signature"
    assert reason(body, "not.a.jwt") == "bad_signature"
    old = event("room_finished", room=room(ROOM), created_at=int(time.time()) - 3600)
    assert reason(old, sign(old)) == "stale"
    future = event("room_finished", room=room(ROOM), created_at=int(time.time()) + 3600)
    assert reason(future, sign(future)) == "stale"
    assert reason("[1, 2]", sign("[1, 2]")) == "malformed"
    with pytest.raises(WebhookRejected) as caught:
        verify_webhook(CONFIG, b"\xff\xfe", sign("x"))
    assert caught.value.reason == "malformed"


def test_expired_signature_is_refused() -> None:
    from livekit import api

    body = event("room_finished", room=room(ROOM))
    import base64
    import hashlib

    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    expired = (
        api.AccessToken(KEY, SECRET).with_sha256(digest).with_ttl(timedelta(minutes=-5)).to_jwt()
    )
    assert reason(body, expired) == "bad_signature"


def parsed(body: str) -> WebhookEvent:
    return Parse(body, WebhookEvent())


START_NS = 1_780_000_000_000_000_000


def lifecycle_events() -> list[WebhookEvent]:
    key = PREFIX + "operator.mp4"
    return [
        parsed(event("room_started", room=room(ROOM))),
        parsed(event("participant_joined", room=room(ROOM), participant=participant(OPERATOR))),
        parsed(
            event(
                "egress_started",
                egress_info=egress_info(ROOM, "EG_op", OPERATOR, "EGRESS_ACTIVE"),
            )
        ),
        parsed(
            event(
                "egress_started",
                egress_info=egress_info(ROOM, "EG_coach", "coach:c1", "EGRESS_ACTIVE"),
            )
        ),
        parsed(
            event(
                "egress_ended",
                egress_info=egress_info(
                    ROOM, "EG_op", OPERATOR, "EGRESS_COMPLETE", key, 10, START_NS, START_NS + 9
                ),
            )
        ),
        parsed(
            event(
                "egress_ended",
                egress_info=egress_info(
                    ROOM, "EG_coach", "coach:c1", "EGRESS_COMPLETE", PREFIX + "coach.mp4", 5
                ),
            )
        ),
        parsed(event("room_finished", room=room(ROOM))),
    ]


def run(events: list[WebhookEvent]) -> tuple[RoomState, int]:
    state, claims = RoomState(), 0
    for item in events:
        state = apply_event(state, item, SESSION)
        claimed = lifecycle.claim_hand_off(state)
        if claimed is not None:
            state, claims = claimed, claims + 1
    return state, claims


def test_any_order_and_duplicates_claim_exactly_once_with_the_same_outcome() -> None:
    events = lifecycle_events()
    reference, claims = run(events)
    assert claims == 1 and reference.hand_off == lifecycle.CLAIMED
    usable = reference.usable_recordings()
    assert [r.egress_id for r in usable] == ["EG_op"]
    assert "not the operator" in (reference.recordings["EG_coach"].refused or "")
    # every order of the four closing events, each delivered twice
    head, tail = events[:3], events[3:]
    for order in itertools.permutations(tail):
        state, claims = run(head + [e for e in order for _ in (0, 1)])
        assert claims == 1
        assert state == reference


def test_late_egress_update_cannot_reopen_and_room_waits_for_egress() -> None:
    events = lifecycle_events()
    finished_first = [events[0], events[2], events[6]]
    state, claims = run(finished_first)
    assert claims == 0 and state.room_finished  # the operator egress has not ended yet
    state, claims = run([*finished_first, events[4], events[2]])  # late "started" after end
    assert claims == 1 and state.recordings["EG_op"].status == "EGRESS_COMPLETE"


def test_recording_outside_the_prefix_or_failed_is_not_capture_media() -> None:
    outside = parsed(
        event(
            "egress_ended",
            egress_info=egress_info(
                ROOM, "EG_x", OPERATOR, "EGRESS_COMPLETE", "robotics/raw/ten_X/other.mp4", 1
            ),
        )
    )
    failed = parsed(
        event("egress_ended", egress_info=egress_info(ROOM, "EG_y", OPERATOR, "EGRESS_FAILED"))
    )
    state = RoomState()
    for item in (outside, failed, parsed(event("room_finished", room=room(ROOM)))):
        state = apply_event(state, item, SESSION)
    assert lifecycle.claim_hand_off(state) is None
    assert "outside" in (state.recordings["EG_x"].refused or "")
    settled = lifecycle.settle_without_recording(state)
    assert settled is not None and settled.hand_off == lifecycle.NO_RECORDING
    assert RoomState.from_json(settled.to_json()) == settled


def test_events_of_another_room_change_nothing() -> None:
    other = parsed(
        event(
            "egress_ended",
            egress_info=egress_info("other-room", "EG_o", OPERATOR, "EGRESS_COMPLETE"),
        )
    )
    assert apply_event(RoomState(), other, SESSION) == RoomState()
